"""Multiple-choice accuracy, vanilla (MMStar, AI2D, SEED…) and circular (MMBench, CCBench).

Vanilla: each row is right when the extracted letter equals the ground truth; an answer no rule
can read becomes ``Z`` (wrong). Circular: MMBench stores an N-option question N times with the
options rotated, at ``index + k·1e6`` (``g_index`` = the original index); the question counts only
if every rotation is answered right. VLMEvalKit's early exit is kept: a group fails as soon as
one rotation extracts to a wrong letter, and in exact-matching mode a group with an unreadable
rotation fails too.

The table is VLMEvalKit's ``report_acc``: one row per ``split`` (``none`` without the column),
``Overall`` then one column per ``l2-category`` and per ``category`` (sorted, MMBench names
abbreviated), values as fractions in [0, 1].

Deliberately not here: MMMU's open-question rewrite, LEGO sorting questions, the random letter
VLMEvalKit picks when its judge fails three times (we record ``Z``: scores stay reproducible).
"""

from __future__ import annotations

import logging
import string
from collections.abc import Sequence

from mobile_mllm.eval.extract import extract_option
from mobile_mllm.eval.report import ScoreReport, ScoreTable
from mobile_mllm.eval.scorers.context import Row, ScoreContext, mean

logger = logging.getLogger(__name__)

__all__ = ["MMBENCH_ABBREVIATIONS", "report_accuracy", "score_circular", "score_vanilla"]

MMBENCH_ABBREVIATIONS: dict[str, str] = {
    "coarse_perception": "CP",
    "finegrained_perception (instance-level)": "FP-S",
    "finegrained_perception (cross-instance)": "FP-C",
    "logic_reasoning": "LR",
    "relation_reasoning": "RR",
    "attribute_reasoning": "AR",
}
"""Column names VLMEvalKit shortens in MCQ tables."""

CIRCULAR_OFFSET = 1_000_000


def choices_of(row: Row) -> dict[str, str]:
    """Option letter -> text for the options present in a row (VLMEvalKit's ``build_choices``)."""
    return {c: v for c in string.ascii_uppercase if (v := row.get(c)) is not None}


def _judge_prompt(row: Row, choices: dict[str, str]) -> str:
    options = " ".join(f"{k}. {v}" for k, v in choices.items())
    return (
        "Match an answer to the options of a single-choice question. Reply with one capital letter: "
        f"the option the answer means, or Z if it matches none.\nQuestion: {row.get('question')}\n"
        f"Options: {options}\nAnswer: {row.get('prediction')}\nYour output: "
    )


def _extract(row: Row, ctx: ScoreContext, *, use_judge: bool) -> str | None:
    choices = choices_of(row)
    letter = extract_option(row.get("prediction"), choices)
    if letter or not use_judge or ctx.judge is None:
        return letter
    for _ in range(3):
        letter = extract_option(ctx.judge.generate(_judge_prompt(row, choices)), choices)
        if letter:
            return letter
    return "Z"


def _sort_key(row: Row) -> tuple[int, int | str]:
    raw = row.get("index") or ""
    try:
        return (0, int(raw))
    except ValueError:
        return (1, raw)


def report_accuracy(rows: Sequence[Row], hits: Sequence[int], columns: Sequence[str]) -> ScoreTable:
    """VLMEvalKit's ``report_acc``: accuracy per split, overall and per (l2-)category.

    Args:
        rows (Sequence[Row]): the scored rows.
        hits (Sequence[int]): 1/0 per row.
        columns (Sequence[str]): the file's columns (a grouping column counts only if present).
    """
    has_split = "split" in columns
    split_of = [str(r.get("split")) if has_split else "none" for r in rows]
    splits = sorted(set(split_of))
    values: dict[str, list[float]] = {"Overall": [mean(h for h, s in zip(hits, split_of) if s == sp) for sp in splits]}
    for group in ("l2-category", "category"):
        if group not in columns:
            continue
        for ability in sorted({r.get(group) for r in rows if r.get(group) is not None}):
            name = MMBENCH_ABBREVIATIONS.get(ability, ability)
            values[name] = [
                mean(h for h, r, s in zip(hits, rows, split_of) if r.get(group) == ability and s == sp) for sp in splits
            ]
    names = ("split", *values)
    table_rows = tuple((sp, *(values[n][i] for n in values)) for i, sp in enumerate(splits))
    return ScoreTable(name="acc", columns=names, rows=table_rows)


