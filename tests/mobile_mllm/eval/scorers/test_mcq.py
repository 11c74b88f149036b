"""MCQ scoring, vanilla and circular, against hand-computed accuracies."""

from __future__ import annotations

import pytest

from mobile_mllm.eval.scorers.context import ScoreContext
from mobile_mllm.eval.scorers.mcq import group_index, report_accuracy, score_circular, score_vanilla

COLUMNS = ("index", "question", "A", "B", "C", "D", "answer", "category", "l2-category", "prediction")
CTX = ScoreContext(dataset_name="t")


def row(index: int, answer: str, prediction: str, category: str = "cat1", l2: str = "coarse_perception", **kw: str) -> dict:
    base = {"index": str(index), "question": "q", "A": "red", "B": "green", "C": "blue", "D": "pink",
            "answer": answer, "category": category, "l2-category": l2, "prediction": prediction}
    base.update(kw)
    return base


def test_vanilla_accuracy_overall_and_per_category() -> None:
    rows = [
        row(3, "A", "A", "cat1"),
        row(1, "B", "The answer is B", "cat1"),
        row(2, "C", "c", "cat2"),  # lowercase letter is not read: unanswered -> wrong
        row(4, "D", "pink", "cat2"),  # option text
    ]
    report = score_vanilla(rows, COLUMNS, CTX)
    (acc,) = report.tables
    rec = acc.as_records()[0]
    assert acc.columns == ("split", "Overall", "CP", "cat1", "cat2")  # l2 first, MMBench abbreviation
    assert rec == {"split": "none", "Overall": 0.75, "CP": 0.75, "cat1": 1.0, "cat2": 0.5}
    assert report.headline == {"Overall": 75.0}
    # details are sorted by index and unread answers become Z
    assert [(d[0], d[3], d[4]) for d in report.details.rows] == [("1", "B", 1), ("2", "Z", 0), ("3", "A", 1), ("4", "D", 1)]


def test_vanilla_per_split_rows() -> None:
    rows = [row(1, "A", "A", split="dev"), row(2, "A", "B", split="dev"), row(3, "A", "A", split="test")]
    acc = score_vanilla(rows, (*COLUMNS, "split"), CTX).tables[0]
    recs = {r["split"]: r["Overall"] for r in acc.as_records()}
    assert recs == {"dev": 0.5, "test": 1.0}


def test_circular_group_with_one_wrong_rotation_fails() -> None:
    # Question 0 has 4 rotations; rotation 2 is answered wrong -> the question scores 0.
    # Question 1 has all rotations right -> 1. Question 2: one rotation unreadable -> 0 (no judge).
    rows = [
        row(0, "A", "A"), row(1_000_000, "D", "D"), row(2_000_000, "C", "B"), row(3_000_000, "B", "B"),
        row(1, "B", "B"), row(1_000_001, "A", "(A)"), row(2_000_001, "D", "pink"), row(3_000_001, "C", "C"),
        row(2, "C", "C"), row(1_000_002, "B", "I do not know"), row(2_000_002, "A", "A"), row(3_000_002, "D", "D"),
    ]
    report = score_circular(rows, COLUMNS, CTX)
    hits = {d[0]: d[3] for d in report.details.rows}
    assert hits == {"0": 0, "1": 1, "2": 0}
    assert report.tables[0].as_records()[0]["Overall"] == pytest.approx(1 / 3)
    assert "rotation 2 (index 2000000) answered B" in report.details.rows[0][4]


def test_circular_uses_g_index_when_present() -> None:
    rows = [row(7, "A", "A", g_index="7"), row(1_000_007, "B", "B", g_index="7"), row(5, "A", "B", g_index="5")]
    report = score_circular(rows, (*COLUMNS, "g_index"), CTX)
    assert {d[0]: d[3] for d in report.details.rows} == {"5": 0, "7": 1}


def test_group_index_is_index_mod_1e6() -> None:
    assert group_index({"index": "3000042"}) == 42
    assert group_index({"index": "3000042", "g_index": "9"}) == 9


def test_report_accuracy_without_grouping_columns() -> None:
    table = report_accuracy([{"index": "1"}, {"index": "2"}], [1, 0], ("index",))
    assert table.columns == ("split", "Overall") and table.rows == (("none", 0.5),)


class FakeJudge:
    def __init__(self, reply: str) -> None:
        self.reply, self.calls = reply, 0

    def generate(self, prompt: str) -> str:
        self.calls += 1
        assert "Answer: I do not know" in prompt
        return self.reply


def test_judge_only_asked_for_unreadable_answers() -> None:
    judge = FakeJudge("B")
    rows = [row(1, "B", "I do not know"), row(2, "A", "A")]
    report = score_vanilla(rows, COLUMNS, ScoreContext("t", judge=judge))
    assert judge.calls == 1 and report.headline == {"Overall": 100.0}
