"""POPE: F1 with Yes as the positive class, plus accuracy, precision and recall, in percent.

A row's ``category`` may list several sub-sets joined by commas (``adversarial,popular``); the
row is counted once per sub-set (VLMEvalKit explodes the column, without stripping spaces), in
the per-category lines and in ``Overall`` alike.
"""

from __future__ import annotations

from collections.abc import Sequence

from mobile_mllm.eval.report import ScoreReport, ScoreTable
from mobile_mllm.eval.scorers.context import Row, ScoreContext, mean
from mobile_mllm.eval.scorers.yn import extract_rows, yn_details

__all__ = ["f1_precision_recall", "score_pope"]


def f1_precision_recall(truth: Sequence[bool], predicted: Sequence[bool]) -> tuple[float, float, float]:
    """(F1, precision, recall) of boolean predictions; 0 where a denominator is 0.

    Example:
        >>> f1_precision_recall([True, True, False], [True, False, True])
        (0.5, 0.5, 0.5)
    """
    tp = sum(t and p for t, p in zip(truth, predicted))
    fp = sum(p and not t for t, p in zip(truth, predicted))
    fn = sum(t and not p for t, p in zip(truth, predicted))
    precision = tp / (tp + fp) if tp + fp else 0
    recall = tp / (tp + fn) if tp + fn else 0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0
    return f1, precision, recall


def _line(name: str, items: Sequence[tuple[Row, str, int]]) -> tuple[str, float, float, float, float]:
    f1, p, r = f1_precision_recall([i[0].get("answer") == "Yes" for i in items], [i[1] == "Yes" for i in items])
    return name, f1 * 100, mean(i[2] for i in items) * 100, p * 100, r * 100


def score_pope(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """POPE table from rows with ``category``, ``answer``, ``prediction``."""
    extracted, hits = extract_rows(rows, ctx)
    exploded: list[tuple[str | None, tuple[Row, str, int]]] = []
    for r, e, h in zip(rows, extracted, hits):
        cats = r.get("category")
        for c in cats.split(",") if cats is not None else [None]:
            exploded.append((c, (r, e, h)))
    lines = [_line("Overall", [item for _, item in exploded])]
    for c in sorted({c for c, _ in exploded if c is not None}):
        lines.append(_line(c, [item for cat, item in exploded if cat == c]))
    table = ScoreTable(name="acc", columns=("split", "Overall", "acc", "precision", "recall"), rows=tuple(lines))
    headline = {"F1": lines[0][1], "acc": lines[0][2]}
    return ScoreReport("pope", ctx.dataset_name, headline, (table,), yn_details(rows, extracted, hits))
