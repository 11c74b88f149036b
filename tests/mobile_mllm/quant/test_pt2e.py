"""A16W4/A16W8 PT2E: the rule's precision lands on each linear, with the bit width and granularity NeuroPilot uses.

Checked against the weights themselves (the converted graph's dequantized weight: at most 16 or
256 levels per output row, within half a step of the float weight, affine for int4 and
symmetric for int8) and against the float output, not against the quantizer's own bookkeeping.
"""

from __future__ import annotations

import operator

import pytest
import torch
from torch import nn

from mobile_mllm.quant.pt2e import A16Quantizer, observe_graph, quantize_graphs
from mobile_mllm.quant.recipe import Precision, QuantRecipe, QuantRule

RECIPE = QuantRecipe((
    QuantRule("net.first", Precision.W4), QuantRule("net.second", Precision.W8), QuantRule("net.*", Precision.FP32),
))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first = nn.Linear(32, 24)
        self.second = nn.Linear(24, 16)
        self.third = nn.Linear(16, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.third(torch.relu(self.second(torch.relu(self.first(x)))))


@pytest.fixture(scope="module")
def quantized() -> tuple[nn.Module, torch.fx.GraphModule, torch.Tensor]:
    torch.manual_seed(0)
    net = _Net().eval()
    x = torch.randn(64, 32)
    converted = quantize_graphs({"g": (net, (x,))}, {"g": A16Quantizer(RECIPE, "net")},
                                lambda g: g["g"](x))["g"]
    return net, converted, x


def _linear_nodes(gm: torch.fx.GraphModule) -> list[torch.fx.Node]:
    return [n for n in gm.graph.nodes if n.op == "call_function" and n.target == torch.ops.aten.linear.default]


def _dequantized_weight(gm: torch.fx.GraphModule, linear: torch.fx.Node) -> torch.Tensor | None:
    """Evaluate the weight input's quantize -> dequantize chain (None: the weight is used as is)."""
    chain, node = [], linear.args[1]
    while node.op == "call_function":
        chain.append(node)
        node = node.args[0]
    value = operator.attrgetter(node.target)(gm)
    if not chain:
        return None
    for step in reversed(chain):
        args = [operator.attrgetter(a.target)(gm) if isinstance(a, torch.fx.Node) else a for a in step.args[1:]]
        value = step.target(value, *args)
    return value


def test_each_linear_gets_its_rule_bit_width_per_output_channel(quantized) -> None:  # noqa: ANN001
    net, gm, _ = quantized
    first, second, third = _linear_nodes(gm)
    for node, layer, levels in ((first, net.first, 16), (second, net.second, 256)):
        w = _dequantized_weight(gm, node)
        for row, ref in zip(w, layer.weight.detach()):
            assert len(torch.unique(row)) <= levels
            step = (ref.max() - ref.min()) / (levels - 1) if levels == 16 else 2 * ref.abs().max() / 255
            assert (row - ref).abs().max() <= step / 2 + 1e-6
    assert _dequantized_weight(gm, third) is None  # the fp32 rule: left alone


def test_report_reads_the_precision_off_the_graph(quantized) -> None:  # noqa: ANN001
    _, gm, _ = quantized
    layers = {layer.name: layer for layer in observe_graph("net", gm, RECIPE)}
    assert {n: (l.precision, l.activation) for n, l in layers.items()} == {
        "net.first": ("w4", "int16_sym_per_tensor"), "net.second": ("w8", "int16_sym_per_tensor"),
        "net.third": ("fp32", "none"),
    }
    assert layers["net.first"].weight_bytes == 24 * 32 // 2 + 24 * 8  # 4-bit data + scale and zero point per row
    assert layers["net.third"].weight_bytes == 8 * 16 * 4


def test_quantized_output_stays_close_to_float(quantized) -> None:  # noqa: ANN001
    net, gm, x = quantized
    with torch.no_grad():
        ref, got = net(x), gm(x)
    rel = (got - ref).norm() / ref.norm()
    assert 0 < rel < 0.1  # rounding happened, and int4 per-channel keeps the output within 10%
