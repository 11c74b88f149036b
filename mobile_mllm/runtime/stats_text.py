"""A :class:`~mobile_mllm.runtime.stats.Stats` record as labelled, human-readable rows.

One formatting for every place a person reads stats (``mobile-mllm run``'s table, the demo's
stats panel), so the two never disagree on units or rounding. Takes the JSON-ready dict of
``Stats.to_dict()`` (raw fields plus derived rates), which is also what a stats line carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["stats_rows"]


def stats_rows(stats: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, value)`` rows of one answer's stats.

    Args:
        stats (Mapping[str, Any]): ``Stats.to_dict()`` of an answer.

    Example:
        >>> from mobile_mllm.runtime.stats import Stats
        >>> rows = dict(stats_rows(Stats(num_prompt_tokens=10, num_cached_tokens=4, grid=(2, 1), num_tiles=3).to_dict()))
        >>> rows["grid"], rows["cached"]
        ('2x1, 3 tiles, 0 image tokens', '4 tokens reused')
    """
    grid = f"{stats['grid'][0]}x{stats['grid'][1]}" if stats["grid"] else "-"
    reduced = " (reduced to fit the context)" if stats["reduced_by_budget"] else ""
    return [
        ("model load", f"{stats['model_load_ms']:.0f} ms"),
        ("grid", f"{grid}{reduced}, {stats['num_tiles']} tiles, {stats['num_image_tokens']} image tokens"),
        ("image encode", f"{stats['image_encode_ms']:.1f} ms ({stats['image_encode_ms_per_tile']:.1f} ms/tile)"),
        ("prefill", f"{stats['num_prompt_tokens']} tokens in {stats['prefill_ms']:.1f} ms ({stats['prefill_tok_s']:.1f} tok/s)"),
        ("cached", f"{stats['num_cached_tokens']} tokens reused"),
        ("first token", f"{stats['time_to_first_token_ms']:.1f} ms"),
        ("decode", f"{stats['num_generated_tokens']} tokens ({stats['decode_tok_s']:.1f} tok/s)"),
        ("peak RSS", f"{stats['peak_rss_bytes'] / 2**20:.0f} MiB"),
    ]
