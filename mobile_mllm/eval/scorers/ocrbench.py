"""OCRBench: a row scores 1 if any ground truth occurs in the prediction; totals out of 1000.

Matching is on lowercased, stripped text with newlines as spaces; for handwritten mathematical
expressions all spaces are removed and case is kept. The six text-recognition categories are
summed into ``Text Recognition``; ``Final Score`` is the total (max 1000) and ``Final Score Norm``
the total / 10, which the OpenCompass average uses.
"""

from __future__ import annotations

from collections.abc import Sequence

from mobile_mllm.eval.report import ScoreReport, ScoreTable, table_from_dict
from mobile_mllm.eval.scorers.context import Row, ScoreContext, parse_answers

__all__ = ["OCRBENCH_CATEGORIES", "ocrbench_hit", "score_ocrbench"]

TEXT_RECOGNITION = (
    "Regular Text Recognition",
    "Irregular Text Recognition",
    "Artistic Text Recognition",
    "Handwriting Recognition",
    "Digit String Recognition",
    "Non-Semantic Text Recognition",
)
HMER = "Handwritten Mathematical Expression Recognition"
OCRBENCH_CATEGORIES: tuple[str, ...] = (
    *TEXT_RECOGNITION, "Scene Text-centric VQA", "Doc-oriented VQA", "Key Information Extraction", HMER,
)
"""The ten OCRBench categories (a row's ``category`` must be one of them)."""


def ocrbench_hit(prediction: str, answers: Sequence[str], category: str) -> int:
    """1 if a ground truth occurs in the prediction under OCRBench's normalisation, else 0.

    Example:
        >>> ocrbench_hit("The sign says STOP here", ["stop"], "Regular Text Recognition")
        1
        >>> ocrbench_hit("x ^ 2", ["X^2"], "Handwritten Mathematical Expression Recognition")
        0
    """
    if category == HMER:
        pred = prediction.strip().replace("\n", " ").replace(" ", "")
        return int(any(a.strip().replace("\n", " ").replace(" ", "") in pred for a in answers))
    pred = prediction.lower().strip().replace("\n", " ")
    return int(any(a.lower().strip().replace("\n", " ") in pred for a in answers))


def score_ocrbench(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """OCRBench groups and total from rows with ``category``, ``answer`` (list literal), ``prediction``."""
    hits = [ocrbench_hit(str(r.get("prediction")), parse_answers(r.get("answer")), str(r.get("category"))) for r in rows]
    per_cat = dict.fromkeys(OCRBENCH_CATEGORIES, 0)
    for r, h in zip(rows, hits):
        per_cat[str(r.get("category"))] += h
    groups: dict[str, float] = {"Text Recognition": sum(per_cat[c] for c in TEXT_RECOGNITION)}
    for c in ("Scene Text-centric VQA", "Doc-oriented VQA", "Key Information Extraction", HMER):
        groups[c] = per_cat[c]
    groups["Final Score"] = sum(groups.values())
    groups["Final Score Norm"] = groups["Final Score"] / 10
    table = table_from_dict("score", groups)
    categories = ScoreTable(
        name="categories",
        columns=("category", "hits", "rows"),
        rows=tuple((c, per_cat[c], sum(str(r.get("category")) == c for r in rows)) for c in OCRBENCH_CATEGORIES),
    )
    details = ScoreTable(
        name="details",
        columns=("index", "category", "answer", "prediction", "score"),
        rows=tuple((r.get("index"), r.get("category"), r.get("answer"), r.get("prediction"), h) for r, h in zip(rows, hits)),
    )
    headline = {"Final Score": groups["Final Score"], "Final Score Norm": groups["Final Score Norm"]}
    return ScoreReport("ocrbench", ctx.dataset_name, headline, (table, categories), details)
