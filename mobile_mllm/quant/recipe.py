"""Which weight gets which precision: ordered rules, one precision vocabulary, torchao configs in one place.

A :class:`QuantRecipe` is an ordered list of :class:`QuantRule` (``fnmatch`` pattern over a
layer's fully-qualified name ``<method>.<module path>`` -> :class:`Precision`); the first rule
that matches wins and a layer no rule matches is left in float *and counted as unexpected*
(the export fails on it). :class:`QuantConfig` is what users set (``[quant]`` in a recipe
TOML, ``--decoder``, ``--group-size``... flags); :func:`build_recipe` turns it into rules, and
:func:`torchao_config` is the only place a precision name becomes a torchao config.

Deliberately not here: packing, backends, or lowering. A recipe says ``w4``; whether XNNPACK
runs it as 8da4w is the backend's business, and the fallback for a group size that does not
divide a layer's input width is decided in :func:`effective_precision` (and reported).
"""

from __future__ import annotations

import enum
import fnmatch
from dataclasses import dataclass
from typing import Any

from mobile_mllm.errors import ConfigError

__all__ = [
    "PRESETS",
    "LayerKind",
    "Precision",
    "QuantConfig",
    "QuantRecipe",
    "QuantRule",
    "build_recipe",
    "effective_precision",
    "preset",
    "torchao_config",
]


class Precision(str, enum.Enum):
    """The one precision vocabulary of the toolkit.

    For a linear: ``w8`` = int8 dynamic activations, int8 per-output-channel weights ("8da8w");
    ``w4`` = int8 dynamic activations, int4 group-wise weights ("8da4w"). For an embedding:
    ``w8`` = int8 per-row weights, ``w4`` = int4 group-wise weights (weight-only: a lookup has
    no activation to quantize). ``fp32`` keeps the float weights.
    """

    FP32 = "fp32"
    W8 = "w8"
    W4 = "w4"


class LayerKind(str, enum.Enum):
    """The two kinds of layers a recipe quantizes."""

    LINEAR = "linear"
    EMBEDDING = "embedding"


@dataclass(frozen=True)
class QuantRule:
    """One rule: layers whose FQN matches ``pattern`` (``fnmatch``) get ``precision``."""

    pattern: str
    precision: Precision

    def matches(self, fqn: str) -> bool:
        """Whether this rule applies to the layer ``fqn`` (``<method>.<module path>``)."""
        return fnmatch.fnmatchcase(fqn, self.pattern)


@dataclass(frozen=True)
class QuantRecipe:
    """Ordered rules plus the group size used by every ``w4`` layer."""

    rules: tuple[QuantRule, ...]
    group_size: int = 32

    def requested(self, fqn: str) -> Precision | None:
        """The precision the first matching rule asks for, or None when no rule matches.

        Example:
            >>> r = QuantRecipe((QuantRule("a.head", Precision.W8), QuantRule("a.*", Precision.W4)))
            >>> r.requested("a.head"), r.requested("a.layers.0.q"), r.requested("b.x")
            (<Precision.W8: 'w8'>, <Precision.W4: 'w4'>, None)
        """
        for rule in self.rules:
            if rule.matches(fqn):
                return rule.precision
        return None


def _parse_rule(text: str) -> QuantRule:
    pattern, sep, value = text.rpartition("=")
    if not sep or not pattern.strip():
        raise ConfigError(f"quant.rules: {text!r} is not PATTERN=PRECISION (e.g. 'text_decoder.layers.0.*=w8')")
    try:
        return QuantRule(pattern.strip(), Precision(value.strip()))
    except ValueError:
        allowed = ", ".join(p.value for p in Precision)
        raise ConfigError(f"quant.rules: precision {value.strip()!r} in {text!r} is not one of {allowed}") from None


@dataclass(frozen=True)
class QuantConfig:
    """What users set about precision (the ``[quant]`` table of an export recipe)."""

    decoder: Precision = Precision.W4
    """Decoder linears (attention and MLP): w4 = 8da4w group-wise, w8 = 8da8w per-channel, fp32."""
    lm_head: Precision = Precision.W8
    """The decoder's output head (w8 unless you accept 4-bit logits)."""
    vision: Precision = Precision.W8
    """Vision tower, downsampler and projector linears."""
    embedding: Precision = Precision.W8
    """Token embedding table: w8 = int8 per row, w4 = int4 group-wise."""
    group_size: int = 32
    """Weights per quantization group for w4 layers (must divide a layer's input width, else per-channel w8)."""
    rules: tuple[str, ...] = ()
    """Extra PATTERN=PRECISION rules over <method>.<module path>, tried before the defaults (first match wins)."""

    def __post_init__(self) -> None:
        if self.group_size < 1 or self.group_size & (self.group_size - 1):
            raise ConfigError(f"quant.group_size must be a power of two >= 1, got {self.group_size}")
        for text in self.rules:
            _parse_rule(text)


