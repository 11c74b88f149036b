"""Score tables: what a scorer returns, written as CSV + JSON and summarised for the terminal.

Each scorer returns a :class:`ScoreReport`: the tables VLMEvalKit would write (same rows, columns
and units: MCQ accuracies are fractions, every other family is in percent, OCRBench in points),
a headline (the leaderboard number), and a per-row details table (extracted answer, hit), so a
surprising score can be traced to the rows behind it.

Deliberately not here: plotting, comparisons between runs.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobile_mllm.eval.data import BadRow

logger = logging.getLogger(__name__)

__all__ = ["ScoreReport", "ScoreTable", "format_summary", "table_from_dict", "write_report"]

Cell = str | int | float | None


@dataclass(frozen=True)
class ScoreTable:
    """A named table: column names and rows of cells."""

    name: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def as_records(self) -> list[dict[str, Cell]]:
        """Rows as ``{column: value}`` dicts (the JSON layout)."""
        return [dict(zip(self.columns, r)) for r in self.rows]


@dataclass(frozen=True)
class ScoreReport:
    """Everything one scoring run produced."""

    dataset_type: str
    dataset_name: str
    headline: Mapping[str, float]
    """The numbers a leaderboard quotes (e.g. ``{"Overall": 71.3}``)."""
    tables: tuple[ScoreTable, ...]
    details: ScoreTable
    """One row per scored prediction: index, answer, prediction, extracted answer, score."""
    bad_rows: tuple[BadRow, ...] = ()
    notes: tuple[str, ...] = field(default=())
    """Warnings worth keeping with the numbers (e.g. MME categories missing from the file)."""


def table_from_dict(name: str, values: Mapping[str, Cell]) -> ScoreTable:
    """A one-row table from ``{column: value}`` (VLMEvalKit's ``d2df``)."""
    return ScoreTable(name=name, columns=tuple(values), rows=(tuple(values.values()),))


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _csv_text(table: ScoreTable) -> str:
    import io  # noqa: PLC0415

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows(table.rows)
    return buf.getvalue()


def write_report(report: ScoreReport, out_dir: str | Path, *, config: Mapping[str, Any] | None = None) -> list[Path]:
    """Write ``<table>.csv`` per table, ``details.csv`` and ``scores.json`` under ``out_dir``.

    Files are written under a temporary name and renamed, so a crash never leaves half a table.

    Args:
        report (ScoreReport): what to write.
        out_dir (str | Path): the directory (created if needed).
        config (Mapping | None): the resolved scoring settings, stored in ``scores.json``. Default None.

    Returns:
        The paths written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for table in (*report.tables, report.details):
        path = out / f"{table.name}.csv"
        _write_atomic(path, _csv_text(table))
        written.append(path)
    payload = {
        "dataset_type": report.dataset_type,
        "dataset_name": report.dataset_name,
        "config": dict(config or {}),
        "headline": {k: _json_ready(v) for k, v in report.headline.items()},
        "tables": {t.name: [{k: _json_ready(v) for k, v in r.items()} for r in t.as_records()] for t in report.tables},
        "num_scored": len(report.details.rows),
        "bad_rows": [vars(b) for b in report.bad_rows],
        "notes": list(report.notes),
    }
    path = out / "scores.json"
    _write_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
    written.append(path)
    logger.info("wrote %s", ", ".join(str(p) for p in written))
    return written


def _fmt(value: Cell) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) > 1 else f"{value:.4f}"
    return "" if value is None else str(value)


def _render(table: ScoreTable) -> list[str]:
    cells = [list(table.columns)] + [[_fmt(v) for v in r] for r in table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return [f"[{table.name}]", *lines]


def format_summary(report: ScoreReport, *, tables: Sequence[str] | None = None) -> str:
    """A plain-text summary: headline, then each table (or those named in ``tables``)."""
    lines = [f"{report.dataset_name} ({report.dataset_type}): {len(report.details.rows)} rows scored"]
    if report.bad_rows:
        lines.append(f"skipped {len(report.bad_rows)} bad row(s)")
    lines += [f"{k}: {_fmt(v)}" for k, v in report.headline.items()]
    for table in report.tables:
        if tables is None or table.name in tables:
            if len(table.columns) > 12 and len(table.rows) == 1:  # wide one-row table: print vertically
                lines.append(f"[{table.name}]")
                width = max(len(c) for c in table.columns)
                lines += [f"{c.rjust(width)}  {_fmt(v)}" for c, v in zip(table.columns, table.rows[0])]
            else:
                lines += _render(table)
    lines += [f"note: {n}" for n in report.notes]
    return "\n".join(lines)
