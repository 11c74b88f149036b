"""TextVQA accuracy and its normalisation, ChartQA relaxed and OCRVQA exact match."""

from __future__ import annotations

import pytest

from mobile_mllm.eval.scorers.context import ScoreContext
from mobile_mllm.eval.scorers.vqa import (
    normalize_vqa_answer,
    relaxed_correctness,
    score_exact,
    score_relaxed,
    score_textvqa,
    vqa_accuracy,
)

CTX = ScoreContext(dataset_name="TextVQA_VAL")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Two", "2"),  # number words -> digits
        ("ten dogs", "10 dogs"),
        ("none", "0"),
        ("The Cat", "cat"),  # articles dropped
        ("a book", "book"),
        ("an apple.", "apple"),  # trailing period removed
        ("dont", "don't"),  # contractions restored
        ("isnt it", "isn't it"),
        ("coca-cola", "coca cola"),  # hyphen without spaces -> space
        ("1,000", "1000"),  # digit-comma-digit: punctuation deleted
        ("3.14", "3.14"),  # period inside a number kept
        ("hello, world!", "hello world"),
        ("line\none", "line 1"),
        ("  The  Eleven  ", "eleven"),
    ],
)
def test_normalize_vqa_answer(raw: str, expected: str) -> None:
    assert normalize_vqa_answer(raw) == expected


def test_vqa_accuracy_leave_one_out() -> None:
    gts = ["stop"] * 2 + ["stop sign"] * 8
    # 'stop' matched by 1 other (for the 2 'stop' annotators) or 2 others (for the 8): (2*1/3 + 8*2/3) / 10
    assert vqa_accuracy("Stop.", gts) == pytest.approx((2 / 3 + 8 * 2 / 3) / 10)
    assert vqa_accuracy("the stop sign", gts) == pytest.approx(1.0)
    assert vqa_accuracy("two", ["2"] * 10) == 1.0
    assert vqa_accuracy("2", ["2"]) == 0.0  # one ground truth: no 'other' answers (VLMEvalKit behaviour)


def test_textvqa_table_by_category_and_by_split() -> None:
    rows = [
        {"index": "1", "answer": repr(["5"] * 10), "prediction": "five", "category": "x"},
        {"index": "2", "answer": repr(["red"] * 10), "prediction": "blue", "category": "y"},
    ]
    report = score_textvqa(rows, ("index", "answer", "prediction", "category"), CTX)
    assert report.tables[0].as_records() == [{"Overall": 50.0, "x": 100.0, "y": 0.0}]
    rows_split = [dict(r, split=s) for r, s in zip(rows, ("val", "test"))]
    report = score_textvqa(rows_split, ("index", "answer", "prediction", "category", "split"), CTX)
    assert report.tables[0].as_records() == [{"test": 0.0, "val": 100.0, "Overall": 50.0}]


def test_plain_text_answer_is_one_ground_truth() -> None:
    rows = [{"index": "1", "answer": "42", "prediction": "42"}]
    assert score_exact(rows, ("index", "answer", "prediction"), CTX).headline == {"Overall": 100.0}


@pytest.mark.parametrize(
    ("target", "prediction", "ok"),
    [("40", "41.9", True), ("40", "42.1", False), ("50%", "0.5", True), ("Paris", "paris", True), ("0", "0", True), ("0", "0.0", False)],
)
def test_relaxed_correctness(target: str, prediction: str, ok: bool) -> None:
    assert relaxed_correctness(target, prediction) is ok


def test_chartqa_takes_best_ground_truth() -> None:
    rows = [{"index": "1", "answer": "['12', '100']", "prediction": " 104 "}]
    assert score_relaxed(rows, ("index", "answer", "prediction"), CTX).headline == {"Overall": 100.0}
