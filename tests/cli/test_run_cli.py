"""``mobile-mllm run`` as a real command in a subprocess, on a tiny model directory made by ``init-model``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_mllm.contract import STATS_LINE_PREFIX
from mobile_mllm.errors import ContextOverflowError, ImageError


def _cli(*args: str, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run-cli") / "tiny"
    proc = _cli("init-model", "--preset", "tiny", "-o", str(out), "--seed", "0")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """180x100: the tiny preset (64-px tiles, max side 3) tiles it 3x2 plus a thumbnail."""
    path = tmp_path_factory.mktemp("run-cli-img") / "wide.png"
    Image.fromarray((np.random.default_rng(0).random((100, 180, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.mark.slow
def test_run_json_reports_answer_and_stats(model_dir: Path, image: Path) -> None:
    proc = _cli(
        "run", str(model_dir), "--image", str(image), "--prompt", "What shape is on the left?",
        "--follow-up", "And its colour?", "--max-new-tokens", "4", "--max-context-len", "256", "--json",
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)  # stdout is exactly one JSON object: logs went to stderr
    first, second = out["turns"]
    s1, s2 = first["stats"], second["stats"]
    assert first["stop_reason"] == "max_new_tokens" and len(first["tokens"]) == 4
    assert s1["grid"] == [3, 2] and s1["num_tiles"] == 7 and s1["vision_batch_sizes"] == [4, 3]
    assert s1["num_image_tokens"] == 7 * 16 and s1["reduced_by_budget"] is False
    assert s1["num_generated_tokens"] == 4 and s1["num_cached_tokens"] == 0
    assert s1["num_prompt_tokens"] > s1["num_image_tokens"]
    assert s1["prefill_tok_s"] > 0 and s1["decode_tok_s"] > 0 and s1["peak_rss_bytes"] > 0
    assert s1["model_load_ms"] > 0 and s1["image_encode_ms"] > 0
    assert s1["time_to_first_token_ms"] >= s1["prefill_ms"]
    # The follow-up reuses the cache: nothing re-encoded, prefill starts after answer 1 (its last token unfed).
    assert s2["num_tiles"] == 0 and s2["grid"] is None
    assert s2["num_cached_tokens"] == s1["num_prompt_tokens"] + 3


@pytest.mark.slow
def test_run_text_prints_answer_table_and_observer_line(model_dir: Path, image: Path) -> None:
    proc = _cli("run", str(model_dir), "--image", str(image), "--prompt", "Hi?", "--max-new-tokens", "3",
                "--max-context-len", "256")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "> Hi?"
    assert any(line.strip().startswith("grid: 3x2, 7 tiles, 112 image tokens") for line in lines)
    observer = [line for line in lines if line.startswith(STATS_LINE_PREFIX)]
    assert len(observer) == 1
    assert json.loads(observer[0][len(STATS_LINE_PREFIX) :])["num_generated_tokens"] == 3


@pytest.mark.slow
def test_run_prompt_over_context_fails_cleanly(model_dir: Path) -> None:
    proc = _cli("run", str(model_dir), "--prompt", "describe the red square " * 100, "--max-context-len", "64")
    assert proc.returncode == ContextOverflowError.exit_code
    assert "max_context_len 64" in proc.stderr and "Traceback" not in proc.stderr
    assert STATS_LINE_PREFIX not in proc.stdout  # no answer, no stats


def test_run_missing_image_fails_before_loading(tmp_path: Path) -> None:
    proc = _cli("run", "--image", str(tmp_path / "nope.png"), "--prompt", "q", timeout=60)  # the built-in model
    assert proc.returncode == ImageError.exit_code
    assert f"image file not found: {tmp_path / 'nope.png'}" in proc.stderr


def test_run_rejects_bad_generation_flag(tmp_path: Path) -> None:
    proc = _cli("run", str(tmp_path), "--prompt", "q", "--top-p", "1.5", timeout=60)
    assert proc.returncode == 2
    assert "top_p must be in (0, 1], got 1.5" in proc.stderr


@pytest.mark.slow
def test_run_without_a_model_uses_the_builtin_default_and_reads_the_sample(repo_root: Path) -> None:
    # The README quick start: no MODEL argument -> builtin:synth-small, asked plainly (its prompt style is the
    # question as typed, so no flag is needed). The sample shows a purple star, a red hexagon and a black diamond.
    proc = _cli("run", "--image", str(repo_root / "demo" / "sample.png"), "--prompt", "What colour is the star?", "--json")
    assert proc.returncode == 0, proc.stderr
    turn = json.loads(proc.stdout)["turns"][0]
    assert json.loads(proc.stdout)["model"] == "builtin:synth-small"
    assert turn["prompt"] == "What colour is the star?"
    assert turn["answer"].strip() == "purple"
