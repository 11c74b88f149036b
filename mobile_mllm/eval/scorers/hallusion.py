"""HallusionBench: aAcc (questions), fAcc (figures) and qAcc (questions across figures), in percent.

The index is a string like ``VS_chart_0_1_0``; its ``_``-separated tokens 3, 4 and 5 are set_id,
figure_id and question_id. A figure group (``l2-category`` + set_id + figure_id) counts only if
all its questions are right; a question group (``l2-category`` + set_id + question_id) likewise;
``category`` is not part of either key. Rows: ``Overall``, then each category and each
l2-category (sorted). The leaderboard quotes the mean of the three ``Overall`` numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from mobile_mllm.eval.report import ScoreReport, ScoreTable
from mobile_mllm.eval.scorers.context import Row, ScoreContext, mean
from mobile_mllm.eval.scorers.yn import extract_rows, yn_details

__all__ = ["hallusion_ids", "score_hallusion"]


def hallusion_ids(index: str) -> tuple[str, str, str]:
    """(set_id, figure_id, question_id) from a HallusionBench index.

    Raises:
        ValueError: the index has fewer than six ``_``-separated tokens.

    Example:
        >>> hallusion_ids("VS_chart_0_1_0")
        Traceback (most recent call last):
        ...
        ValueError: HallusionBench index 'VS_chart_0_1_0' has 5 '_'-separated tokens; expected at least 6 (…_set_figure_question)
        >>> hallusion_ids("VD_figure_illusion_3_1_0")
        ('3', '1', '0')
    """
    parts = index.split("_")
    if len(parts) < 6:
        raise ValueError(
            f"HallusionBench index {index!r} has {len(parts)} '_'-separated tokens; expected at least 6 (…_set_figure_question)"
        )
    return parts[3], parts[4], parts[5]


def _group_accuracy(rows: Sequence[Row], hits: Sequence[int], token: int) -> float:
    groups: dict[str, list[int]] = {}
    for r, h in zip(rows, hits):
        ids = hallusion_ids(str(r.get("index")))
        groups.setdefault(f"{r.get('l2-category')}_{ids[0]}_{ids[token]}", []).append(h)
    return mean(int(all(g)) for g in groups.values()) * 100


def _line(name: str, rows: Sequence[Row], hits: Sequence[int]) -> tuple[str, float, float, float]:
    return name, mean(hits) * 100, _group_accuracy(rows, hits, 1), _group_accuracy(rows, hits, 2)


def score_hallusion(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """HallusionBench table from rows with string indices, ``l2-category``, ``answer``, ``prediction``."""
    extracted, hits = extract_rows(rows, ctx)
    lines = [_line("Overall", rows, hits)]
    for group in ("category", "l2-category"):
        if group in columns:
            for c in sorted({str(r.get(group)) for r in rows}):
                sub = [(r, h) for r, h in zip(rows, hits) if str(r.get(group)) == c]
                lines.append(_line(c, [r for r, _ in sub], [h for _, h in sub]))
    table = ScoreTable(name="acc", columns=("split", "aAcc", "fAcc", "qAcc"), rows=tuple(lines))
    _, a, f, q = lines[0]
    headline = {"aAcc": a, "fAcc": f, "qAcc": q, "Overall": (a + f + q) / 3}
    return ScoreReport("hallusionbench", ctx.dataset_name, headline, (table,), yn_details(rows, extracted, hits))
