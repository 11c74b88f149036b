"""Raw timestamps and counts of one answer, and the rates derived from them.

Modelled on ExecuTorch's ``extension/llm/runner/stats.h``: the runner records wall-clock
timestamps (milliseconds since the epoch) and counts, nothing else; every rate comes from
:func:`derive_rates`, so the host, the phone runner and the reports cannot disagree on what
"prefill tok/s" means. Host and phone print the same ``PyTorchObserver {json}`` line.
Deliberately not here: formatting for humans (that is ``cli.py``'s table).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobile_mllm.contract import STATS_LINE_PREFIX

logger = logging.getLogger(__name__)

__all__ = ["Stats", "derive_rates", "now_ms", "peak_rss_bytes"]


def now_ms() -> float:
    """Wall-clock time in milliseconds since the epoch (float: a tiny model's tile takes < 1 ms)."""
    return time.time_ns() / 1e6


def peak_rss_bytes() -> int:
    """Peak resident set size of this process in bytes.

    Reads ``VmHWM`` from ``/proc/self/status`` (Linux and Android, where the phone runner reads
    the same field); elsewhere falls back to ``getrusage``'s ``ru_maxrss`` (KiB on Linux, bytes
    on macOS).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        logger.debug("no VmHWM in /proc/self/status; using getrusage")
    import resource  # POSIX only, hence not at module level

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(maxrss if sys.platform == "darwin" else maxrss * 1024)


@dataclass(frozen=True)
class Stats:
    """Timestamps (ms since the epoch) and counts of one answer; 0 means "did not happen".

    The image timestamps are 0 on a turn without a new image (the cached prefix was reused).
    """

    model_load_start_ms: float = 0.0
    model_load_end_ms: float = 0.0
    inference_start_ms: float = 0.0
    """When ask() was called (planning, image decoding and tiling come after it)."""
    image_encode_start_ms: float = 0.0
    """When the first vision_encoder call started (the image already decoded and tiled)."""
    image_encode_end_ms: float = 0.0
    """When the last vision_encoder call returned."""
    vision_batch_ms: tuple[float, ...] = ()
    """Duration of each vision_encoder call, in call order."""
    vision_batch_sizes: tuple[int, ...] = ()
    """Tiles in each vision_encoder call (9 tiles at batch 4: 4, 4, 1)."""
    prompt_eval_end_ms: float = 0.0
    """When the last prefill chunk returned."""
    first_token_ms: float = 0.0
    """When the first answer token was sampled."""
    inference_end_ms: float = 0.0
    """When the answer was complete."""
    num_prompt_tokens: int = 0
    """Positions prefilled in this turn (text and image tokens)."""
    num_image_tokens: int = 0
    """Positions filled by image embeddings in this turn."""
    num_tiles: int = 0
    """Tiles encoded in this turn (local tiles plus the thumbnail)."""
    num_generated_tokens: int = 0
    num_cached_tokens: int = 0
    """Positions reused from earlier turns (not prefilled again)."""
    grid: tuple[int, int] | None = None
    """(cols, rows) of the image's tile grid, or None without a new image."""
    reduced_by_budget: bool = False
    """Whether the grid was made smaller so the image tokens fit the context."""
    peak_rss_bytes: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Backend-specific counts (e.g. the program's method names); not used by derive_rates."""

    def to_dict(self) -> dict[str, Any]:
        """Raw fields plus :func:`derive_rates`, JSON-ready."""
        out: dict[str, Any] = {
            name: (list(v) if isinstance(v, tuple) else v) for name, v in self.__dict__.items()
        }
        out.update(derive_rates(self))
        return out

    def to_json(self) -> str:
        """One-line JSON of :meth:`to_dict`."""
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False)

    def observer_line(self) -> str:
        """The ``PyTorchObserver {json}`` line every runner prints (host and phone)."""
        return STATS_LINE_PREFIX + self.to_json()


def _rate(count: int, ms: float) -> float:
    return count * 1000.0 / ms if ms > 0 else 0.0


def derive_rates(s: Stats) -> dict[str, float]:
    """Every rate and duration reported anywhere, computed from a :class:`Stats`.

    Prefill tok/s is the turn's prompt positions over the time from the end of image encoding
    (or the start, without an image) to the end of prompt evaluation; decode tok/s is the
    generated tokens over the time from the end of prompt evaluation to the end, as in
    ExecuTorch's ``stats.h`` report, so host and phone numbers compare directly.

    Example:
        >>> r = derive_rates(Stats(inference_start_ms=0, prompt_eval_end_ms=500, first_token_ms=501,
        ...                        inference_end_ms=1500, num_prompt_tokens=1000, num_generated_tokens=10))
        >>> r["prefill_tok_s"], r["decode_tok_s"]
        (2000.0, 10.0)
    """
    prefill_start = s.image_encode_end_ms if s.image_encode_end_ms else s.inference_start_ms
    encode_ms = s.image_encode_end_ms - s.image_encode_start_ms
    prefill_ms = s.prompt_eval_end_ms - prefill_start
    decode_ms = s.inference_end_ms - s.prompt_eval_end_ms
    return {
        "model_load_ms": s.model_load_end_ms - s.model_load_start_ms,
        "image_encode_ms": encode_ms,
        "image_encode_ms_per_tile": encode_ms / s.num_tiles if s.num_tiles else 0.0,
        "prefill_ms": prefill_ms,
        "prefill_tok_s": _rate(s.num_prompt_tokens, prefill_ms),
        "time_to_first_token_ms": s.first_token_ms - s.inference_start_ms if s.first_token_ms else 0.0,
        "decode_ms": decode_ms,
        "decode_tok_s": _rate(s.num_generated_tokens, decode_ms),
        "total_ms": s.inference_end_ms - s.inference_start_ms,
    }

