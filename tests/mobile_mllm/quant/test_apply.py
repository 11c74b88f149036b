"""quantize_modules: what the weights really become, fallbacks, and the unexpected-fp32 count."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mobile_mllm.quant.apply import quantize_modules
from mobile_mllm.quant.recipe import Precision, QuantConfig, QuantRecipe, QuantRule, build_recipe

METHODS = {"vision_method": "vision", "decoder_method": "decoder", "embedding_method": "embed"}


class _Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.Linear(64, 200)
        self.down = nn.Linear(200, 64)  # 200 is not a multiple of 32
        self.lm_head = nn.Linear(64, 50)


def _modules() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    return {"decoder": _Decoder(), "vision": nn.Sequential(nn.Linear(64, 64)), "embed": nn.Embedding(50, 64)}


def test_w4_recipe_quantizes_every_layer_with_fallback_reported() -> None:
    modules = _modules()
    float_down = modules["decoder"].down.weight.detach().clone()
    report = quantize_modules(modules, build_recipe(QuantConfig(), **METHODS))
    up = report.get("decoder.up")
    assert (up.precision, up.group_size, up.activation) == ("w4", 32, "int8_asym_per_token")
    down = report.get("decoder.down")
    assert (down.requested, down.precision, down.group_size) == ("w4", "w8", 200)
    assert "does not divide in_features 200" in down.reason
    assert report.get("decoder.lm_head").precision == "w8"
    assert report.get("vision.0").precision == "w8"
    emb = report.get("embed")
    assert (emb.kind, emb.precision, emb.activation) == ("embedding", "w8", "none")
    assert report.unexpected_fp32() == []
    assert [f.name for f in report.fallbacks()] == ["decoder.down"]
    # The tensor itself, independent of the report: int4 values in an int8 container, 2 groups per row.
    w = modules["decoder"].up.weight
    assert w.target_dtype == torch.int4 and tuple(w.block_size) == (1, 32) and tuple(w.scale.shape) == (200, 2)
    assert int(w.qdata.min()) >= -8 and int(w.qdata.max()) <= 7
    # Per-channel int8 dequantizes to within two steps of the float weights (HQQ optimises scales, not min-max).
    d = modules["decoder"].down.weight
    deq = (d.qdata.float() - d.zero_point.float()) * d.scale.float()
    assert torch.allclose(deq, float_down, atol=2 * float(d.scale.max()))
    assert float((deq - float_down).norm() / float_down.norm()) < 0.01


def test_w4_bytes_are_a_quarter_of_fp32_plus_scales() -> None:
    modules = _modules()
    report = quantize_modules(modules, build_recipe(QuantConfig(), **METHODS))
    up = report.get("decoder.up")
    # 200x64 int4 = 6400 bytes; 200x2 float32 scales + 200x2 int8 zero points = 1600 + 400 (torchao stores them so).
    assert 6400 < up.weight_bytes <= 6400 + 200 * 2 * 4 + 200 * 2 * 4


def test_layer_no_rule_matches_is_unexpected_fp32() -> None:
    modules = _modules()
    recipe = QuantRecipe((QuantRule("decoder.*", Precision.W8),), 32)
    report = quantize_modules(modules, recipe)
    unexpected = {layer.name for layer in report.unexpected_fp32()}
    assert unexpected == {"vision.0", "embed"}
    assert report.to_dict()["num_unexpected_fp32"] == 2


def test_fp32_recipe_leaves_weights_float_and_nothing_unexpected() -> None:
    modules = _modules()
    from mobile_mllm.quant.recipe import preset

    report = quantize_modules(modules, build_recipe(preset("fp32"), **METHODS))
    assert {layer.precision for layer in report.layers} == {"fp32"}
    assert report.unexpected_fp32() == []
    assert type(modules["decoder"].up.weight) is nn.Parameter


@pytest.mark.parametrize("precision", ["w4", "w8"])
def test_quantized_linear_stays_close_to_float(precision: str) -> None:
    modules = _modules()
    x = torch.randn(3, 64)
    with torch.no_grad():
        ref = modules["vision"](x)
    quantize_modules(modules, build_recipe(QuantConfig(vision=Precision(precision)), **METHODS))
    with torch.no_grad():
        got = modules["vision"](x)
    rel = float((got - ref).norm() / ref.norm())
    assert rel < (0.15 if precision == "w4" else 0.03), rel


def test_int4_group_scales_are_bf16_representable() -> None:
    """XNNPACK keeps blockwise int4 scales in bf16; the eager model must use the same numbers."""
    modules = _modules()
    quantize_modules(modules, build_recipe(QuantConfig(), **METHODS))
    scale = modules["decoder"].up.weight.scale
    assert torch.equal(scale, scale.to(torch.bfloat16).to(scale.dtype))
    per_channel = modules["decoder"].lm_head.weight.scale  # w8 scales are left as torchao chose them
    assert not torch.equal(per_channel, per_channel.to(torch.bfloat16).to(per_channel.dtype))


def test_int8_channel_scales_are_min_max_and_int4_groups_are_searched() -> None:
    """w8: scale = max|w| / 127.5 per output row (no HQQ search: it cost 97% of the stage for nothing at 8 bits)."""
    modules = _modules()
    vision_w = modules["vision"][0].weight.detach().clone()
    up_w = modules["decoder"].up.weight.detach().clone()
    quantize_modules(modules, build_recipe(QuantConfig(), **METHODS))
    scale = modules["vision"][0].weight.scale.reshape(-1)
    torch.testing.assert_close(scale, vision_w.abs().amax(dim=1) / 127.5)
    # int4 groups keep HQQ's searched scales, which are not min-max.
    up_scale = modules["decoder"].up.weight.scale.reshape(-1)
    min_max = up_w.reshape(-1, 32).abs().amax(dim=1) / 7.5
    assert not torch.allclose(up_scale, min_max, rtol=1e-2)
