"""Yes/No benchmarks: answer extraction shared by MME, HallusionBench and POPE, and the default table.

Each prediction becomes ``Yes``, ``No`` or ``Unknown`` (:func:`~mobile_mllm.eval.extract.extract_yes_no`,
then the judge for ``Unknown`` when one is configured); a row is right when that equals the
``answer`` column exactly. The default table (VLMEvalKit's ``default_rating``) is one row:
``Overall`` then each ``category`` and ``l2-category`` (sorted), in percent.
"""

from __future__ import annotations

from collections.abc import Sequence

from mobile_mllm.eval.extract import extract_yes_no
from mobile_mllm.eval.report import ScoreReport, ScoreTable, table_from_dict
from mobile_mllm.eval.scorers.context import Row, ScoreContext, mean

__all__ = ["extract_rows", "score_default", "yn_details"]


def _judge_prompt(row: Row) -> str:
    return (
        "Decide whether an answer to a yes/no question means Yes or No. Reply with one word: "
        f"Yes, No, or Unknown if it means neither.\nQuestion: {row.get('question')}\n"
        f"Answer: {row.get('prediction')}\nYour output: "
    )


def extract_rows(rows: Sequence[Row], ctx: ScoreContext) -> tuple[list[str], list[int]]:
    """Extracted Yes/No/Unknown per row and whether it equals the row's ``answer``."""
    extracted = []
    for r in rows:
        value = extract_yes_no(r.get("prediction"))
        if value == "Unknown" and ctx.judge is not None:
            for _ in range(5):
                value = extract_yes_no(ctx.judge.generate(_judge_prompt(r)))
                if value != "Unknown":
                    break
        extracted.append(value)
    return extracted, [int(e == r.get("answer")) for e, r in zip(extracted, rows)]


def yn_details(rows: Sequence[Row], extracted: Sequence[str], hits: Sequence[int]) -> ScoreTable:
    """The per-row details table of every Y/N family."""
    return ScoreTable(
        name="details",
        columns=("index", "category", "answer", "prediction", "extracted", "score"),
        rows=tuple(
            (r.get("index"), r.get("category"), r.get("answer"), r.get("prediction"), e, h)
            for r, e, h in zip(rows, extracted, hits)
        ),
    )


def score_default(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """Plain Y/N accuracy, overall and per category / l2-category."""
    extracted, hits = extract_rows(rows, ctx)
    values: dict[str, float] = {"Overall": mean(hits) * 100}
    for group in ("category", "l2-category"):
        if group in columns:
            for c in sorted({r.get(group) for r in rows if r.get(group) is not None}):
                values[c] = mean(h for h, r in zip(hits, rows) if r.get(group) == c) * 100
    table = table_from_dict("acc", values)
    return ScoreReport("yn", ctx.dataset_name, {"Overall": values["Overall"]}, (table,), yn_details(rows, extracted, hits))
