"""``InternVLConfig`` builders: every architectural number keyword-only, and the published variants.

The family loads real checkpoints with transformers, so a "model" here is an ``InternVLConfig``;
:func:`internvl_config` takes every number, :func:`internvl3_1b` fixes them to the values of
the published ``OpenGVLab/InternVL3-1B-hf`` ``config.json`` (InternViT-300M-448px + Qwen2.5-0.5B).
Benchmarks build random-weight models of the real size from it; nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

__all__ = ["internvl3_1b", "internvl_config"]


def internvl_config(
    *,
    vision_hidden_size: int,
    vision_layers: int,
    vision_heads: int,
    vision_intermediate_size: int,
    tile_px: int,
    patch_px: int,
    vision_attention_bias: bool,
    text_hidden_size: int,
    text_layers: int,
    text_heads: int,
    text_kv_heads: int,
    text_intermediate_size: int,
    vocab_size: int,
    rope_theta: float,
    max_position_embeddings: int,
    tie_word_embeddings: bool,
    image_token_id: int,
) -> Any:
    """An ``InternVLConfig`` (InternViT + 2x2 pixel shuffle + MLP projector + Qwen2 decoder).

    Returns:
        transformers.InternVLConfig: with ``image_seq_length`` = tokens per tile after the shuffle.
    """
    from transformers import InternVLConfig

    per_side = tile_px // patch_px
    return InternVLConfig(
        vision_config=dict(
            hidden_size=vision_hidden_size, num_hidden_layers=vision_layers, num_attention_heads=vision_heads,
            intermediate_size=vision_intermediate_size, image_size=tile_px, patch_size=patch_px,
            attention_bias=vision_attention_bias, norm_type="layer_norm", layer_norm_eps=1e-6, hidden_act="gelu",
            use_qk_norm=False, layer_scale_init_value=0.1, use_mean_pooling=True,
        ),
        text_config=dict(
            model_type="qwen2", vocab_size=vocab_size, hidden_size=text_hidden_size, num_hidden_layers=text_layers,
            num_attention_heads=text_heads, num_key_value_heads=text_kv_heads, intermediate_size=text_intermediate_size,
            max_position_embeddings=max_position_embeddings, rms_norm_eps=1e-6,
            rope_parameters={"rope_type": "default", "rope_theta": rope_theta},
            tie_word_embeddings=tie_word_embeddings,
        ),
        image_token_id=image_token_id,
        image_seq_length=(per_side // 2) ** 2,
        downsample_ratio=0.5,
        projector_hidden_act="gelu",
        tie_word_embeddings=tie_word_embeddings,
    )


def internvl3_1b(*, image_token_id: int = 151667) -> Any:
    """InternVL3-1B: InternViT-300M-448px (24 x 1024, 16 heads) + Qwen2.5-0.5B (24 x 896, 14/2 heads), 256 tokens/tile.

    Args:
        image_token_id (int): id of ``<IMG_CONTEXT>`` in the tokenizer used with it. Default 151667 (the checkpoint's).
    """
    return internvl_config(
        vision_hidden_size=1024, vision_layers=24, vision_heads=16, vision_intermediate_size=4096,
        tile_px=448, patch_px=14, vision_attention_bias=True,
        text_hidden_size=896, text_layers=24, text_heads=14, text_kv_heads=2, text_intermediate_size=4864,
        vocab_size=151674, rope_theta=1_000_000.0, max_position_embeddings=32768, tie_word_embeddings=False,
        image_token_id=image_token_id,
    )
