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


# --- the whole-graph annotation, on the tiny model's static decoder shard (2 layers + head) -------------------------

ALL_QUANTIZED = QuantRecipe((QuantRule("*", Precision.W4),))


def _neuropilot_annotator():  # noqa: ANN202
    """ExecuTorch's own MediaTek annotator, loaded from the installed wheel's files.

    ``executorch.backends.mediatek`` cannot be imported without the SDK (its ``__init__`` imports
    ``mtk_converter``), but its ``quantizer/annotator.py`` and ``qconfig.py`` need only torch and
    torchao: register empty parent packages and load those two files.
    """
    import importlib.util
    import sys
    import types
    from pathlib import Path

    import executorch

    root = Path(next(iter(executorch.__path__))) / "backends" / "mediatek" / "quantizer"
    if not (root / "annotator.py").is_file():
        pytest.skip(f"no NeuroPilot annotator in the installed ExecuTorch ({root})")
    saved = {k: sys.modules.get(k) for k in ("executorch.backends.mediatek", "executorch.backends.mediatek.quantizer")}
    try:
        for name, path in (("executorch.backends.mediatek", root.parent), ("executorch.backends.mediatek.quantizer", root)):
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
        loaded = {}
        for leaf in ("qconfig", "annotator"):
            full = f"executorch.backends.mediatek.quantizer.{leaf}"
            spec = importlib.util.spec_from_file_location(full, root / f"{leaf}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
            loaded[leaf] = module
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return loaded["annotator"], loaded["qconfig"]


@pytest.fixture(scope="module")
def shard(tiny):  # noqa: ANN001, ANN201
    """The tiny decoder as one static shard at 8 positions over a 24-position cache, and its example inputs."""
    from mobile_mllm.export.static_decoder import build_shards
    from mobile_mllm.model.registry import decoder_parts

    parts = decoder_parts(tiny)
    (module,) = build_shards(parts, 0)
    n, ctx = 8, 24
    torch.manual_seed(0)
    caches = tuple(torch.randn(1, parts.num_kv_heads, ctx, parts.head_dim) for _ in range(2 * len(parts.layers)))
    args = (torch.randn(1, n, tiny.hidden_size), torch.rand(n, parts.head_dim), torch.rand(n, parts.head_dim),
            torch.zeros(1, 1, n, ctx + n), *caches)
    return module, args, len(parts.layers)


def _annotations(gm: torch.fx.GraphModule) -> tuple[set[str], set[tuple[str, str]]]:
    """(nodes whose output is quantized, (node, input) pairs quantized on the way in), by node name."""
    outputs, inputs = set(), set()
    for node in gm.graph.nodes:
        annotation = node.meta.get("quantization_annotation")
        if annotation is None:
            continue
        if annotation.output_qspec is not None:
            outputs.add(node.name)
        inputs |= {(node.name, arg.name) for arg in annotation.input_qspec_map}
    return outputs, inputs


def test_annotation_is_neuropilots_on_the_static_decoder(shard) -> None:  # noqa: ANN001
    annotator, qconfig = _neuropilot_annotator()
    module, args, _ = shard
    with torch.no_grad():
        ours, theirs = (torch.export.export(module, args, strict=False).module() for _ in range(2))
    A16Quantizer(ALL_QUANTIZED, "text_decoder").annotate(ours)
    annotator.annotate(theirs.graph, qconfig.get_quant_config(qconfig.Precision.A16W4, True))
    assert _annotations(ours) == _annotations(theirs)


def test_converted_decoder_quantizes_each_op_neuropilot_lists_and_the_kv_cache(shard) -> None:  # noqa: ANN001
    from collections import Counter

    module, args, layers = shard
    gm = quantize_graphs({"g": (module, args)}, {"g": A16Quantizer(ALL_QUANTIZED, "text_decoder")},
                         lambda g: g["g"](*args))["g"]
    quantized: Counter[str] = Counter()
    for node in gm.graph.nodes:
        qs = [u for u in node.users if "quantize_per_tensor" in str(u.target) and "dequantize" not in str(u.target)]
        if node.op == "call_function" and "quantize" in str(node.target):
            continue
        if qs:
            assert all(q.args[-1] == torch.int16 for q in qs)
            assert all(any("dequantize" in str(d.target) for d in q.users) for q in qs)  # a q/dq pair
            quantized["input" if node.op == "placeholder" else str(node.target).split(".")[1]] += 1
    # Per layer, counted off the module by hand: 7 linears; 2 matmuls (scores, values); 1 silu; adds: RoPE on q and
    # k, the mask, 2 residuals (not the norms' + eps); muls: 4 RoPE, the score scale, gate * up, and 2 per RMS norm
    # (x * rsqrt, * weight). Plus the head: the final norm (2 muls) and lm_head. Inputs: hidden, cos, sin, mask and
    # the layers' KV cache; the new keys/values leave through a quantized add (k) and linear (v).
    assert quantized == Counter({
        "input": 4 + 2 * layers, "linear": 7 * layers + 1, "matmul": 2 * layers, "silu": layers,
        "add": 5 * layers, "mul": 10 * layers + 2,
    })
    outputs = list(gm.graph.output_node().args[0])
    for new_kv in outputs[1:]:  # the KV cache comes back on the int16 grid (through view/transpose, which keep values)
        while str(new_kv.target).split(".")[1] in {"view", "transpose", "reshape", "contiguous"}:
            new_kv = new_kv.args[0]
        assert "dequantize_per_tensor" in str(new_kv.target)
        assert new_kv.args[-1] == torch.int16
