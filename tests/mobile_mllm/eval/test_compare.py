"""eval-compare: paired outcomes, the exact McNemar test (vs scipy's binomial test), the tables."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.compare import compare_runs, format_markdown, load_results, mcnemar_exact


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 3), (1, 9), (4, 6), (12, 3), (30, 45)])
def test_mcnemar_is_the_two_sided_binomial_test_of_the_discordant_pairs(b: int, c: int) -> None:
    stats = pytest.importorskip("scipy.stats")
    expected = 1.0 if b + c == 0 else stats.binomtest(b, b + c, 0.5, alternative="two-sided").pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-12)


def _results(root: Path, hits: dict[str, int], categories: dict[str, str], tokens: float) -> Path:
    """A results directory as `mobile-mllm eval` writes it (the files eval-compare reads), for one MCQ benchmark."""
    (root / "quiz").mkdir(parents=True)
    (root / "quiz" / "details.csv").write_text(
        "index,answer,prediction,extracted,hit\n" + "".join(f"{k},A,x,x,{h}\n" for k, h in hits.items()))
    (root / "quiz" / "m_quiz.tsv").write_text(
        "index\tcategory\tprediction\n" + "".join(f"{k}\t{categories[k]}\tx\n" for k in hits))
    overall = 100 * sum(hits.values()) / len(hits)
    summary = {"identity": {"model": str(root), "backend": "pte"},
               "benchmarks": {"quiz": {"dataset_type": "mcq", "predictions": "quiz/m_quiz.tsv",
                                       "headline": {"Overall": overall}, "means": {"num_image_tokens": tokens}}}}
    (root / "summary.json").write_text(json.dumps(summary))
    return root


def test_discordant_pairs_count_only_shared_questions(tmp_path: Path) -> None:
    cats = {str(i): "colour" if i < 4 else "shape" for i in range(7)}
    a = _results(tmp_path / "a", {"0": 1, "1": 1, "2": 0, "3": 1, "4": 0, "5": 1}, cats, 250.0)
    b = _results(tmp_path / "b", {"0": 1, "1": 0, "2": 1, "3": 0, "4": 1, "6": 1}, cats, 260.0)  # 5 not answered, 6 extra
    [c] = compare_runs([load_results(a, "A"), load_results(b, "B")])
    assert c.shared == (6, 5)
    assert c.discordant[1] == (2, 2)  # right only in A: 1, 3; right only in B: 2, 4
    assert c.p_values[1] == pytest.approx(1.0)
    assert c.per_category["colour"] == pytest.approx((75.0, 50.0))  # A: 0,1,3 of 0-3; B: 0,2 of 0-3
    assert c.per_category["shape"] == pytest.approx((50.0, 100.0))  # A: 5 of 4,5; B: 4,6 of 4,6
    text = format_markdown([c])
    assert "| B | 66.7 | +0.0 | 5 | 2 / 2 | 1 | 260 |" in text
    assert "| shape | 50.0 | 100.0 | +50.0 |" in text


def test_results_without_a_common_benchmark_are_refused(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="summary.json not found"):
        load_results(tmp_path)
    with pytest.raises(EvalDataError, match="at least two"):
        compare_runs([])
