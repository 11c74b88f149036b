"""Stats: rates derived from raw timestamps, the observer line, peak RSS."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mobile_mllm.contract import STATS_LINE_PREFIX
from mobile_mllm.runtime.stats import Stats, derive_rates, peak_rss_bytes


def _stats() -> Stats:
    return Stats(
        model_load_start_ms=1000.0,
        model_load_end_ms=1400.0,
        inference_start_ms=2000.0,
        image_encode_start_ms=2010.0,
        image_encode_end_ms=2910.0,
        vision_batch_ms=(400.0, 400.0, 100.0),
        vision_batch_sizes=(4, 4, 1),
        prompt_eval_end_ms=3910.0,
        first_token_ms=3920.0,
        inference_end_ms=5910.0,
        num_prompt_tokens=2000,
        num_image_tokens=1764,
        num_tiles=9,
        num_generated_tokens=50,
        grid=(2, 4),
        reduced_by_budget=True,
        peak_rss_bytes=123,
    )


def test_rates_hand_computed() -> None:
    r = derive_rates(_stats())
    assert r["model_load_ms"] == 400.0
    assert r["image_encode_ms"] == 900.0
    assert r["image_encode_ms_per_tile"] == 100.0
    assert r["prefill_ms"] == 1000.0  # from end of image encoding to end of prompt eval
    assert r["prefill_tok_s"] == 2000.0
    assert r["time_to_first_token_ms"] == 1920.0
    assert r["decode_tok_s"] == pytest.approx(50 / 2.0)
    assert r["total_ms"] == 3910.0


def test_rates_without_image_start_prefill_at_inference_start() -> None:
    r = derive_rates(Stats(inference_start_ms=10, prompt_eval_end_ms=60, num_prompt_tokens=100))
    assert r["prefill_tok_s"] == 2000.0
    assert r["image_encode_ms"] == 0.0
    assert r["decode_tok_s"] == 0.0  # no decode time: no division by zero


def test_observer_line_round_trips() -> None:
    line = _stats().observer_line()
    assert line.startswith(STATS_LINE_PREFIX)
    data = json.loads(line[len(STATS_LINE_PREFIX) :])
    assert data["grid"] == [2, 4]
    assert data["vision_batch_sizes"] == [4, 4, 1]
    assert data["reduced_by_budget"] is True
    assert data["prefill_tok_s"] == 2000.0
    assert "\n" not in line


def test_peak_rss_grows_with_allocation() -> None:
    # A fresh process, so the high-water mark is not already above anything we allocate.
    code = (
        "from mobile_mllm.runtime.stats import peak_rss_bytes as p\n"
        "a = p(); b = bytearray(128 * 1024 * 1024); b[::4096] = b'x' * len(b[::4096]); print(a, p())"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    before, after = map(int, out.split())
    assert 1024 * 1024 < before < after
    assert after - before >= 100 * 1024 * 1024
