"""The native runner's own ``llama::update_cache`` / ``llama::custom_sdpa`` kernels against ExecuTorch's.

The executorch wheel's torch-free libraries lack both ops, so the runner registers its own
(``android_app/runner/src/llm_kernels.cpp``). Here a small program made of nothing but those two
ops over a KV-cache buffer (grouped-query heads: 6 query heads over 2 KV heads) is exported
without delegation and run call after call (prefill chunks, single decode steps; the cache
carries over) by ExecuTorch's Python runtime, whose kernels are ExecuTorch's own, and by the
native runner (``--calls``) on the same input bytes. Both are also checked against an
independent reference: PyTorch's ``scaled_dot_product_attention`` over the cache so far.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

HEADS, KV_HEADS, DIM, CONTEXT = 6, 2, 16, 64
# (positions, start) per call: a prefill chunk, decode steps, another chunk, up to the cache's end
CALLS = [(7, 0), (1, 7), (1, 8), (13, 9), (1, 22), (41, 23)]


class _Attention(torch.nn.Module):
    """Write k/v into the cache at start_pos, attend with custom_sdpa (causal, or all keys with a scale)."""

    def __init__(self, causal: bool) -> None:
        super().__init__()
        from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (registers torch.ops.llama)

        self.causal = causal
        self.register_buffer("k_cache", torch.zeros(1, CONTEXT, KV_HEADS, DIM), persistent=False)
        self.register_buffer("v_cache", torch.zeros(1, CONTEXT, KV_HEADS, DIM), persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        start = start_pos[0].item()
        torch._check(start >= 0)
        torch._check(start + q.shape[1] <= CONTEXT)
        torch.ops.llama.update_cache(k, self.k_cache, start)
        torch.ops.llama.update_cache(v, self.v_cache, start)
        if self.causal:
            return torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start, None, 0.0, True)
        return torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start, None, 0.0, False, 0.3)


@pytest.fixture(scope="module")
def kernel_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from executorch.exir import to_edge_transform_and_lower
    from torch.export import Dim, export

    seq = Dim("seq", min=1, max=CONTEXT)
    example = (torch.zeros(1, 2, HEADS, DIM), torch.zeros(1, 2, KV_HEADS, DIM), torch.zeros(1, 2, KV_HEADS, DIM),
               torch.tensor([0]))
    shapes = ({1: seq}, {1: seq}, {1: seq}, None)
    programs = {name: export(_Attention(causal).eval(), example, dynamic_shapes=shapes, strict=False)
                for name, causal in (("causal", True), ("scaled", False))}
    path = tmp_path_factory.mktemp("kernels") / "attention.pte"
    path.write_bytes(to_edge_transform_and_lower(programs).to_executorch().buffer)
    return path


def _reference(q: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start: int, causal: bool) -> torch.Tensor:
    """PyTorch's SDPA over the cache positions 0..start+S-1 (the independent reference)."""
    s = q.shape[1]
    keys, values = k_cache[:, : start + s].transpose(1, 2), v_cache[:, : start + s].transpose(1, 2)
    mask = None
    if causal:
        mask = torch.arange(start + s)[None, :] <= (start + torch.arange(s))[:, None]
    out = torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), keys, values, attn_mask=mask, scale=None if causal else 0.3, enable_gqa=True
    )
    return out.transpose(1, 2)


@pytest.mark.parametrize("method", ["causal", "scaled"])
def test_native_kernels_give_the_python_runtimes_outputs(runner_bin: Path, kernel_program: Path, method: str,
                                                         tmp_path: Path) -> None:
    from mobile_mllm.runtime.pte import load_executorch_kernels

    gen = torch.Generator().manual_seed(7)
    inputs = [(torch.randn(1, s, HEADS, DIM, generator=gen), torch.randn(1, s, KV_HEADS, DIM, generator=gen),
               torch.randn(1, s, KV_HEADS, DIM, generator=gen), torch.tensor([start])) for s, start in CALLS]
    host = load_executorch_kernels().load_program(str(kernel_program)).load_method(method)
    lines = []
    for i, tensors in enumerate(inputs):
        specs = []
        for j, x in enumerate(tensors):
            x.numpy().tofile(tmp_path / f"{i}.{j}.bin")
            specs.append({"dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape),
                          "file": str(tmp_path / f"{i}.{j}.bin")})
        lines.append(json.dumps({"method": method, "inputs": specs, "output": str(tmp_path / f"{i}.out.bin")}))
    (tmp_path / "calls.jsonl").write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(runner_bin), "--calls", str(tmp_path / "calls.jsonl"), "--pte", str(kernel_program)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [json.loads(line)["shape"] for line in proc.stdout.splitlines()] == [[1, s, HEADS, DIM] for s, _ in CALLS]
    k_cache, v_cache = torch.zeros(1, CONTEXT, KV_HEADS, DIM), torch.zeros(1, CONTEXT, KV_HEADS, DIM)
    for i, (q, k, v, start) in enumerate(inputs):
        python_runtime = host.execute([q, k, v, start])[0].numpy()
        native = np.fromfile(tmp_path / f"{i}.out.bin", dtype=np.float32).reshape(python_runtime.shape)
        s, at = q.shape[1], int(start[0])
        k_cache[:, at : at + s], v_cache[:, at : at + s] = k, v
        reference = _reference(q, k_cache, v_cache, at, method == "causal").numpy()
        # float32 rounding apart (different summation orders), nothing more
        np.testing.assert_allclose(native, python_runtime, rtol=0, atol=2e-6, err_msg=f"call {i}")
        np.testing.assert_allclose(native, reference, rtol=0, atol=2e-6, err_msg=f"call {i}")
        np.testing.assert_allclose(python_runtime, reference, rtol=0, atol=2e-6, err_msg=f"call {i}")
