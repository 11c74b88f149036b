"""Several models or programs scored on one suite, side by side, with each one's change against the first.

What ``mobile-mllm export --accuracy-limit N`` appends to a MediaTek export's report: the float
model, the simulated NPU program (A16W4) and optionally a CPU program (w4) over the quick
synthetic suite, so the accuracy cost of a recipe is known before any phone or SDK. Each run is
an ordinary :func:`~mobile_mllm.eval.run.run_eval` into its own results folder (so
``mobile-mllm eval-compare`` can test the differences for significance).

Deliberately not here: scoring (``scorers/``), running models (``run.py``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["add_accuracy_to_report", "score_side_by_side"]

logger = logging.getLogger(__name__)


def score_side_by_side(
    runs: Mapping[str, str], *, data: str | Path, limit: int, out_dir: str | Path, max_new_tokens: int = 32
) -> dict[str, Any]:
    """Score each of ``runs`` (label -> model, program directory or ``builtin:NAME``) on ``data``.

    Args:
        runs (Mapping[str, str]): in order; the first is the reference the deltas are taken against.
        data (str | Path): a benchmark, suite or suite list (e.g. ``eval/quick.toml``).
        limit (int): questions per benchmark.
        out_dir (str | Path): one results folder per label is made inside.
        max_new_tokens (int): answer length limit. Default 32.

    Returns:
        dict: ``{"data", "limit", "scores": {label: {benchmark: headline}}, "delta": {label:
        {benchmark: {metric: change vs the first label}}}}``.
    """
    from mobile_mllm.eval.run import EvalConfig, run_eval

    scores: dict[str, dict[str, dict[str, float | None]]] = {}
    for label, model in runs.items():
        cfg = EvalConfig(data=str(data), limit=limit, max_new_tokens=max_new_tokens)
        results = run_eval(model, cfg, Path(out_dir) / label)
        scores[label] = {
            r.name: {k: (None if isinstance(v, float) and math.isnan(v) else float(v)) for k, v in r.report.headline.items()}
            for r in results
        }
        logger.info("%s: %s", label, scores[label])
    first = next(iter(scores.values()))
    delta = {
        label: {
            bench: {k: round(v - first[bench][k], 4) for k, v in metrics.items()
                    if v is not None and first.get(bench, {}).get(k) is not None}
            for bench, metrics in table.items()
        }
        for label, table in scores.items()
    }
    return {"data": str(data), "limit": limit, "scores": scores, "delta": delta}


def add_accuracy_to_report(
    export_dir: str | Path, *, model: str, reference: str, data: str | Path, limit: int
) -> dict[str, Any]:
    """Score an export beside its float model (and ``reference``), and store the result in its ``export_report.json``.

    Args:
        export_dir (str | Path): the export folder (its results go to ``accuracy/`` inside).
        model (str): the float model it was exported from.
        reference (str): another program folder to score beside them, or "".
        data (str | Path): the suite.
        limit (int): questions per benchmark.

    Returns:
        dict: the ``accuracy`` section (see :func:`score_side_by_side`).
    """
    from mobile_mllm import contract

    out = Path(export_dir)
    runs = {"float": model, "export": str(out)}
    if reference:
        runs["reference"] = reference
    section = score_side_by_side(runs, data=data, limit=limit, out_dir=out / "accuracy")
    section["runs"] = runs
    path = out / contract.EXPORT_REPORT_FILE
    report = json.loads(path.read_text(encoding="utf-8"))
    report["accuracy"] = section
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return section
