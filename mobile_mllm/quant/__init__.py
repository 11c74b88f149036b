"""Which weight gets which precision: recipes, applying them, and the per-layer report.

Importing this package loads no torch or torchao; :func:`quantize_modules` imports them when called.
"""

from mobile_mllm.quant.apply import quantize_modules
from mobile_mllm.quant.recipe import (
    PRESETS,
    LayerKind,
    Precision,
    QuantConfig,
    QuantRecipe,
    QuantRule,
    build_recipe,
    effective_precision,
    preset,
    torchao_config,
)
from mobile_mllm.quant.report import LayerPrecision, QuantReport, layer_name, observe_weight

__all__ = [
    "PRESETS",
    "LayerKind",
    "LayerPrecision",
    "Precision",
    "QuantConfig",
    "QuantRecipe",
    "QuantReport",
    "QuantRule",
    "build_recipe",
    "effective_precision",
    "layer_name",
    "observe_weight",
    "preset",
    "quantize_modules",
    "torchao_config",
]
