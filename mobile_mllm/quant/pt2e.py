"""PT2E quantization with 16-bit activations (A16W4 / A16W8), as MediaTek's NPU runs it.

The NPU recipe of the paper: decoder weights 4-bit and vision/projector weights 8-bit, every
quantized layer with 16-bit activations. When the NeuroPilot SDK is importable, ExecuTorch's
``NeuropilotQuantizer`` does the annotation (:func:`neuropilot_quantizer`); without it,
:class:`A16Quantizer` is the same configuration written against torchao's PT2E quantizer API,
so the accuracy of the recipe is known before the SDK is installed. Both use (ExecuTorch's
``backends/mediatek/quantizer/qconfig.py``):

* activations: int16, symmetric, per tensor, min-max observers;
* ``w8`` weights: int8 symmetric per output channel; ``w4`` weights: int4 (-8..7, affine) per
  output channel (no groups: the NPU's granularity).

Which layer gets which weight precision is the toolkit's precision recipe (``recipe.py``: first
matching rule over ``<method>.<module path>``), so ``--decoder``/``--rules`` work as for the cpu
target. What :class:`A16Quantizer` annotates is what NeuroPilot's annotator does (its class
docstring lists it): the graph inputs (the KV cache included), every quantized ``linear``'s
weight and output, and the output of each elementwise/normalisation/matmul op NeuroPilot lists,
so the simulated accuracy includes the int16 rounding between layers. The report
(:func:`observe_graph`) is read off the converted graph (an integer weight behind a dequantize
node), not restated from the recipe.

Deliberately not here: which graphs exist and how they are calibrated (``export/backends/mediatek.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mobile_mllm.quant.recipe import Precision, QuantRecipe
from mobile_mllm.quant.report import LayerPrecision, QuantReport, layer_name

if TYPE_CHECKING:
    import torch
    from torch import fx

logger = logging.getLogger(__name__)

__all__ = ["A16Quantizer", "ACTIVATION", "neuropilot_quantizer", "observe_graph", "quantize_graphs", "report_graphs"]

ACTIVATION = "int16_sym_per_tensor"
"""The activation quantization of every quantized linear (the report's ``activation``)."""


def _module_path(node: fx.Node) -> str:
    """The module path of the layer a graph node came from (``layers.0.self_attn.q_proj``)."""
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    path = list(stack.values())[-1][0]
    return path.replace("L['self'].", "").replace("['", ".").replace("']", "").strip(".")


def _specs(precision: Precision) -> tuple[Any, Any]:
    """(activation spec, weight spec) of a precision: int16 symmetric per tensor; int8/int4 per channel."""
    import torch
    from torchao.quantization.pt2e import MinMaxObserver, PerChannelMinMaxObserver
    from torchao.quantization.pt2e.quantizer import QuantizationSpec

    activation = QuantizationSpec(
        dtype=torch.int16, quant_min=-32768, quant_max=32767, qscheme=torch.per_tensor_symmetric,
        observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=1e-6),
    )
    four = precision is Precision.W4
    weight = QuantizationSpec(
        dtype=torch.int8, quant_min=-8 if four else -128, quant_max=7 if four else 127,
        qscheme=torch.per_channel_affine if four else torch.per_channel_symmetric, ch_axis=0,
        observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=1e-6),
    )
    return activation, weight


def _quantizer_base() -> type:
    from torchao.quantization.pt2e.quantizer import Quantizer

    return Quantizer


_OUTPUT_OPS = (
    "add.Scalar", "add.Tensor", "add_.Scalar", "add_.Tensor", "bmm.default", "div.Scalar", "div.Tensor",
    "div_.Scalar", "div_.Tensor", "divide.Scalar", "divide.Tensor", "gelu.default", "group_norm.default",
    "layer_norm.default", "leaky_relu.default", "matmul.default", "mul.Scalar", "mul.Tensor", "mul_.Scalar",
    "mul_.Tensor", "pow.Scalar", "pow.Tensor_Scalar", "pow.Tensor_Tensor", "prelu.default", "rsub.Scalar",
    "rsub.Tensor", "silu.default", "sub.Scalar", "sub.Tensor", "sub_.Scalar", "sub_.Tensor",
)
"""The aten ops whose output NeuroPilot quantizes to int16 (its annotator's per-op list, ExecuTorch 1.5).

Not in it, so left float between quantized neighbours, as on the NPU recipe: softmax, mean,
rsqrt, exp, neg, cat and every data-movement op (view, transpose, slice, expand: they carry
their input's already-rounded values)."""

