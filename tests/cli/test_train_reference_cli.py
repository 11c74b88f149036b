"""``mobile-mllm train-reference`` in a subprocess: trains, writes a loadable model, resumes, refuses bad flags."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CMD = [sys.executable, "-m", "mobile_mllm.cli", "train-reference"]
FAST = ["--preset", "tiny", "--batch-size", "2", "--log-every", "1", "--small-text-px", "20", "30"]


@pytest.mark.slow
def test_train_reference_writes_a_model_and_resumes(tmp_path: Path, repo_root: Path) -> None:
    out = tmp_path / "run"
    first = subprocess.run([*CMD, *FAST, "--steps", "1", "-o", str(out), "--json"], capture_output=True, text=True,
                           cwd=repo_root, timeout=300)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert (result["start_step"], result["end_step"], result["finished"]) == (0, 1, True)
    assert (out / "model" / "model.safetensors").is_file() and (out / "checkpoint.pt").is_file()
    second = subprocess.run([*CMD, *FAST, "--steps", "2", "-o", str(out), "--json"], capture_output=True, text=True,
                            cwd=repo_root, timeout=300)
    assert second.returncode == 0, second.stderr
    assert (json.loads(second.stdout)["start_step"], json.loads(second.stdout)["end_step"]) == (1, 2)
    run = subprocess.run([sys.executable, "-m", "mobile_mllm.cli", "run", str(out / "model"), "--prompt", "hi",
                          "--max-new-tokens", "2", "--json"], capture_output=True, text=True, cwd=repo_root, timeout=300)
    assert run.returncode == 0, run.stderr


def test_train_reference_rejects_a_bad_flag_value(tmp_path: Path, repo_root: Path) -> None:
    bad = subprocess.run([*CMD, "--batch-size", "0", "-o", str(tmp_path)], capture_output=True, text=True,
                         cwd=repo_root, timeout=120)
    assert bad.returncode != 0
    assert "train.batch_size must be >= 1" in bad.stderr
