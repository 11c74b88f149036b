"""The native runner's own ``llama::update_cache`` / ``llama::custom_sdpa`` kernels against ExecuTorch's.

The executorch wheel's torch-free libraries lack both ops, so the runner registers its own
(``android_app/runner/src/llm_kernels.cpp``). Here a small program made of nothing but those two
ops over a KV-cache buffer (grouped-query heads) is exported without delegation and run call
after call (prefill chunks, single decode steps; the cache carries over) by ExecuTorch's Python
runtime, whose kernels are ExecuTorch's own, and by the native runner (``--calls``; the x86-64
build, and the arm64 one under qemu: its NEON tiles) on the same input bytes. Both are also
checked against an independent reference: PyTorch's ``scaled_dot_product_attention`` over the
cache so far.

Two geometries: a small one, and a long one at a real head size (64) whose calls cross the native
kernel's query blocks (32 rows) and key blocks (128 keys) at and off their edges, with chunked
prefill from ``start_pos > 0`` and grouped-query heads, up to ~700 positions as in a SmolVLM prompt.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow



@dataclass(frozen=True)
class Geometry:
    """Head counts, head size, cache positions, the (positions, start) of each call, the tolerance."""

    heads: int
    kv_heads: int
    dim: int
    context: int
    calls: tuple[tuple[int, int], ...]
    # float32 rounding of sums in different orders: it grows with the number of keys summed (the
    # three implementations differed by up to 3.3e-6 at ~600 keys of unit-variance values)
    atol: float


GEOMETRIES = {
    # a prefill chunk, decode steps, another chunk, up to the cache's end
    "small": Geometry(6, 2, 16, 64, ((7, 0), (1, 7), (1, 8), (13, 9), (1, 22), (41, 23)), 2e-6),
    # chunks of 128 and odd sizes from start_pos > 0 (query/key blocks full, partial, crossed), decode
    # steps past 256 keys, and a last chunk that ends at the cache's last position
    "long": Geometry(15, 5, 64, 704, ((128, 0), (128, 128), (97, 256), (1, 353), (1, 354), (255, 355), (94, 610)),
                     1e-5),
}


class _Attention(torch.nn.Module):
    """Write k/v into the cache at start_pos, attend with custom_sdpa (causal, or all keys with a scale)."""

    def __init__(self, causal: bool, geometry: Geometry) -> None:
        super().__init__()
        from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (registers torch.ops.llama)

        self.causal = causal
        self.context = geometry.context
        cache = (1, geometry.context, geometry.kv_heads, geometry.dim)
        self.register_buffer("k_cache", torch.zeros(cache), persistent=False)
        self.register_buffer("v_cache", torch.zeros(cache), persistent=False)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        start = start_pos[0].item()
        torch._check(start >= 0)
        torch._check(start + q.shape[1] <= self.context)
        torch.ops.llama.update_cache(k, self.k_cache, start)
        torch.ops.llama.update_cache(v, self.v_cache, start)
        if self.causal:
            return torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start, None, 0.0, True)
        return torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start, None, 0.0, False, 0.3)


@pytest.fixture(scope="module", params=sorted(GEOMETRIES))
def kernel_program(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Geometry]:
    from executorch.exir import to_edge_transform_and_lower
    from torch.export import Dim, export

    g = GEOMETRIES[request.param]
    seq = Dim("seq", min=1, max=g.context)
    example = (torch.zeros(1, 2, g.heads, g.dim), torch.zeros(1, 2, g.kv_heads, g.dim),
               torch.zeros(1, 2, g.kv_heads, g.dim), torch.tensor([0]))
    shapes = ({1: seq}, {1: seq}, {1: seq}, None)
    programs = {name: export(_Attention(causal, g).eval(), example, dynamic_shapes=shapes, strict=False)
                for name, causal in (("causal", True), ("scaled", False))}
    path = tmp_path_factory.mktemp("kernels") / "attention.pte"
    path.write_bytes(to_edge_transform_and_lower(programs).to_executorch().buffer)
    return path, g


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


@pytest.fixture(params=["x86_64", "arm64"])
def runner_argv(request: pytest.FixtureRequest) -> list[str]:
    """The runner built here, and the arm64 one under qemu (its NEON tiles; skipped without the toolchain)."""
    if request.param == "x86_64":
        return [str(request.getfixturevalue("runner_bin"))]
    return request.getfixturevalue("arm64_runner")


@pytest.mark.parametrize("method", ["causal", "scaled"])
def test_native_kernels_give_the_python_runtimes_outputs(runner_argv: list[str], kernel_program: tuple[Path, Geometry],
                                                         method: str, tmp_path: Path) -> None:
    from mobile_mllm.runtime.pte import load_executorch_kernels

    program, g = kernel_program
    gen = torch.Generator().manual_seed(7)
    inputs = [(torch.randn(1, s, g.heads, g.dim, generator=gen), torch.randn(1, s, g.kv_heads, g.dim, generator=gen),
               torch.randn(1, s, g.kv_heads, g.dim, generator=gen), torch.tensor([start])) for s, start in g.calls]
    host = load_executorch_kernels().load_program(str(program)).load_method(method)
    lines = []
    for i, tensors in enumerate(inputs):
        specs = []
        for j, x in enumerate(tensors):
            x.numpy().tofile(tmp_path / f"{i}.{j}.bin")
            specs.append({"dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape),
                          "file": str(tmp_path / f"{i}.{j}.bin")})
        lines.append(json.dumps({"method": method, "inputs": specs, "output": str(tmp_path / f"{i}.out.bin")}))
    (tmp_path / "calls.jsonl").write_text("\n".join(lines) + "\n")
    proc = subprocess.run([*runner_argv, "--calls", str(tmp_path / "calls.jsonl"), "--pte", str(program)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    shapes = [json.loads(line)["shape"] for line in proc.stdout.splitlines()]
    assert shapes == [[1, s, g.heads, g.dim] for s, _ in g.calls]
    k_cache, v_cache = torch.zeros(1, g.context, g.kv_heads, g.dim), torch.zeros(1, g.context, g.kv_heads, g.dim)
    for i, (q, k, v, start) in enumerate(inputs):
        python_runtime = host.execute([q, k, v, start])[0].numpy()
        native = np.fromfile(tmp_path / f"{i}.out.bin", dtype=np.float32).reshape(python_runtime.shape)
        s, at = q.shape[1], int(start[0])
        k_cache[:, at : at + s], v_cache[:, at : at + s] = k, v
        reference = _reference(q, k_cache, v_cache, at, method == "causal").numpy()
        # float32 rounding apart (different summation orders), nothing more
        np.testing.assert_allclose(native, python_runtime, rtol=0, atol=g.atol, err_msg=f"call {i}")
        np.testing.assert_allclose(native, reference, rtol=0, atol=g.atol, err_msg=f"call {i}")
        np.testing.assert_allclose(python_runtime, reference, rtol=0, atol=g.atol, err_msg=f"call {i}")