_AFFINE_OPS = ("linear.default", "conv1d.default", "conv2d.default")
_RELU_OPS = ("relu.default", "relu_.default", "relu6.default")
_ARITHMETIC = tuple(o for o in _OUTPUT_OPS if o.split(".")[0].rstrip("_") in {"add", "sub", "rsub", "mul", "div", "divide"})


def _ops(names: Sequence[str]) -> frozenset[Any]:
    """aten overloads from ``packet.overload`` names."""
    import torch

    out = set()
    for name in names:
        packet, overload = name.split(".")
        out.add(getattr(getattr(torch.ops.aten, packet), overload))
    return frozenset(out)


def _is_float_tensor(node: fx.Node) -> bool:
    import torch

    val = node.meta.get("val")
    return isinstance(val, torch.Tensor) and val.dtype == torch.float32


def _rms_norm_nodes(graph: fx.Graph) -> dict[fx.Node, list[fx.Node]]:
    """Each RMS norm's result (``x * rsqrt(mean(x*x or x**2, -1) + eps)``) -> its inner pow/mul/add nodes.

    NeuroPilot quantizes a norm only at its result (one int16 tensor), not its square, sum or scale.
    """
    import torch

    aten = torch.ops.aten
    found: dict[fx.Node, list[fx.Node]] = {}
    for node in graph.nodes:
        if node.op != "call_function" or node.target != aten.mul.Tensor:
            continue
        for x, r in (node.args, tuple(reversed(node.args))):
            if not (isinstance(r, torch.fx.Node) and r.target == aten.rsqrt.default):
                continue
            add = r.args[0]
            if not (isinstance(add, torch.fx.Node) and add.target in (aten.add.Scalar, aten.add.Tensor)
                    and not isinstance(add.args[1], torch.fx.Node)  # + eps
                    and isinstance(add.args[0], torch.fx.Node) and add.args[0].target == aten.mean.dim):
                continue
            square = add.args[0].args[0]
            if isinstance(square, torch.fx.Node) and (
                (square.target == aten.pow.Tensor_Scalar and square.args[0] is x and square.args[1] == 2)
                or (square.target == aten.mul.Tensor and square.args[0] is x and square.args[1] is x)
            ):
                found[node] = [square, add]
    return found


