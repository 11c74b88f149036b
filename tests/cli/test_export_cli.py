"""``mobile-mllm export`` as users run it: a real subprocess, exit codes per error family, the end-to-end path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def _cli(*args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mobile_mllm.model.reference.init_model import init_model

    return init_model("tiny", tmp_path_factory.mktemp("tiny") / "model", seed=0).path


def test_missing_model_directory_exits_4(tmp_path: Path) -> None:
    r = _cli("export", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out"))
    assert r.returncode == 4, r.stderr
    assert "model directory not found" in r.stderr


def test_unknown_recipe_lists_presets(tmp_path: Path) -> None:
    r = _cli("export", str(tmp_path), "-o", str(tmp_path / "out"), "--recipe", "w5")
    assert r.returncode == 2, r.stderr
    assert "no precision preset 'w5'; known: w4, w8, fp32" in r.stderr


def test_bad_group_size_is_a_config_error(tmp_path: Path) -> None:
    r = _cli("export", str(tmp_path), "-o", str(tmp_path / "out"), "--group-size", "24")
    assert r.returncode == 2, r.stderr
    assert "group_size must be a power of two" in r.stderr


def test_mediatek_without_sdk_exits_8_before_loading(tiny_dir: Path, tmp_path: Path) -> None:
    r = _cli("export", str(tiny_dir), "-o", str(tmp_path / "out"), "--target", "mediatek", timeout=120)
    assert r.returncode == 8, r.stderr
    assert "NeuroPilot" in r.stderr and "--simulate" in r.stderr and "--target cpu" in r.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_export_then_run_the_program(tiny_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    out = tmp_path / "out"
    r = _cli("export", str(tiny_dir), "-o", str(out), "--recipe", "w8", "--max-context-len", "160",
             "--prefill-chunk", "32", "--verify-tokens", "4")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "unexpected fp32 layers: 0" in r.stdout
    assert "greedy vs quantized: 4/4" in r.stdout
    assert "Warning" not in r.stderr, r.stderr[-3000:]  # dependencies' deprecation notices are filtered (-vv shows them)
    assert sorted(p.name for p in out.iterdir()) == ["export_report.json", "manifest.json", "model.pte", "tokenizer.json"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["precision"]["modules"] == {"vision_encoder": "w8", "token_embedding": "w8", "text_decoder": "w8"}
    image = tmp_path / "img.png"
    Image.fromarray((np.random.default_rng(0).random((60, 90, 3)) * 255).astype(np.uint8)).save(image)
    r = _cli("run", str(out), "--image", str(image), "--prompt", "What is this?", "--max-new-tokens", "5", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    turn = json.loads(r.stdout)["turns"][0]
    assert 1 <= len(turn["tokens"]) <= 5 and turn["stats"]["num_tiles"] >= 1


@pytest.mark.slow
def test_mediatek_simulated_a16w4_export_then_run(tiny_dir: Path, tmp_path: Path) -> None:
    import json

    from PIL import Image

    out = tmp_path / "npu"
    r = _cli("export", str(tiny_dir), "-o", str(out), "--target", "mediatek", "--simulate", "--soc", "mt6989",
             "--recipe", "a16w4", "--max-context-len", "160", "--prefill-chunk", "32", "--calibration-samples", "1",
             "--verify-tokens", "3")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "simulated on the host" in r.stdout and "activations int16" in r.stdout and "phone KV cache" in r.stdout
    report = json.loads((out / "export_report.json").read_text())
    layers = report["quantization"]["layers"]
    decoder = [layer for layer in layers if layer["name"].startswith("text_decoder.layers.")]
    assert decoder and all(layer["precision"] == "w4" for layer in decoder)
    assert all(layer["precision"] == "w8" for layer in layers if not layer["name"].startswith("text_decoder.layers."))
    w4_bytes = sum(layer["shape"][0] * layer["shape"][1] // 2 + layer["shape"][0] * 8 for layer in decoder)
    assert w4_bytes == sum(layer["weight_bytes"] for layer in decoder)  # 4 bits a weight, scale + zero point a row
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["static_programs"]["soc"] == "mt6989" and not (out / "model.pte").exists()

    Image.new("RGB", (120, 80), (200, 40, 40)).save(tmp_path / "red.png")
    r = _cli("run", str(out), "--image", str(tmp_path / "red.png"), "--prompt", "What colour?",
             "--max-new-tokens", "3", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    (turn,) = json.loads(r.stdout)["turns"]
    assert len(turn["tokens"]) == 3 or turn["stop_reason"] == "eos"
