"""What the XNNPACK target's lowering computes, and what it leaves to slow portable kernels.

Small modules lowered with the CPU backend's own passes and partitioners, run in ExecuTorch's
runtime, compared with PyTorch:

* tanh-GELU stays tanh-GELU (ExecuTorch 1.5 alone lowers it as erf-GELU): a vision-MLP-shaped
  block (8da8w linear, tanh-GELU, 8da8w linear) must agree with the eager quantized block to
  float rounding, which it did not before the rewrite (the erf-GELU difference flips int8
  activation roundings in the second linear);
* the vision tower's attention, exported as matmul + softmax (``export.backends.xnnpack.matmul_attention``),
  is delegated whole: SDPA's ``_safe_softmax`` guard ops (``where``/``eq``/``any``/...) would run on
  portable kernels (their cost: ``bench/RESULTS.md``, "Vision encoder vs ONNX Runtime").
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobile_mllm.export.program import TargetConfig, lower_methods, to_executorch_program
from mobile_mllm.runtime.parity import relative_error


class _Mlp(nn.Module):
    def __init__(self, width: int, approximate: str) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, 2 * width), nn.Linear(2 * width, width)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(nn.functional.gelu(self.fc1(x), approximate=self.approximate))


class _Gelu(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.gelu(x, approximate="tanh")


def _run_lowered(module: nn.Module, x: torch.Tensor, *, with_passes: bool) -> tuple[torch.Tensor, dict[str, int]]:
    """Lower ``module`` like the exporter does (CPU backend), run it on ``x``; also count op kinds left outside delegates."""
    from executorch.runtime import Runtime

    from mobile_mllm.export.backends import get_backend

    backend, cfg = get_backend("cpu"), TargetConfig()
    with torch.no_grad():
        exported = {"forward": torch.export.export(module, (x,), strict=False)}
    edge = lower_methods(
        exported,
        {"forward": backend.partitioners("forward", cfg)},
        {},
        edge_passes={"forward": backend.edge_passes("forward", cfg)} if with_passes else None,
    )
    outside: dict[str, int] = {}
    for node in edge.exported_program("forward").graph_module.graph.nodes:
        if node.op == "call_function" and "delegate" not in str(node.target) and "getitem" not in str(node.target):
            outside[str(node.target)] = outside.get(str(node.target), 0) + 1
    program = Runtime.get().load_program(to_executorch_program(edge).buffer)
    return program.load_method("forward").execute([x])[0], outside


def test_tanh_gelu_matches_pytorch_and_stays_in_the_delegate() -> None:
    x = torch.linspace(-6, 6, 4096).reshape(1, 32, 128)
    got, outside = _run_lowered(_Gelu(), x, with_passes=True)
    expected = nn.functional.gelu(x, approximate="tanh")
    assert relative_error(got, expected) < 1e-6
    assert (got - expected).abs().max() < 1e-5
    assert outside == {}, f"ops left to portable kernels: {outside}"


def test_without_the_rewrite_executorch_lowers_tanh_gelu_as_erf_gelu() -> None:
    """Documents the upstream behaviour the rewrite exists for; if this fails, ExecuTorch fixed it."""
    x = torch.linspace(-6, 6, 4096).reshape(1, 32, 128)
    got, _ = _run_lowered(_Gelu(), x, with_passes=False)
    assert relative_error(got, nn.functional.gelu(x, approximate="none")) < 1e-6
    assert (got - nn.functional.gelu(x, approximate="tanh")).abs().max() > 1e-4


def test_exact_gelu_is_left_to_xnnpack() -> None:
    torch.manual_seed(0)
    mlp = _Mlp(64, "none").eval()
    x = torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))
    got, outside = _run_lowered(mlp, x, with_passes=True)
    assert outside == {}
    with torch.no_grad():
        assert relative_error(got, mlp(x)) < 1e-5


def _rows_off(got: torch.Tensor, expected: torch.Tensor) -> float:
    """Fraction of rows (tokens) that differ by more than float rounding."""
    worst = (got - expected).abs().amax(dim=-1).reshape(-1)
    return float((worst > 1e-5 * expected.abs().max()).float().mean())


@pytest.mark.parametrize("with_passes", [True, False])
def test_quantized_tanh_gelu_mlp_equals_the_eager_quantized_block(with_passes: bool) -> None:
    """Rows of a quantized MLP that differ beyond float rounding: rare flips with the rewrite, nearly all without.

    A float difference of one ulp before an int8 dynamic activation quantization flips its
    rounding with a probability of about 1e-5 per element, so even a correct program has an odd
    row off by one quantization step (seen: 1 of 256 rows); erf-GELU moves most rows.
    """
    from torchao.quantization import quantize_

    from mobile_mllm.quant.recipe import LayerKind, Precision, torchao_config

    torch.manual_seed(0)
    mlp = _Mlp(64, "tanh").eval()
    quantize_(mlp, torchao_config(Precision.W8, LayerKind.LINEAR, 32))
    x = torch.randn(8, 64, 64, generator=torch.Generator().manual_seed(1))
    got, _ = _run_lowered(mlp, x, with_passes=with_passes)
    with torch.no_grad():
        expected = mlp(x)
    if with_passes:
        assert _rows_off(got, expected) <= 0.02
        assert relative_error(got, expected) < 1e-3
    else:
        assert _rows_off(got, expected) > 0.5


_SAFE_SOFTMAX_GUARD_OPS = ("aten.where", "aten.eq", "aten.logical_not", "aten.any", "aten.full_like")


def _tiny_tower() -> nn.Module:
    from mobile_mllm.model.reference.builders import siglip_tower

    torch.manual_seed(0)
    return siglip_tower(image_size=32, patch_size=8, hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64)


class _LastHidden(nn.Module):
    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.tower(pixel_values=tiles).last_hidden_state


def _guards(outside: dict[str, int]) -> list[str]:
    return [op for op in outside if any(g in op for g in _SAFE_SOFTMAX_GUARD_OPS)]


def test_matmul_attention_tower_is_delegated_and_equals_the_sdpa_tower() -> None:
    from mobile_mllm.export.backends.xnnpack import matmul_attention

    tower = _tiny_tower()
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        expected = _LastHidden(tower)(x)  # the model as loaded: SDPA
    module = _LastHidden(matmul_attention(tower))
    assert tower.config._attn_implementation == "eager"
    got, outside = _run_lowered(module, x, with_passes=True)
    assert _guards(outside) == [], f"SDPA guard ops left to portable kernels: {outside}"
    assert not [op for op in outside if "expand_copy" in op], f"identity expands left to portable kernels: {outside}"
    assert relative_error(got, expected) < 1e-5


def test_sdpa_tower_leaves_the_safe_softmax_guards_to_portable_kernels() -> None:
    """Documents the upstream behaviour ``matmul_attention`` exists for; if this fails, ExecuTorch fixed it."""
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    _, outside = _run_lowered(_LastHidden(_tiny_tower()), x, with_passes=True)
    assert _guards(outside), f"no SDPA guard ops outside delegates: {outside}"


class _HeadsMatmul(nn.Module):
    """Attention-shaped 4-D matmuls (batch dims agree, so torch's expands are identities) plus a real broadcast."""

    def forward(self, q: torch.Tensor, k: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        scores = torch.matmul(q, k.transpose(-1, -2))
        return torch.matmul(scores, k) + torch.matmul(q, bias)  # bias [1, 1, d, d] broadcasts over batch and heads


def test_identity_expands_are_removed_and_broadcasts_kept() -> None:
    from executorch.exir import to_edge

    from mobile_mllm.export.backends.xnnpack import remove_identity_expands

    gen = torch.Generator().manual_seed(0)
    q, k, bias = torch.randn(2, 3, 5, 4, generator=gen), torch.randn(2, 3, 5, 4, generator=gen), torch.randn(1, 1, 4, 4, generator=gen)
    batch = torch.export.Dim("batch", min=1, max=4)
    exported = torch.export.export(_HeadsMatmul(), (q, k, bias), dynamic_shapes=({0: batch}, {0: batch}, None))
    gm = to_edge(exported).exported_program().graph_module

    def expands() -> int:
        return sum(1 for n in gm.graph.nodes if n.op == "call_function" and "expand_copy" in str(n.target))

    total = expands()
    result = remove_identity_expands(gm)
    assert result.modified and 0 < expands() < total  # the broadcast of ``bias`` must stay
    with torch.no_grad():
        assert torch.allclose(gm(q, k, bias)[0], _HeadsMatmul()(q, k, bias), atol=1e-6)
