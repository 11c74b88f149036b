"""`mobile-mllm init-model` in a subprocess: writes a loadable tiny model, deterministic in the seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_init_model_tiny_writes_a_loadable_directory(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    proc = _cli("-q", "init-model", "--preset", "tiny", "-o", str(out), "--seed", "7", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["preset"] == "tiny" and summary["seed"] == 7 and summary["dtype"] == "float32"
    assert summary["num_parameters"] == 945_152 and summary["tokens_per_tile"] == 16
    assert summary["weights_bytes"] == (out / "model.safetensors").stat().st_size
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json",
    ]

    from mobile_mllm.model import load_model
    from mobile_mllm.model.reference.checkpoint import write_random_reference
    from mobile_mllm.model.reference.presets import reference_tiny

    model = load_model(out, max_context_len=32)
    with torch.no_grad():
        logits = model.text_decoder(model.token_embedding(torch.tensor([[2, 100, 3]])), torch.tensor([0]))
    assert logits.shape == (1, 2048) and torch.isfinite(logits).all()
    same = write_random_reference(reference_tiny(), tmp_path / "same", seed=7)
    assert (same / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


def test_init_model_rejects_unknown_preset(tmp_path: Path) -> None:
    proc = _cli("init-model", "--preset", "bluelm", "-o", str(tmp_path / "x"))
    assert proc.returncode == 2
    assert "invalid choice: 'bluelm'" in proc.stderr and "bluelm-v-3b" in proc.stderr
    assert not (tmp_path / "x").exists()
