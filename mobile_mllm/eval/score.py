"""Score a VLMEvalKit-layout prediction file: read, merge with the benchmark, pick the scorer, run it.

The prediction file (``.tsv`` or ``.xlsx``: the benchmark's columns plus ``prediction``) may come
from anywhere — this toolkit, a phone app, VLMEvalKit itself. With ``data`` (the benchmark TSV)
the prediction file may be just ``index`` + ``prediction``: other columns are filled in from the
benchmark by index, and the benchmark's ``answer`` is the ground truth (as VLMEvalKit uses its own
copy of the dataset). The dataset type comes from ``dataset_type``, else from a ``<stem>.toml``
suite file beside the data (or prediction) file, else from the file name as VLMEvalKit infers it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.data import BadRow, Table, handle_bad_row, read_table, require_columns
from mobile_mllm.eval.report import ScoreReport
from mobile_mllm.eval.scorers import SCORERS, DatasetType, ScoreContext, infer_dataset_type
from mobile_mllm.eval.scorers.context import Judge, Row

logger = logging.getLogger(__name__)

__all__ = ["ScoreConfig", "resolve_dataset_type", "score_predictions"]


@dataclass(frozen=True)
class ScoreConfig:
    """Settings of ``mobile-mllm eval-score``."""

    dataset_type: DatasetType | None = None
    """How to score; inferred from the suite TOML or the file name when unset."""
    data: Path | None = None
    """The benchmark TSV/xlsx the predictions answer (fills in columns; its answers are the truth)."""
    skip_bad_rows: bool = False
    """Report unusable rows and score the rest instead of stopping at the first."""
    judge_url: str | None = None
    """OpenAI-compatible endpoint for answers exact matching cannot read (off by default)."""
    judge_model: str = "gpt-4o-mini"
    """Model name sent to the judge endpoint."""


def _merge(pred: Table, data: Table, skip: bool, bad: list[BadRow]) -> tuple[list[str], list[Row], list[int]]:
    require_columns(data, ("index",), "matching predictions to the benchmark")
    by_index = {str(r.get("index")): r for r in data.rows}
    columns = list(pred.columns) + [c for c in data.columns if c not in pred.columns]
    rows, keep = [], []
    for i, row in enumerate(pred.rows):
        truth = by_index.get(str(row.get("index")))
        if truth is None:
            handle_bad_row(pred, i, f"index not found in the benchmark {data.path}", skip, bad)
            continue
        merged = dict(truth)
        merged.update({k: v for k, v in row.items() if v is not None or k not in truth})
        if truth.get("answer") is not None:
            merged["answer"] = truth["answer"]
        rows.append(merged)
        keep.append(i)
    return columns, rows, keep


def resolve_dataset_type(name_source: Path, columns: list[str], explicit: DatasetType | None) -> DatasetType:
    """``explicit``, else the ``dataset_type`` of ``<stem>.toml`` beside the file, else name inference.

    Raises:
        EvalDataError: nothing decides the type (the message lists the types to pass).
    """
    if explicit is not None:
        return explicit
    sidecar = name_source.with_suffix(".toml")
    if sidecar.is_file():
        from mobile_mllm.eval.suite import load_suite  # noqa: PLC0415

        return load_suite(sidecar).dataset_type
    inferred = infer_dataset_type(name_source.stem)
    if inferred is None:
        known = ", ".join(t.value for t in DatasetType)
        hint = " (it has option columns A/B: --dataset-type mcq?)" if {"A", "B"} <= set(columns) else ""
        raise EvalDataError(
            f"cannot tell how to score {name_source.name}: its name {name_source.stem!r} identifies no known "
            f"benchmark{hint}; pass --dataset-type (one of: {known}; any case, VLMEvalKit's MCQ and Y/N too)"
        )
    logger.info("dataset type %s inferred from the name %s", inferred.value, name_source.stem)
    return inferred


def score_predictions(predictions: str | Path, config: ScoreConfig = ScoreConfig(), judge: Judge | None = None) -> ScoreReport:
    """Score one prediction file.

    Args:
        predictions (str | Path): ``.tsv``/``.xlsx`` with ``index`` and ``prediction`` (plus the
            benchmark columns unless ``config.data`` supplies them).
        config (ScoreConfig): dataset type, benchmark file, bad-row policy. Default ScoreConfig().
        judge (Judge | None): matching judge; when None and ``config.judge_url`` is set, an
            :class:`~mobile_mllm.eval.judge.OpenAIJudge` is built. Default None.

    Returns:
        The report (tables, headline, per-row details, skipped rows).

    Raises:
        EvalDataError: a missing file or column, or (without ``skip_bad_rows``) an unusable row.
    """
    pred = read_table(predictions)
    require_columns(pred, ("index", "prediction"), "scoring predictions")
    bad: list[BadRow] = []
    if config.data is not None:
        data = read_table(config.data)
        columns, rows, keep = _merge(pred, data, config.skip_bad_rows, bad)
        name_source = data.path
    else:
        columns, rows, keep = list(pred.columns), [dict(r) for r in pred.rows], list(range(len(pred.rows)))
        name_source = pred.path
    dtype = resolve_dataset_type(name_source, columns, config.dataset_type)
    spec = SCORERS[dtype]
    missing = [c for c in spec.required if c not in columns]
    if missing:
        where = f"{pred.path}" + (f" or {config.data}" if config.data else "")
        raise EvalDataError(
            f"{where} lacks column(s) {', '.join(repr(c) for c in missing)} needed to score {dtype.value}; "
            f"columns present: {', '.join(columns)}"
        )
    usable: list[Row] = []
    seen: set[str] = set()
    for i, row in zip(keep, rows):
        empty = [c for c in ("index", *spec.required) if row.get(c) is None]
        reason = f"no value in column(s) {', '.join(empty)}" if empty else spec.check(row)
        if reason is None and str(row.get("index")) in seen:
            reason = "duplicate index (an earlier row has it)"
        if reason is not None:
            handle_bad_row(pred, i, reason, config.skip_bad_rows, bad)
            continue
        seen.add(str(row.get("index")))
        if row.get("prediction") is None:  # pandas reads an empty cell as NaN; VLMEvalKit scores str(NaN)
            row["prediction"] = "nan"
        usable.append(row)
    if not usable:
        raise EvalDataError(f"{pred.path}: no usable rows to score ({len(bad)} bad)")
    if judge is None and config.judge_url:
        from mobile_mllm.eval.judge import OpenAIJudge  # noqa: PLC0415

        judge = OpenAIJudge(url=config.judge_url, model=config.judge_model)
    ctx = ScoreContext(dataset_name=name_source.stem, judge=judge)
    report = spec.score(usable, columns, ctx)
    logger.info("%s: scored %d rows as %s (%d bad rows skipped)", pred.path, len(usable), dtype.value, len(bad))
    return dataclasses.replace(report, bad_rows=tuple(bad))