def _headline(table: ScoreTable) -> dict[str, float]:
    overall = table.columns.index("Overall")
    if len(table.rows) == 1:
        return {"Overall": float(table.rows[0][overall]) * 100}
    return {f"Overall ({r[0]})": float(r[overall]) * 100 for r in table.rows}


def score_vanilla(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """Vanilla MCQ accuracy (one row = one question)."""
    ordered = sorted(rows, key=_sort_key)
    extracted = [_extract(r, ctx, use_judge=True) or "Z" for r in ordered]
    hits = [int(e == r.get("answer")) for e, r in zip(extracted, ordered)]
    table = report_accuracy(ordered, hits, columns)
    details = ScoreTable(
        name="details",
        columns=("index", "answer", "prediction", "extracted", "hit"),
        rows=tuple((r.get("index"), r.get("answer"), r.get("prediction"), e, h) for r, e, h in zip(ordered, extracted, hits)),
    )
    return ScoreReport("mcq", ctx.dataset_name, _headline(table), (table,), details)


def group_index(row: Row) -> int:
    """The circular group of a row: ``g_index`` if given, else ``index mod 1e6`` (VLMEvalKit)."""
    g = row.get("g_index")
    return int(float(g)) if g is not None else int(int(row.get("index") or 0) % CIRCULAR_OFFSET)


def _score_group(group: Sequence[Row], ctx: ScoreContext) -> tuple[int, str]:
    preds = [_extract(r, ctx, use_judge=False) for r in group]
    for k, (r, p) in enumerate(zip(group, preds)):
        if p and p != r.get("answer"):
            return 0, f"rotation {k} (index {r.get('index')}) answered {p}, truth {r.get('answer')}"
    if all(p == r.get("answer") for r, p in zip(group, preds)):
        return 1, "all rotations right"
    if ctx.judge is None:
        return 0, "a rotation could not be matched (exact matching, no judge)"
    for k, (r, p) in enumerate(zip(group, preds)):
        if not p:
            p = _extract(r, ctx, use_judge=True)
            if p != r.get("answer"):
                return 0, f"rotation {k} (index {r.get('index')}) judged {p}, truth {r.get('answer')}"
    return 1, "all rotations right (judge used)"


def score_circular(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """Circular MCQ accuracy: one hit per original question, all rotations right."""
    ordered = sorted(rows, key=_sort_key)
    groups: dict[int, list[Row]] = {}
    for r in ordered:
        groups.setdefault(group_index(r), []).append(r)
    main = [r for r in ordered if int(r.get("index") or 0) == group_index(r)]
    results = [_score_group(groups[group_index(r)], ctx) for r in main]
    hits = [h for h, _ in results]
    table = report_accuracy(main, hits, columns)
    details = ScoreTable(
        name="details",
        columns=("index", "answer", "rotations", "hit", "log"),
        rows=tuple(
            (r.get("index"), r.get("answer"), len(groups[group_index(r)]), h, log) for r, (h, log) in zip(main, results)
        ),
    )
    orphans = len(ordered) - sum(len(groups[group_index(r)]) for r in main)
    notes = (f"{orphans} rotation row(s) have no original question (index == g_index) and are ignored",) if orphans else ()
    return ScoreReport("mcq-circular", ctx.dataset_name, _headline(table), (table,), details, notes=notes)