class A16Quantizer(_quantizer_base()):  # type: ignore[misc]
    """NeuroPilot's PT2E annotation written for this toolkit: int16 activations, int8/int4 per-channel weights.

    Mirrors what ExecuTorch's ``backends/mediatek/quantizer/annotator.py`` marks (read, not
    copied), so the simulated accuracy is the NPU recipe's:

    * every float graph input is quantized (hidden states, RoPE rows, the mask and the **KV
      cache inputs**); the new keys/values come out of a quantized op (the RoPE add, the
      ``v_proj`` linear), so the cache is int16 both ways, as on the NPU;
    * ``linear``/``conv``: the weight per output channel at the rule's width, the output int16
      (the input is whatever its producer's output already is);
    * the output of each op in :data:`_OUTPUT_OPS` (add, mul, sub, div, matmul, bmm, pow, gelu,
      silu, layer/group norm, ...);
    * an RMS norm only at its result; a ``relu`` after an affine or arithmetic op only after the
      relu (fused on the NPU).

    The one difference is the toolkit's precision recipe: a linear whose rule is ``fp32`` is
    left float (weight and output), so ``--decoder``/``--rules`` work as for the cpu target.
    Attention here is already matmul + softmax (no SDPA node), which is what NeuroPilot's
    ``transform_for_annotation`` decomposes SDPA into first.

    Args:
        recipe (QuantRecipe): the precision rules.
        method (str): the method name the rules see as the layers' prefix (``text_decoder``).
    """

    def __init__(self, recipe: QuantRecipe, method: str) -> None:
        super().__init__()
        self.recipe, self.method = recipe, method

    def annotate(self, model: fx.GraphModule) -> fx.GraphModule:
        import torch
        from torchao.quantization.pt2e.quantizer import QuantizationAnnotation

        graph = model.graph
        activation, _ = _specs(Precision.W8)
        done: set[fx.Node] = set()

        def mark(node: fx.Node, *, output: bool = False, weight: tuple[fx.Node, Any] | None = None) -> None:
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={} if weight is None else {weight[0]: weight[1]},
                output_qspec=activation if output else None, _annotated=True,
            )
            done.add(node)

        def weight_spec(node: fx.Node) -> Any | None:
            precision = self.recipe.requested(layer_name(self.method, _module_path(node)))
            return None if precision is None or precision is Precision.FP32 else _specs(precision)[1]

        for result, inner in _rms_norm_nodes(graph).items():
            for node in inner:
                mark(node)
            mark(result, output=True)
        affine, relus, arithmetic = _ops(_AFFINE_OPS), _ops(_RELU_OPS), _ops(_ARITHMETIC)
        for relu in graph.nodes:
            producer = relu.args[0] if relu.op == "call_function" and relu.target in relus else None
            if not isinstance(producer, torch.fx.Node) or producer.op != "call_function" or len(producer.users) != 1:
                continue
            if producer.target in affine:
                spec = weight_spec(producer)
                mark(producer, weight=None if spec is None else (producer.args[1], spec))
                mark(relu, output=spec is not None)
            elif producer.target in arithmetic and producer not in done:
                mark(producer)
                mark(relu, output=True)
        outputs, embedding = _ops(_OUTPUT_OPS), torch.ops.aten.embedding.default
        for node in graph.nodes:
            if node in done:
                continue
            if node.op == "placeholder" and _is_float_tensor(node):
                mark(node, output=True)
            elif node.op == "call_function" and node.target in affine:
                spec = weight_spec(node)
                if spec is not None:
                    mark(node, output=True, weight=(node.args[1], spec))
            elif node.op == "call_function" and node.target in outputs:
                mark(node, output=True)
            elif node.op == "call_function" and node.target == embedding:
                mark(node, weight=(node.args[0], activation))
        return model

    def validate(self, model: fx.GraphModule) -> None:
        del model


def neuropilot_quantizer(precision: Precision) -> Any | None:
    """ExecuTorch's ``NeuropilotQuantizer`` set to A16W4/A16W8, or None when the SDK is not importable."""
    try:
        from executorch.backends.mediatek import NeuropilotQuantizer
        from executorch.backends.mediatek import Precision as NpPrecision
    except ImportError:
        return None
    quantizer = NeuropilotQuantizer()
    quantizer.setup_precision(NpPrecision.A16W4 if precision is Precision.W4 else NpPrecision.A16W8)
    return quantizer


def _share_ranges(graphs: Sequence[fx.GraphModule]) -> int:
    """Give corresponding observers of graphs traced from one module the union of their ranges.

    The prompt and generate graphs of a shard (and the two vision batches) are the same code at
    two shapes, so their observers come in the same order; sharing the ranges gives both one set
    of quantization parameters, as one quantized model exported at two shapes. Returns how many
    observers were merged.
    """
    import torch

    def observers(gm: fx.GraphModule) -> dict[str, Any]:
        return {n: m for n, m in gm.named_modules() if hasattr(m, "min_val") and hasattr(m, "max_val")}

    found = [observers(gm) for gm in graphs]
    merged = 0
    for name in set.intersection(*(set(f) for f in found)):
        mods = [f[name] for f in found]
        if len({tuple(m.min_val.shape) for m in mods}) != 1 or any(m.min_val.numel() == 0 for m in mods):
            continue
        low = torch.stack([m.min_val for m in mods]).amin(0)
        high = torch.stack([m.max_val for m in mods]).amax(0)
        for m in mods:
            m.min_val.copy_(low)
            m.max_val.copy_(high)
        merged += 1
    return merged


