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
target. What :class:`A16Quantizer` annotates: every ``linear`` the recipe quantizes (input,
weight, output). ``NeuropilotQuantizer`` also annotates the elementwise and normalisation ops
between them; those stay float here (what the simulation measures is the weight and linear
activation rounding, which dominates). The report (:func:`observe_graph`) is read off the
converted graph (an integer weight behind a dequantize node), not restated from the recipe.

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


class A16Quantizer(_quantizer_base()):  # type: ignore[misc]
    """Annotate each ``linear`` of a graph by the precision recipe: int16 activations, int8/int4 per-channel weights.

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

        for node in model.graph.nodes:
            if node.op != "call_function" or node.target != torch.ops.aten.linear.default:
                continue
            precision = self.recipe.requested(layer_name(self.method, _module_path(node)))
            if precision is None or precision is Precision.FP32:
                continue
            activation, weight = _specs(precision)
            node.meta["quantization_annotation"] = QuantizationAnnotation(
                input_qspec_map={node.args[0]: activation, node.args[1]: weight},
                output_qspec=activation,
                _annotated=True,
            )
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
