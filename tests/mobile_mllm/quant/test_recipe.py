"""Rules -> precision: first match wins, presets, the group-size fallback, torchao configs."""

from __future__ import annotations

import pytest

from mobile_mllm.errors import ConfigError
from mobile_mllm.quant.recipe import (
    PRESETS,
    LayerKind,
    Precision,
    QuantConfig,
    build_recipe,
    effective_precision,
    preset,
    torchao_config,
)

METHODS = {"vision_method": "vision_encoder", "decoder_method": "text_decoder", "embedding_method": "token_embedding"}


@pytest.mark.parametrize(
    ("recipe", "fqn", "expected"),
    [
        ("w4", "text_decoder.layers.0.self_attn.q_proj", Precision.W4),
        ("w4", "text_decoder.layers.1.mlp.down_proj", Precision.W4),
        ("w4", "text_decoder.lm_head", Precision.W8),
        ("w4", "vision_encoder.tower.vision_model.encoder.layers.0.mlp.fc1", Precision.W8),
        ("w4", "vision_encoder.projector.fc2", Precision.W8),
        ("w4", "token_embedding.embedding", Precision.W8),
        ("w8", "text_decoder.layers.0.self_attn.q_proj", Precision.W8),
        ("w8", "text_decoder.lm_head", Precision.W8),
        ("fp32", "text_decoder.layers.0.self_attn.q_proj", Precision.FP32),
        ("fp32", "token_embedding.embedding", Precision.FP32),
        ("w4", "some_other_method.linear", None),
    ],
)
def test_preset_rules_give_each_layer_its_precision(recipe: str, fqn: str, expected: Precision | None) -> None:
    assert build_recipe(PRESETS[recipe], **METHODS).requested(fqn) is expected


def test_user_rules_come_first_and_first_match_wins() -> None:
    cfg = QuantConfig(rules=("text_decoder.layers.0.*=fp32", "text_decoder.layers.*=w8"))
    recipe = build_recipe(cfg, **METHODS)
    assert recipe.requested("text_decoder.layers.0.mlp.up_proj") is Precision.FP32
    assert recipe.requested("text_decoder.layers.1.mlp.up_proj") is Precision.W8
    assert recipe.requested("text_decoder.lm_head") is Precision.W8  # the default lm_head rule still applies


def test_lm_head_may_be_4bit_when_asked() -> None:
    recipe = build_recipe(QuantConfig(lm_head=Precision.W4), **METHODS)
    assert recipe.requested("text_decoder.lm_head") is Precision.W4


@pytest.mark.parametrize(
    ("rule", "words"),
    [("no-equals-sign", "PATTERN=PRECISION"), ("x.*=w3", "'w3'"), ("=w8", "PATTERN=PRECISION")],
)
def test_bad_rule_is_a_config_error_naming_it(rule: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        QuantConfig(rules=(rule,))


@pytest.mark.parametrize("group", [0, 24, -32])
def test_group_size_must_be_a_power_of_two(group: int) -> None:
    with pytest.raises(ConfigError, match=f"group_size must be a power of two.*{group}"):
        QuantConfig(group_size=group)


def test_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="no precision preset 'w5'; known: w4, w8, fp32"):
        preset("w5")


@pytest.mark.parametrize(
    ("requested", "kind", "width", "expected", "fallback"),
    [
        (Precision.W4, LayerKind.LINEAR, 64, Precision.W4, False),
        (Precision.W4, LayerKind.LINEAR, 200, Precision.W8, True),  # 200 % 32 != 0
        (Precision.W4, LayerKind.EMBEDDING, 48, Precision.W8, True),
        (Precision.W8, LayerKind.LINEAR, 200, Precision.W8, False),  # per-channel needs no divisor
        (Precision.FP32, LayerKind.LINEAR, 7, Precision.FP32, False),
    ],
)
def test_group_fallback_only_for_w4_layers_the_group_does_not_divide(
    requested: Precision, kind: LayerKind, width: int, expected: Precision, fallback: bool
) -> None:
    final, reason = effective_precision(requested, kind, width, 32)
    assert final is expected
    assert bool(reason) is fallback
    if fallback:
        assert str(width) in reason and "32" in reason


def test_torchao_configs_map_the_vocabulary() -> None:
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig, IntxWeightOnlyConfig
    from torchao.quantization.granularity import PerAxis, PerGroup

    assert torchao_config(Precision.FP32, LayerKind.LINEAR, 32) is None
    w4 = torchao_config(Precision.W4, LayerKind.LINEAR, 64)
    assert isinstance(w4, Int8DynamicActivationIntxWeightConfig)
    assert w4.weight_dtype == torch.int4 and w4.weight_granularity == PerGroup(64)
    w8 = torchao_config(Precision.W8, LayerKind.LINEAR, 64)
    assert w8.weight_dtype == torch.int8 and w8.weight_granularity == PerAxis(0)
    emb = torchao_config(Precision.W8, LayerKind.EMBEDDING, 32)
    assert isinstance(emb, IntxWeightOnlyConfig) and emb.weight_dtype == torch.int8
