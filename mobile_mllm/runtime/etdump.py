"""ExecuTorch's per-operator profile (ETDump), read with its ``Inspector`` and aggregated per event.

One aggregation for every caller: ``bench/`` scripts and ``mobile-mllm profile --etdump``.
Events named ``Method::execute``, ``DELEGATE_CALL`` and ``OPERATOR_CALL`` are the frames
around the leaves (XNNPACK kernels by name, portable or optimized operators); the delegate share
is the time inside delegate calls over the time inside delegate and operator calls.
Deliberately not here: recording (``runtime/pte.py``, ``enable_etdump``), pulling files off a device.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["FRAME_EVENTS", "aggregate_events", "format_etdump", "summarize_etdump"]

FRAME_EVENTS = ("Method::execute", "DELEGATE_CALL", "OPERATOR_CALL")


def aggregate_events(paths: str | Path | Sequence[str | Path]) -> list[dict[str, Any]]:
    """Per event name over the ``Execute`` blocks of one or more ETDumps: calls and total ms, largest first."""
    from executorch.devtools import Inspector

    agg: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0])
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        for block in Inspector(etdump_path=str(path)).event_blocks:
            if block.name != "Execute":
                continue
            for ev in block.events:
                if ev.perf_data is None:
                    continue
                agg[ev.name][0] += len(ev.perf_data.raw)
                agg[ev.name][1] += sum(ev.perf_data.raw)
    rows = [{"event": k, "calls": int(n), "total_ms": round(ms, 3)} for k, (n, ms) in agg.items()]
    return sorted(rows, key=lambda r: -r["total_ms"])


def summarize_etdump(paths: str | Path | Sequence[str | Path], top: int = 15) -> dict[str, Any]:
    """Top leaf events with their shares, and the delegate share, of one or more ETDumps."""
    rows = aggregate_events(paths)
    frames = {r["event"]: r["total_ms"] for r in rows if r["event"] in FRAME_EVENTS}
    leaves = [r for r in rows if r["event"] not in FRAME_EVENTS]
    leaf_ms = sum(r["total_ms"] for r in leaves) or 1.0
    delegate, operator = frames.get("DELEGATE_CALL", 0.0), frames.get("OPERATOR_CALL", 0.0)
    return {
        "method_execute_ms": frames.get("Method::execute", 0.0),
        "delegate_ms": delegate,
        "operator_ms": operator,
        "delegate_share": delegate / (delegate + operator) if delegate + operator else 0.0,
        "top_events": [{**r, "share": round(r["total_ms"] / leaf_ms, 4)} for r in leaves[:top]],
    }


def format_etdump(summary: dict[str, Any]) -> str:
    """The summary as lines: delegate share, then the top events."""
    lines = [f"delegate share {summary['delegate_share']:.1%} (delegate {summary['delegate_ms']:.1f} ms, "
             f"operators {summary['operator_ms']:.1f} ms, method execute {summary['method_execute_ms']:.1f} ms)"]
    lines += [f"{r['share']:7.1%} {r['total_ms']:10.2f} ms {r['calls']:6d} calls  {r['event']}" for r in summary["top_events"]]
    return "\n".join(lines)