PRESETS: dict[str, QuantConfig] = {
    "w4": QuantConfig(),
    "w8": QuantConfig(decoder=Precision.W8, lm_head=Precision.W8, vision=Precision.W8, embedding=Precision.W8),
    "fp32": QuantConfig(
        decoder=Precision.FP32, lm_head=Precision.FP32, vision=Precision.FP32, embedding=Precision.FP32
    ),
    # The paper's NPU recipe: on --target mediatek every quantized linear has 16-bit activations
    # (A16), so these name the weights only: decoder 4-bit, vision/projector and lm_head 8-bit.
    # The token embedding is a lookup on the phone's CPU there and stays float.
    "a16w4": QuantConfig(embedding=Precision.FP32),
    "a16w8": QuantConfig(
        decoder=Precision.W8, lm_head=Precision.W8, vision=Precision.W8, embedding=Precision.FP32
    ),
}
"""Built-in precision presets (``--recipe w4|w8|fp32|a16w4|a16w8``); the files in ``export/`` spell the same values.

``a16w4``/``a16w8`` are the MediaTek target's recipes (16-bit activations there); on the cpu
target the same weight precisions run with XNNPACK's int8 dynamic activations."""


def preset(name: str) -> QuantConfig:
    """A built-in preset by exact name.

    Raises:
        ConfigError: for an unknown name, listing the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"no precision preset {name!r}; known: {', '.join(PRESETS)} (or a recipe .toml path)") from None


def build_recipe(cfg: QuantConfig, *, vision_method: str, decoder_method: str, embedding_method: str) -> QuantRecipe:
    """Turn user settings into ordered rules: user rules first, then lm_head, decoder, vision, embedding.

    Args:
        cfg (QuantConfig): the user's settings.
        vision_method (str): method name holding the vision tower, downsampler and projector.
        decoder_method (str): method name holding the decoder (its output head is ``lm_head``).
        embedding_method (str): method name holding the token embedding.

    Returns:
        QuantRecipe: the rules, ending with one catch-all per method so no layer goes unmatched.
    """
    rules = [_parse_rule(text) for text in cfg.rules]
    rules.append(QuantRule(f"{decoder_method}.lm_head", cfg.lm_head))
    for method, precision in ((decoder_method, cfg.decoder), (vision_method, cfg.vision), (embedding_method, cfg.embedding)):
        rules += [QuantRule(method, precision), QuantRule(f"{method}.*", precision)]  # the root module, then the rest
    return QuantRecipe(tuple(rules), cfg.group_size)


def effective_precision(
    requested: Precision, kind: LayerKind, in_features: int, group_size: int
) -> tuple[Precision, str]:
    """The precision a layer really gets, and why it differs from the request (empty when it does not).

    A ``w4`` layer whose input width (a linear's ``in_features``, an embedding's width) is not
    a multiple of ``group_size`` falls back to per-channel ``w8`` rather than being left in
    fp32 (which is what ExecuTorch's own flow silently does, its issue #22044).

    Example:
        >>> effective_precision(Precision.W4, LayerKind.LINEAR, 200, 32)
        (<Precision.W8: 'w8'>, 'group size 32 does not divide in_features 200: per-channel int8')
    """
    if requested is Precision.W4 and in_features % group_size:
        what = "in_features" if kind is LayerKind.LINEAR else "embedding_dim"
        return Precision.W8, f"group size {group_size} does not divide {what} {in_features}: per-channel int8"
    return requested, ""


def torchao_config(precision: Precision, kind: LayerKind, group_size: int) -> Any:
    """The torchao ``quantize_`` config of a precision for a kind of layer (None for fp32).

    The one place where the vocabulary meets torchao: linears get int8 dynamic activations
    (XNNPACK runs 8da4w/8da8w; weight-only int4 linears do not lower to it), embeddings get
    weight-only configs that fuse into ExecuTorch's ``embedding_byte``/``embedding_4bit`` kernels.
    Int4 group scales are chosen with ``hqq_scale_only`` (ExecuTorch's default); int8
    per-channel scales with plain min-max (``affine``): at 8 bits the HQQ scale search buys
    nothing and was 97% of the quantize stage (builtin:synth-small vision linears: 15.4 s with
    HQQ, 0.34 s min-max, relative error vs float 1.49e-2 vs 1.48e-2 on the same tiles; its w8
    lm_head likewise), and its cost grows with the weight (a 150k-row lm_head).
    """
    if precision is Precision.FP32:
        return None
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerAxis, PerGroup

    weight_dtype = torch.int4 if precision is Precision.W4 else torch.int8
    if kind is LayerKind.LINEAR:
        granularity = PerGroup(group_size) if precision is Precision.W4 else PerAxis(0)
        return Int8DynamicActivationIntxWeightConfig(
            weight_dtype=weight_dtype,
            weight_granularity=granularity,
            intx_choose_qparams_algorithm="hqq_scale_only" if precision is Precision.W4 else "affine",
        )
    granularity = PerGroup(group_size) if precision is Precision.W4 else PerAxis(0)
    return IntxWeightOnlyConfig(weight_dtype=weight_dtype, granularity=granularity)

