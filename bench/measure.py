"""What every bench script needs around a measurement: the load, the thread pools, a summary, a fresh process.

Imported by the scripts beside it (``bench/`` is the script directory, so ``import measure``
works when one of them runs). Not library code: nothing in ``mobile_mllm`` imports it.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

__all__ = ["loadavg", "run_json", "set_threads", "summary"]


def loadavg() -> list[float]:
    """The 1/5/15-minute load averages, rounded (recorded beside every number: the host is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def summary(values: list[float], digits: int = 4) -> dict[str, Any]:
    """Median, min, max and the rounded values of repeated timings.

    Example:
        >>> summary([3.0, 1.0, 2.0])
        {'median': 2.0, 'min': 1.0, 'max': 3.0, 'values': [3.0, 1.0, 2.0]}
    """
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "values": [round(v, digits) for v in values]}


def set_threads(threads: int) -> dict[str, Any]:
    """Pin torch's intra-op pool and ExecuTorch's threadpool (XNNPACK runs on it) to ``threads``; report both."""
    import torch

    torch.set_num_threads(threads)
    info: dict[str, Any] = {"torch_threads": torch.get_num_threads()}
    try:
        from executorch.extension.pybindings import portable_lib

        portable_lib._unsafe_reset_threadpool(threads)
        info["executorch_threads"] = portable_lib._threadpool_get_thread_count()
    except (ImportError, AttributeError) as e:  # older/newer executorch: report, keep going
        info["executorch_threads_error"] = str(e)
    return info


def run_json(script: str | Path, argv: list[str], *, python: str = sys.executable, cwd: Path | None = None) -> dict[str, Any]:
    """Run ``script argv`` in a fresh process (its own peak RSS, its own thread pools); its last stdout line is JSON.

    Raises:
        RuntimeError: the process failed (with the end of its stderr).
    """
    proc = subprocess.run([python, str(script), *argv], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(script).name} {' '.join(argv[:2])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])
