"""The native runner (android_app/runner, issue 17 milestone 1) against the Python runtime.

Builds ``mobile_mllm_runner`` for x86-64 once per module (Debian g++ + CMake against the executorch
wheel's torch-free libraries), then checks that on the tiny fp32 program its greedy tokens for a
fixed token prompt, and the logits each pick was made from, equal what ``mobile_mllm.runtime``
(``open_program_dir`` + ``session.prefill`` / ``session.decode_n_tokens``) gives on the same ids.
That also tests the runner's own ``llama::update_cache`` / ``llama::custom_sdpa`` kernels, which
the text_decoder calls on every step.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "android_app" / "runner" / "build.sh"
PROMPT = [1, 17, 250, 999, 42, 7, 1300, 5, 88, 640, 2001, 19, 73, 400, 11, 1024, 9, 12, 301, 77,
          15, 1500, 60, 31, 8, 1999, 404, 202, 6, 1111, 13, 555, 4, 808, 90, 1234, 14, 321]
# 38 prompt tokens: with the program's 32-position chunks the prefill takes two text_decoder calls


@pytest.mark.parametrize("abi", ["android-arm64"])
def test_other_abis_refuse_clearly(abi: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANDROID_NDK", raising=False)
    proc = subprocess.run(["bash", str(BUILD_SH), abi, str(tmp_path / "out")], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert "nothing was built" in proc.stderr
    assert not (tmp_path / "out" / "mobile_mllm_runner").exists()


def _python_greedy(program_dir: Path, prompt: list[int], n: int):
    import torch

    from mobile_mllm.runtime.pte import open_program_dir
    from mobile_mllm.runtime.session import decode_n_tokens, prefill

    backend = open_program_dir(program_dir)
    methods = backend.methods
    seen: list[torch.Tensor] = []

    def pick(logits: torch.Tensor) -> int:
        seen.append(logits.reshape(-1).clone())
        return int(logits.reshape(-1).argmax())

    ids = torch.tensor([prompt], dtype=torch.long)
    logits = prefill(methods, methods.token_embedding(ids), 0, methods.prefill_chunk)
    tokens, reason = decode_n_tokens(methods, logits, len(prompt), n, pick=pick, stop_ids=backend.eos_ids)
    return tokens, reason, torch.stack(seen), methods.prefill_chunk, list(backend.eos_ids)


def _run_native(binary: Path, program_dir: Path, prompt: list[int], n: int, chunk: int, dump: Path):
    proc = subprocess.run(
        [str(binary), "--model", str(program_dir), "--tokens", ",".join(map(str, prompt)),
         "--max-new-tokens", str(n), "--prefill-chunk", str(chunk), "--dump-logits", str(dump)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    fields = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    return fields


def test_native_greedy_equals_python_runtime(runner_bin: Path, tiny_program: Path, tmp_path: Path) -> None:
    import numpy as np

    n = 16
    tokens, reason, py_logits, chunk, eos_ids = _python_greedy(tiny_program, PROMPT, n)
    fields = _run_native(runner_bin, tiny_program, PROMPT, n, chunk, tmp_path / "logits.bin")
    assert [int(x) for x in fields["eos_ids"].split(",") if x] == eos_ids
    native_tokens = [int(x) for x in fields["generated"].split(",")]
    assert native_tokens == tokens
    assert fields["stop_reason"] == reason
    native_logits = np.fromfile(tmp_path / "logits.bin", dtype=np.float32).reshape(len(tokens), -1)
    expected = py_logits.numpy()
    assert native_logits.shape == expected.shape
    # same XNNPACK/optimized kernels for everything but attention and the cache write (ours): float-rounding close
    np.testing.assert_allclose(native_logits, expected, rtol=1e-4, atol=1e-4)


def test_native_runner_rejects_bad_input(runner_bin: Path, tiny_program: Path) -> None:
    proc = subprocess.run([str(runner_bin), "--model", str(tiny_program), "--tokens", "1,x"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "usage" in proc.stderr
    proc = subprocess.run([str(runner_bin), "--model", str(tiny_program / "missing.pte"), "--tokens", "1",
                           "--max-new-tokens", "1"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "cannot open" in proc.stderr
