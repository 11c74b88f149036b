"""Presets: tiny builds with the size the meta-device count predicts; big presets have the documented sizes."""

from __future__ import annotations

import pytest

from mobile_mllm.errors import UnsupportedModelError
from mobile_mllm.model.reference.builders import build_reference, count_parameters
from mobile_mllm.model.reference.config import ReferenceConfig, default_vision_config
from mobile_mllm.model.reference.presets import PRESETS, preset_config


def test_tiny_builds_with_the_parameters_the_meta_count_predicts() -> None:
    """Building for real and counting on the meta device agree (no timing: speed is bench/'s business)."""
    import torch

    cfg = preset_config("tiny")
    mods = build_reference(cfg, max_context_len=128, init=True)
    params = {id(p): p.numel() for m in (mods.vision_encoder, mods.token_embedding, mods.text_decoder)
              for p in m.parameters()}
    assert sum(params.values()) == count_parameters(cfg)["total"]
    assert mods.text_decoder.k_cache_0.shape[2] == 128 and mods.text_decoder.k_cache_0.dtype == torch.float32


@pytest.mark.parametrize(
    ("preset", "low", "high"),
    [("tiny", 0.5e6, 5e6), ("mid", 0.45e9, 0.6e9), ("bluelm-v-3b", 3.0e9, 3.3e9)],
)
def test_parameter_counts_are_in_the_documented_range(preset: str, low: float, high: float) -> None:
    counts = count_parameters(preset_config(preset))
    assert low < counts["total"] < high
    assert counts["total"] == sum(v for k, v in counts.items() if k != "total")


def test_bluelm_decoder_is_2_7b_and_mid_decoder_is_qwen2_0_5b() -> None:
    assert count_parameters(preset_config("bluelm-v-3b"))["decoder"] == 2_714_667_520
    # Qwen2-0.5B: 494,032,768 parameters with tied embeddings
    assert count_parameters(preset_config("mid"))["decoder"] == 494_032_768


def test_decoder_count_matches_a_hand_formula() -> None:
    dec = preset_config("bluelm-v-3b").decoder
    kv = dec.num_kv_heads * dec.head_dim
    per_layer = 2 * dec.hidden_size**2 + 2 * dec.hidden_size * kv + 3 * dec.hidden_size * dec.intermediate_size
    per_layer += 2 * dec.hidden_size  # two RMSNorms
    expected = dec.num_layers * per_layer + 2 * dec.vocab_size * dec.hidden_size + dec.hidden_size
    assert count_parameters(preset_config("bluelm-v-3b"))["decoder"] == expected


@pytest.mark.parametrize(("preset", "tile", "tokens"), [("tiny", 64, 16), ("mid", 384, 144), ("bluelm-v-3b", 384, 196)])
def test_tokens_per_tile_follow_the_downsampler(preset: str, tile: int, tokens: int) -> None:
    cfg: ReferenceConfig = preset_config(preset)
    vision = default_vision_config(cfg)
    assert (vision.tile_size, vision.tokens_per_tile, cfg.tokens_per_tile) == (tile, tokens, tokens)


def test_unknown_preset_lists_the_known_ones() -> None:
    known = ", ".join(sorted(PRESETS))
    assert {"tiny", "mid", "bluelm-v-3b"} <= set(PRESETS)
    with pytest.raises(UnsupportedModelError, match=rf"no reference preset 'bluelm'; known: {known}$"):
        preset_config("bluelm")


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_fits_the_bundled_tokenizer(preset: str) -> None:
    # init-model copies the bundled tokenizer; the loader refuses a vocabulary larger than the embedding
    from mobile_mllm.model.reference.tokenizer import bundled_tokenizer

    assert bundled_tokenizer().get_vocab_size() <= preset_config(preset).decoder.vocab_size
