"""Decoder parts of a transformers Llama/Qwen2 language model (what the reference family wraps).

A family whose decoder is an HF ``LlamaForCausalLM`` or ``Qwen2ForCausalLM`` (layers, final
norm, rotary embedding, output head) gets its :class:`~mobile_mllm.model.parts.DecoderParts`
here; a family with another layer type writes its own adapter method instead. The layer types
are checked with ``isinstance`` against transformers' classes, so an unknown layer is an error
naming it rather than a silently different attention.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mobile_mllm.errors import UnsupportedModelError
from mobile_mllm.model.parts import DecoderLayerParts, DecoderParts

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["hf_decoder_parts", "supported_layer_types"]


def supported_layer_types() -> tuple[type, ...]:
    """The transformers decoder-layer classes whose attention :func:`hf_decoder_parts` understands."""
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    return (LlamaDecoderLayer, Qwen2DecoderLayer)


def hf_decoder_parts(decoder: nn.Module, embedding: nn.Module) -> DecoderParts:
    """The parts of a decoder exposing HF ``layers``, ``norm``, ``rotary_emb`` and ``lm_head``.

    Args:
        decoder (nn.Module): e.g. the reference family's ``StaticCacheDecoder`` (its submodules
            are handed over, not copied).
        embedding (nn.Module): the token-embedding lookup.

    Returns:
        DecoderParts: sharing ``decoder``'s modules.

    Raises:
        UnsupportedModelError: a part is missing or a layer is not Llama/Qwen2.
    """
    missing = [name for name in ("layers", "norm", "rotary_emb", "lm_head") if not hasattr(decoder, name)]
    if missing:
        raise UnsupportedModelError(
            f"cannot export text_decoder {type(decoder).__name__}: it has no {', '.join(missing)} "
            "(the exporter needs HF Llama/Qwen2 layers, norm, rotary_emb and lm_head)"
        )
    supported = supported_layer_types()
    layers = []
    for i, layer in enumerate(decoder.layers):
        if not isinstance(layer, supported):
            raise UnsupportedModelError(
                f"text_decoder layer {i} is a {type(layer).__name__}; the exporter supports "
                f"{', '.join(t.__name__ for t in supported)}"
            )
        attn = layer.self_attn
        layers.append(DecoderLayerParts(
            q_proj=attn.q_proj, k_proj=attn.k_proj, v_proj=attn.v_proj, o_proj=attn.o_proj,
            attention_norm=layer.input_layernorm, mlp_norm=layer.post_attention_layernorm, mlp=layer.mlp,
        ))
    cfg = decoder.layers[0].self_attn.config
    head_dim = getattr(decoder.layers[0].self_attn, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    rotary_emb, dtype = decoder.rotary_emb, decoder.lm_head.weight.dtype

    def rope_tables(num_positions: int) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        probe = torch.zeros(1, dtype=dtype)
        with torch.no_grad():
            cos, sin = rotary_emb(probe, position_ids=torch.arange(num_positions).unsqueeze(0))
        return cos[0].float(), sin[0].float()

    return DecoderParts(
        embedding=embedding,
        layers=tuple(layers),
        norm=decoder.norm,
        lm_head=decoder.lm_head,
        num_heads=cfg.num_attention_heads,
        num_kv_heads=cfg.num_key_value_heads,
        head_dim=head_dim,
        rope_tables=rope_tables,
    )
