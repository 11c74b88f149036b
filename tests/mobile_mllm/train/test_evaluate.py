"""The held-out benchmark's report: text exact match split by what was shown (words vs numbers)."""

from __future__ import annotations

from mobile_mllm.train.evaluate import BenchConfig, BenchReport, EvalRecord, accuracy, format_markdown, text_content


def _record(detail: str, answer: str, prediction: str) -> EvalRecord:
    return EvalRecord("text", "vqa", detail, "What is written?", answer, prediction, answer == prediction, 36, 7)


def test_text_table_splits_words_from_numbers() -> None:
    records = [
        _record("small", "apple", "apple"),
        _record("small", "4701", "4101"),
        _record("large", "tiger", "tiger"),
        _record("large", "castle", "river"),
        _record("large", "93", "93"),
    ]
    split = accuracy(records, text_content)
    assert split == {"number": 0.5, "word": 2 / 3, "all": 0.6}
    report = BenchReport(model="m", config=BenchConfig(), text={"tiles": accuracy(records, lambda r: r.detail)},
                         text_content={"tiles": split})
    lines = format_markdown(report).splitlines()
    header = lines.index("| text exact match | small | large | words | numbers | all |")
    # small 1/2, large 2/3, words 2/3, numbers 1/2, all 3/5 (hand-counted above)
    assert lines[header + 2] == "| tiles | 50.0 | 66.7 | 66.7 | 50.0 | 60.0 |"


def test_text_table_of_an_older_report_without_the_split_shows_nan() -> None:
    report = BenchReport(model="m", config=BenchConfig(), text={"thumbnail": {"small": 0.0, "large": 0.2, "all": 0.1}})
    assert "| thumbnail | 0.0 | 20.0 | nan | nan | 10.0 |" in format_markdown(report)


def test_kind_by_form_table_shows_where_a_forms_score_comes_from() -> None:
    records = [
        EvalRecord("chart", "yn", "", "", "Yes", "No", False, 36, 1),
        EvalRecord("chart", "yn", "", "", "No", "No", True, 36, 1),
        EvalRecord("colour", "yn", "", "", "Yes", "Yes", True, 36, 1),
        EvalRecord("colour", "mcq", "", "", "A", "B", False, 36, 1),
    ]
    table = accuracy(records, lambda r: f"{r.kind}/{r.form}")
    report = BenchReport(model="m", config=BenchConfig(), by_kind_form={"tiles": table})
    lines = format_markdown(report).splitlines()
    header = lines.index("| tiles: kind x form | mcq | yn | vqa |")
    rows = {line.split(" | ")[0][2:]: line for line in lines[header + 2:header + 9]}
    assert rows["colour"] == "| colour | 0.0 | 100.0 | nan |"
    assert rows["chart"] == "| chart | nan | 50.0 | nan |"
