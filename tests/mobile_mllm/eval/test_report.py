"""Writing score tables: CSV per table, details, JSON, and the text summary."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from mobile_mllm.eval.data import BadRow
from mobile_mllm.eval.report import ScoreReport, ScoreTable, format_summary, table_from_dict, write_report


def make_report() -> ScoreReport:
    acc = ScoreTable("acc", ("split", "Overall", "x"), (("dev", 0.5, 1.0), ("test", 0.25, float("nan"))))
    details = ScoreTable("details", ("index", "hit"), (("1", 1), ("2", 0)))
    return ScoreReport("mcq", "quiz", {"Overall": 37.5}, (acc, table_from_dict("extra", {"a": 1})), details,
                       bad_rows=(BadRow("p.tsv", 4, "9", "no answer"),), notes=("a note",))


def test_write_report_files(tmp_path: Path) -> None:
    paths = write_report(make_report(), tmp_path / "out", config={"data": "quiz.tsv"})
    assert [p.name for p in paths] == ["acc.csv", "extra.csv", "details.csv", "scores.json"]
    with (tmp_path / "out" / "acc.csv").open() as fh:
        assert list(csv.reader(fh)) == [["split", "Overall", "x"], ["dev", "0.5", "1.0"], ["test", "0.25", "nan"]]
    payload = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert payload["headline"] == {"Overall": 37.5}
    assert payload["tables"]["acc"][1] == {"split": "test", "Overall": 0.25, "x": None}  # NaN -> null in JSON
    assert payload["bad_rows"] == [{"path": "p.tsv", "line": 4, "index": "9", "reason": "no answer"}]
    assert payload["config"] == {"data": "quiz.tsv"} and payload["num_scored"] == 2
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_summary_mentions_headline_tables_and_skips() -> None:
    text = format_summary(make_report())
    assert text.splitlines()[0] == "quiz (mcq): 2 rows scored"
    assert "skipped 1 bad row(s)" in text and "Overall: 37.50" in text and "[acc]" in text and "note: a note" in text
