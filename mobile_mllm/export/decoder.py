"""The XNNPACK backend's ``text_decoder``: a family's decoder parts over ExecuTorch's KV-cache ops.

Built from :class:`~mobile_mllm.model.parts.DecoderParts` (the eager model's own projections,
norms, MLPs and output head, shared, not copied), with attention replaced: RoPE from the
family's precomputed table, ``llama.update_cache`` to write this call's positions into a
``[1, max_context_len, kv_heads, head_dim]`` buffer, and ``llama.custom_sdpa`` for causal
attention over positions ``0 .. start_pos+T-1`` (GQA handled by the op). Parity with the eager
decoder and the HF forward is tested, so all three are the same model. Submodules keep HF's
names (``layers.N.self_attn.q_proj``, ``input_layernorm``, ``mlp``, ``norm``, ``lm_head``), so
quantization rules and reports name the same layers as in the eager model.

Deliberately not here: which family it is (the parts hide that), quantization (``quant/``),
lowering (``backends/xnnpack.py``, ``program.py``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from mobile_mllm.model.parts import DecoderLayerParts, DecoderParts

logger = logging.getLogger(__name__)

__all__ = ["KVCacheDecoder", "build_kv_decoder"]


def _load_custom_ops() -> None:
    """Register ``llama.update_cache``/``llama.custom_sdpa`` for tracing (the AOT library)."""
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _CacheAttention(nn.Module):
    """One layer's attention over a custom-op KV cache, reusing the layer's projections."""

    def __init__(
        self, layer: DecoderLayerParts, *, num_heads: int, num_kv_heads: int, head_dim: int, max_context_len: int
    ) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        shape = (1, max_context_len, num_kv_heads, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape), persistent=False)

    def rotated_qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Queries ``[1, T, heads, head_dim]``, keys and values ``[1, T, kv_heads, head_dim]``; RoPE on q and k."""
        length = x.shape[1]
        q = self.q_proj(x).view(1, length, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(1, length, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(1, length, self.num_kv_heads, self.head_dim)
        return q * cos + _rotate_half(q) * sin, k * cos + _rotate_half(k) * sin, v

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int) -> torch.Tensor:
        length = x.shape[1]
        q, k, v = self.rotated_qkv(x, cos, sin)
        torch.ops.llama.update_cache(k, self.k_cache, start)
        torch.ops.llama.update_cache(v, self.v_cache, start)
        out = torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start, None, 0, True)
        return self.o_proj(out.reshape(1, length, self.num_heads * self.head_dim))


class _Block(nn.Module):
    def __init__(self, layer: DecoderLayerParts, attention: _CacheAttention) -> None:
        super().__init__()
        self.input_layernorm = layer.attention_norm
        self.self_attn = attention
        self.post_attention_layernorm = layer.mlp_norm
        self.mlp = layer.mlp

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, start)
        return h + self.mlp(self.post_attention_layernorm(h))


class KVCacheDecoder(nn.Module):
    """``(embeds [1, T, D], start_pos [1] int64) -> logits [1, V]`` of the last position.

    Args:
        parts (DecoderParts): the family's decoder parts (shared, not copied).
        max_context_len (int): KV-cache positions.
    """

    def __init__(self, parts: DecoderParts, *, max_context_len: int) -> None:
        super().__init__()
        _load_custom_ops()
        self.layers = nn.ModuleList(
            _Block(layer, _CacheAttention(
                layer, num_heads=parts.num_heads, num_kv_heads=parts.num_kv_heads, head_dim=parts.head_dim,
                max_context_len=max_context_len,
            ))
            for layer in parts.layers
        )
        self.norm = parts.norm
        self.lm_head = parts.lm_head
        self.max_context_len = max_context_len
        cos, sin = parts.rope_tables(max_context_len)
        # [max_context_len, 1, head_dim]: narrowed to this call's positions, broadcast over heads.
        self.register_buffer("rope_cos", cos.unsqueeze(1).float().contiguous(), persistent=False)
        self.register_buffer("rope_sin", sin.unsqueeze(1).float().contiguous(), persistent=False)

    def reset_cache(self) -> None:
        """Zero every KV-cache buffer (the causal op never reads past the current position anyway)."""
        for block in self.layers:
            block.self_attn.k_cache.zero_()
            block.self_attn.v_cache.zero_()

    def forward(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Run positions ``start_pos[0] .. start_pos[0]+T-1``; the caller keeps them below ``max_context_len``."""
        length = embeds.shape[1]
        start = start_pos[0].item()
        torch._check(start >= 0)
        torch._check(start + length <= self.max_context_len)
        cos = self.rope_cos.narrow(0, start, length)
        sin = self.rope_sin.narrow(0, start, length)
        h = embeds
        for block in self.layers:
            h = block(h, cos, sin, start)
        return self.lm_head(self.norm(h[:, -1, :]))


def build_kv_decoder(parts: DecoderParts, max_context_len: int) -> KVCacheDecoder:
    """Build the export decoder over a family's decoder parts (shared, not copied).

    Args:
        parts (DecoderParts): from ``mobile_mllm.model.registry.decoder_parts(model)``.
        max_context_len (int): KV-cache positions of the exported program.
    """
    return KVCacheDecoder(parts, max_context_len=max_context_len)
