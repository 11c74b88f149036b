"""OCRBench substring scoring and group totals."""

from __future__ import annotations

from mobile_mllm.eval.scorers.context import ScoreContext
from mobile_mllm.eval.scorers.ocrbench import ocrbench_hit, score_ocrbench

HMER = "Handwritten Mathematical Expression Recognition"


def test_hit_rules() -> None:
    assert ocrbench_hit("The word is HELLO.", ["hello"], "Regular Text Recognition") == 1
    assert ocrbench_hit("hel lo", ["hello"], "Regular Text Recognition") == 0
    assert ocrbench_hit("x ^ { 2 }", ["x^{2}"], HMER) == 1  # spaces removed for math
    assert ocrbench_hit("X^{2}", ["x^{2}"], HMER) == 0  # case kept for math
    assert ocrbench_hit("abc", ["zzz", "b"], "Doc-oriented VQA") == 1  # any ground truth


def test_groups_and_total() -> None:
    rows = [
        {"index": "1", "category": "Regular Text Recognition", "answer": "['cat']", "prediction": "cat"},
        {"index": "2", "category": "Digit String Recognition", "answer": "['123']", "prediction": "0123"},
        {"index": "3", "category": "Doc-oriented VQA", "answer": "['yes']", "prediction": "no"},
        {"index": "4", "category": HMER, "answer": "['a+b']", "prediction": "a + b"},
        {"index": "5", "category": "Key Information Extraction", "answer": "['ACME']", "prediction": "acme inc"},
    ]
    report = score_ocrbench(rows, ("index", "category", "answer", "prediction"), ScoreContext("OCRBench"))
    rec = report.tables[0].as_records()[0]
    assert rec == {
        "Text Recognition": 2, "Scene Text-centric VQA": 0, "Doc-oriented VQA": 0, "Key Information Extraction": 1,
        HMER: 1, "Final Score": 4, "Final Score Norm": 0.4,
    }
