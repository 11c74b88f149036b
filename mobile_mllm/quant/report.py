"""Every linear's and embedding's final precision, read from the weights themselves.

The report is built by *observing* each layer after quantization (the torchao tensor
subclass, its integer dtype and block size), not by restating the recipe, so a layer torchao
or a fallback left in float shows up as ``fp32``. A layer whose observed precision is ``fp32``
although the recipe asked for something else is *unexpected*; the export refuses a program
with any (ExecuTorch's own flow silently leaves such layers in float, its issue #22044).

Deliberately not here: deciding precisions (``recipe.py``) or applying them (``apply.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_mllm.quant.recipe import Precision

if TYPE_CHECKING:
    from torch import nn

__all__ = ["LayerPrecision", "QuantReport", "layer_name", "observe_weight"]


def layer_name(method: str, path: str) -> str:
    """The name recipe rules match: ``<method>.<module path>`` (just the method for its root module).

    Example:
        >>> layer_name("text_decoder", "layers.0.mlp.up_proj"), layer_name("token_embedding", "")
        ('text_decoder.layers.0.mlp.up_proj', 'token_embedding')
    """
    return f"{method}.{path}" if path else method


@dataclass(frozen=True)
class LayerPrecision:
    """One layer's precision as observed after quantization."""

    name: str
    """``<method>.<module path>``, the name recipe rules match."""
    kind: str
    """``linear`` or ``embedding``."""
    shape: tuple[int, ...]
    """Weight shape (out, in) for a linear, (rows, width) for an embedding."""
    requested: str | None
    """Precision the recipe asked for (None: no rule matched)."""
    precision: str
    """Precision observed on the weight: fp32, w8 or w4."""
    group_size: int | None
    """Weights per scale along the input dimension (None for fp32; equals the width when per-channel)."""
    activation: str
    """Activation quantization (``int8_asym_per_token`` for 8da*w linears, ``none`` otherwise)."""
    weight_bytes: int
    """Bytes of the stored weight: integer data at its bit width plus scales and zero points."""
    reason: str = ""
    """Why the precision differs from the request (a fallback), empty otherwise."""

    @property
    def unexpected_fp32(self) -> bool:
        """Left in float although the recipe asked for quantization."""
        return self.precision == Precision.FP32.value and self.requested != Precision.FP32.value

    @property
    def method(self) -> str:
        """The program method the layer belongs to."""
        return self.name.split(".", 1)[0]


def observe_weight(weight: Any) -> tuple[str, int | None, str, int]:
    """Read ``(precision, group_size, activation, weight_bytes)`` off a (possibly quantized) weight.

    Understands torchao's ``IntxUnpackedToInt8Tensor`` (what both 8da*w and weight-only intx
    configs produce); anything else counts as float.
    """
    qdata = getattr(weight, "qdata", None)
    target = getattr(weight, "target_dtype", None)
    if qdata is None or target is None:
        return Precision.FP32.value, None, "none", weight.numel() * weight.element_size()
    import torch

    bits = 4 if target == torch.int4 else 8
    precision = Precision.W4.value if bits == 4 else Precision.W8.value
    group = int(weight.block_size[-1])
    scale_bytes = weight.scale.numel() * weight.scale.element_size()
    zero_bytes = weight.zero_point.numel() * weight.zero_point.element_size() if weight.zero_point is not None else 0
    data_bytes = qdata.numel() * bits // 8
    activation = weight.activation_quantization or "none"
    return precision, group, str(activation), data_bytes + scale_bytes + zero_bytes


@dataclass(frozen=True)
class QuantReport:
    """The precision of every linear and embedding of the program's methods."""

    layers: tuple[LayerPrecision, ...]

    @classmethod
    def observe(
        cls, modules: dict[str, nn.Module], requested: dict[str, str | None], reasons: dict[str, str]
    ) -> QuantReport:
        """Observe every linear/embedding of ``modules`` (method name -> module).

        Args:
            modules (dict): method name -> (quantized) module.
            requested (dict): layer name -> precision the recipe asked for.
            reasons (dict): layer name -> fallback reason.
        """
        from torch import nn

        layers = []
        for method, module in modules.items():
            for path, sub in module.named_modules():
                if not isinstance(sub, (nn.Linear, nn.Embedding)):
                    continue
                name = layer_name(method, path)
                precision, group, activation, nbytes = observe_weight(sub.weight)
                layers.append(
                    LayerPrecision(
                        name=name,
                        kind="linear" if isinstance(sub, nn.Linear) else "embedding",
                        shape=tuple(int(d) for d in sub.weight.shape),
                        requested=requested.get(name),
                        precision=precision,
                        group_size=group,
                        activation=activation,
                        weight_bytes=nbytes,
                        reason=reasons.get(name, ""),
                    )
                )
        return cls(tuple(layers))

    def unexpected_fp32(self) -> list[LayerPrecision]:
        """Layers left in float although the recipe asked for quantization (must be empty)."""
        return [layer for layer in self.layers if layer.unexpected_fp32]

    def fallbacks(self) -> list[LayerPrecision]:
        """Layers that got another precision than requested, with the reason."""
        return [layer for layer in self.layers if layer.reason]

    def by_method(self) -> dict[str, dict[str, int]]:
        """Method -> precision -> number of layers (the manifest's ``precision`` summary)."""
        out: dict[str, Counter[str]] = {}
        for layer in self.layers:
            out.setdefault(layer.method, Counter())[layer.precision] += 1
        return {method: dict(sorted(counts.items())) for method, counts in out.items()}

    def module_precision(self) -> dict[str, str]:
        """Method -> its dominant precision (by weight count), e.g. ``{"text_decoder": "w4"}``."""
        weight: dict[str, Counter[str]] = {}
        for layer in self.layers:
            numel = 1
            for d in layer.shape:
                numel *= d
            weight.setdefault(layer.method, Counter())[layer.precision] += numel
        return {method: counts.most_common(1)[0][0] for method, counts in weight.items()}

    def get(self, name: str) -> LayerPrecision:
        """One layer by exact name.

        Raises:
            KeyError: naming the layer and a few known names.
        """
        for layer in self.layers:
            if layer.name == name:
                return layer
        known = ", ".join(layer.name for layer in self.layers[:5])
        raise KeyError(f"no layer {name!r} in the report; e.g. {known}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: a summary plus one row per layer."""
        from mobile_mllm.config import to_dict

        return {
            "by_method": self.by_method(),
            "num_unexpected_fp32": len(self.unexpected_fp32()),
            "fallbacks": [{"name": f.name, "reason": f.reason} for f in self.fallbacks()],
            "layers": [to_dict(layer) for layer in self.layers],
        }
