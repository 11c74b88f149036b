"""The append-only prediction and stats files: a half-written record is cut off, complete ones kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.journal import PredictionJournal, StatsJournal

COLUMNS = ("index", "question", "answer", "prediction")


def _fill(path: Path, predictions: dict[str, str]) -> PredictionJournal:
    journal = PredictionJournal(path, COLUMNS)
    for key, text in predictions.items():
        journal.append({"index": key, "question": f"q{key}?", "answer": "Yes", "prediction": text})
    return journal


# predictions pandas (and so VLMEvalKit) must read back verbatim: tabs, newlines, quotes, a form feed, non-ASCII
TRICKY = {"1": "Yes", "2": "line one\nline two", "3": 'say "no"\tplease', "4": "form\x0cfeed", "5": "日本 — ok"}


def test_pandas_reads_the_predictions_back_verbatim(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    path = tmp_path / "m_bench.tsv"
    _fill(path, TRICKY)
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)  # how VLMEvalKit's load() reads a .tsv
    assert dict(zip(frame["index"], frame["prediction"])) == TRICKY
    assert PredictionJournal(path, COLUMNS).done == TRICKY


@pytest.mark.parametrize("cut", [1, 7, 20])
def test_a_half_written_record_is_cut_off_and_never_counted(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "m_bench.tsv"
    _fill(path, {"1": "Yes", "2": "No"})
    complete = path.read_bytes()
    # the process died inside write(): the start of a record whose prediction holds a quoted newline
    partial = '3\tq3?\tYes\t"first line\nsecond line"\n'.encode()[:cut]
    path.write_bytes(complete + partial)
    journal = PredictionJournal(path, COLUMNS)
    assert journal.done == {"1": "Yes", "2": "No"}
    assert path.read_bytes() == complete  # truncated back to the last complete record
    journal.append({"index": "3", "question": "q3?", "answer": "Yes", "prediction": "Maybe"})
    assert PredictionJournal(path, COLUMNS).done == {"1": "Yes", "2": "No", "3": "Maybe"}


def test_a_record_cut_inside_a_quoted_newline_is_not_taken_for_a_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "m_bench.tsv"
    _fill(path, {"1": "Yes"})
    complete = path.read_bytes()
    path.write_bytes(complete + b'2\tq2?\tYes\t"first line\n')  # ends with a newline, but inside the quotes
    assert PredictionJournal(path, COLUMNS).done == {"1": "Yes"}
    assert path.read_bytes() == complete


def test_a_file_of_another_layout_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m_bench.tsv"
    _fill(path, {"1": "Yes"})
    with pytest.raises(EvalDataError, match="other columns.*another directory"):
        PredictionJournal(path, ("index", "prediction"))


def test_answering_an_index_twice_is_an_error(tmp_path: Path) -> None:
    journal = _fill(tmp_path / "m_bench.tsv", {"1": "Yes"})
    with pytest.raises(EvalDataError, match="index 1 already has a prediction"):
        journal.append({"index": "1", "prediction": "No"})


def test_stats_lines_keep_the_last_record_per_index_and_drop_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "stats.jsonl"
    stats = StatsJournal(path)
    stats.append({"index": "1", "num_tiles": 3})
    stats.append({"index": "1", "num_tiles": 5})  # asked again after a crash between the two writes
    good = path.read_bytes()
    path.write_bytes(good + b'{"index": "2", "num_ti')
    again = StatsJournal(path)
    assert again.records == {"1": {"index": "1", "num_tiles": 5}}
    assert path.read_bytes() == good