def quantize_graphs(
    graphs: Mapping[str, tuple[torch.nn.Module, tuple[Any, ...]]],
    quantizers: Mapping[str, Any],
    calibrate: Callable[[dict[str, Callable[..., Any]]], None],
    *,
    share: Sequence[Sequence[str]] = (),
) -> dict[str, fx.GraphModule]:
    """PT2E: export each graph, insert observers, calibrate them all together, convert.

    Args:
        graphs (Mapping): name -> (float module, example inputs); shapes are static.
        quantizers (Mapping): name -> the quantizer annotating that graph.
        calibrate (Callable): called once with name -> observed graph; runs them on calibration
            data (e.g. the static runner over images and prompts), as the phone would.
        share (Sequence[Sequence[str]]): groups of graph names traced from one module at
            different shapes; each group's observed ranges are united before conversion.
            Default none.

    Returns:
        dict[str, fx.GraphModule]: name -> converted graph (quantize/dequantize nodes around
        integer weights), runnable on the host.
    """
    import torch
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = {}
    for name, (module, args) in graphs.items():
        with torch.no_grad():
            gm = torch.export.export(module, args, strict=False).module()
        prepared[name] = prepare_pt2e(gm, quantizers[name])
    calibrate(prepared)
    for group in share:
        logger.debug("shared %d observer ranges across %s", _share_ranges([prepared[n] for n in group]), ", ".join(group))
    return {name: convert_pt2e(gm, fold_quantize=False) for name, gm in prepared.items()}


def _weight_shape(gm: fx.GraphModule, node: Any) -> tuple[int, ...]:
    """The shape of the constant a weight input comes from, through its quantize/dequantize nodes."""
    import operator

    while getattr(node, "op", "") == "call_function":
        node = node.args[0]
    if getattr(node, "op", "") != "get_attr":
        return ()
    return tuple(int(d) for d in operator.attrgetter(node.target)(gm).shape)


def observe_graph(method: str, gm: fx.GraphModule, recipe: QuantRecipe) -> list[LayerPrecision]:
    """Every ``linear`` of a converted graph with the precision its weight really has.

    A weight behind a ``dequantize_per_channel`` of an integer tensor is ``w4`` (range -8..7)
    or ``w8``; anything else is float.
    """
    import torch

    layers = []
    for node in gm.graph.nodes:
        if node.op != "call_function" or node.target != torch.ops.aten.linear.default:
            continue
        name = layer_name(method, _module_path(node))
        requested = recipe.requested(name)
        weight = node.args[1]
        shape = _weight_shape(gm, weight)
        numel = 1
        for d in shape:
            numel *= d
        precision, bits, activation = Precision.FP32.value, 32, "none"
        if getattr(weight, "op", "") == "call_function" and "dequantize_per_channel" in str(weight.target):
            qmin, qmax = int(weight.args[4]), int(weight.args[5])
            bits = 4 if qmax - qmin == 15 else 8
            precision, activation = (Precision.W4 if bits == 4 else Precision.W8).value, ACTIVATION
        scales = shape[0] * 8 if shape and bits < 32 else 0  # fp32 scale + int32 zero point per channel
        layers.append(LayerPrecision(
            name=name, kind="linear", shape=shape, requested=None if requested is None else requested.value,
            precision=precision, group_size=shape[-1] if shape and bits < 32 else None, activation=activation,
            weight_bytes=numel * bits // 8 + scales,
        ))
    return layers


def report_graphs(converted: Mapping[str, fx.GraphModule], methods: Mapping[str, str], recipe: QuantRecipe) -> QuantReport:
    """The report of converted graphs, each layer once (graphs sharing weights, e.g. prompt and generate, count once).

    Args:
        converted (Mapping): graph name -> converted graph.
        methods (Mapping): graph name -> the method name its layers are reported under.
        recipe (QuantRecipe): the rules (for ``requested``).
    """
    seen: dict[str, LayerPrecision] = {}
    for name, gm in converted.items():
        for layer in observe_graph(methods[name], gm, recipe):
            seen.setdefault(layer.name, layer)
    return QuantReport(tuple(seen.values()))
