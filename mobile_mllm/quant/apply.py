"""Apply a :class:`~mobile_mllm.quant.recipe.QuantRecipe` to the program's modules, in place.

Every ``nn.Linear`` and ``nn.Embedding`` is looked up by its FQN (``<method>.<module path>``),
given the first matching rule's precision (with the group-size fallback of
:func:`~mobile_mllm.quant.recipe.effective_precision`), and quantized with torchao's
``quantize_``; then the result is observed layer by layer into a
:class:`~mobile_mllm.quant.report.QuantReport`.

Deliberately not here: exporting or lowering, and choosing rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mobile_mllm.errors import ExportError
from mobile_mllm.quant.recipe import LayerKind, Precision, QuantRecipe, effective_precision, torchao_config
from mobile_mllm.quant.report import QuantReport, layer_name

if TYPE_CHECKING:
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["quantize_modules"]


def quantize_modules(modules: Mapping[str, nn.Module], recipe: QuantRecipe) -> QuantReport:
    """Quantize each method's module in place according to ``recipe`` and report every layer.

    Args:
        modules (Mapping[str, nn.Module]): method name -> module (float, eval mode).
        recipe (QuantRecipe): ordered rules and the group size.

    Returns:
        QuantReport: each linear/embedding's observed precision, fallbacks with their reason.

    Raises:
        ExportError: naming the method and layer when torchao fails on it.
    """
    from torch import nn
    from torchao.quantization import quantize_

    requested: dict[str, str | None] = {}
    reasons: dict[str, str] = {}
    groups: dict[tuple[str, Precision, LayerKind], set[str]] = {}
    for method, module in modules.items():
        for path, sub in module.named_modules():
            if isinstance(sub, nn.Linear):
                kind, width = LayerKind.LINEAR, sub.in_features
            elif isinstance(sub, nn.Embedding):
                kind, width = LayerKind.EMBEDDING, sub.embedding_dim
            else:
                continue
            name = layer_name(method, path)
            want = recipe.requested(name)
            requested[name] = want.value if want is not None else None
            if want is None:
                continue
            final, reason = effective_precision(want, kind, width, recipe.group_size)
            if reason:
                reasons[name] = reason
                logger.warning("%s: %s", name, reason)
            if final is not Precision.FP32:
                groups.setdefault((method, final, kind), set()).add(path)
    for (method, precision, kind), paths in groups.items():
        config = torchao_config(precision, kind, recipe.group_size)
        try:
            quantize_(modules[method], config, filter_fn=lambda _m, fqn, paths=paths: fqn in paths)
        except (ValueError, TypeError, RuntimeError, AssertionError, NotImplementedError) as e:  # torchao's assorted types
            raise ExportError(
                f"stage quantize, module {method}: torchao could not quantize {sorted(paths)[:3]}... "
                f"to {precision.value} ({kind.value}): {e}"
            ) from e
        logger.debug("%s: %d %s layers -> %s", method, len(paths), kind.value, precision.value)
        if precision is Precision.W4 and kind is LayerKind.LINEAR:
            _round_group_scales_to_bf16(modules[method], paths)
    return QuantReport.observe(dict(modules), requested, reasons)


def _round_group_scales_to_bf16(module: nn.Module, paths: set[str]) -> None:
    """Make int4 group scales exactly bf16-representable (values stay float32).

    XNNPACK's blockwise int4 kernels store group scales in bf16; rounding them here, before
    export, makes the eager quantized model compute what the program computes (a single 8da4w
    linear then agrees to ~1e-7 instead of ~2e-3), at no measurable cost in accuracy (bf16 keeps
    8 significant bits of a scale that multiplies a 4-bit value).
    """
    import torch

    for path in paths:
        scale = module.get_submodule(path).weight.scale
        with torch.no_grad():
            scale.copy_(scale.to(torch.bfloat16).to(scale.dtype))
