"""The export-only ``text_decoder``: the eager decoder's own weights over ExecuTorch's KV-cache ops.

The eager :class:`~mobile_mllm.model.reference.modules.StaticCacheDecoder` runs HF's layers
over a masked full-length cache, which is right on the host but slow on a phone. This module
reuses the very same submodules (projections, norms, MLPs, output head) and replaces only
attention: RoPE from a precomputed table, ``llama.update_cache`` to write this call's
positions into a ``[1, max_seq_len, kv_heads, head_dim]`` buffer, and ``llama.custom_sdpa``
for causal attention over positions ``0 .. start_pos+T-1`` (GQA handled by the op). Parity
with the eager decoder is tested, so both are the same model.

Deliberately not here: quantization (``quant/``), lowering (``program.py``).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from mobile_mllm.errors import UnsupportedModelError

logger = logging.getLogger(__name__)

__all__ = ["KVCacheDecoder", "SUPPORTED_LAYERS", "build_kv_decoder"]

SUPPORTED_LAYERS: tuple[str, ...] = ("LlamaDecoderLayer", "Qwen2DecoderLayer")
"""HF decoder-layer classes whose attention this module knows how to replace."""


def _load_custom_ops() -> None:
    """Register ``llama.update_cache``/``llama.custom_sdpa`` for tracing (the AOT library)."""
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class _CacheAttention(nn.Module):
    """One layer's attention over a custom-op KV cache, reusing the HF layer's projections."""

    def __init__(self, attn: nn.Module, *, num_heads: int, num_kv_heads: int, head_dim: int, max_seq_len: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = attn.q_proj, attn.k_proj, attn.v_proj, attn.o_proj
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        shape = (1, max_seq_len, num_kv_heads, head_dim)
        self.register_buffer("k_cache", torch.zeros(shape), persistent=False)
        self.register_buffer("v_cache", torch.zeros(shape), persistent=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int) -> torch.Tensor:
        length = x.shape[1]
        q = self.q_proj(x).view(1, length, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(1, length, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x).view(1, length, self.num_kv_heads, self.head_dim)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        torch.ops.llama.update_cache(k, self.k_cache, start)
        torch.ops.llama.update_cache(v, self.v_cache, start)
        out = torch.ops.llama.custom_sdpa(q, self.k_cache, self.v_cache, start, None, 0, True)
        return self.o_proj(out.reshape(1, length, self.num_heads * self.head_dim))


class _Block(nn.Module):
    def __init__(self, layer: nn.Module, attention: _CacheAttention) -> None:
        super().__init__()
        self.input_layernorm = layer.input_layernorm
        self.self_attn = attention
        self.post_attention_layernorm = layer.post_attention_layernorm
        self.mlp = layer.mlp

    def forward(self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int) -> torch.Tensor:
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, start)
        return h + self.mlp(self.post_attention_layernorm(h))


class KVCacheDecoder(nn.Module):
    """``(embeds [1, T, D], start_pos [1] int64) -> logits [1, V]`` of the last position.

    Args:
        layers (list[nn.Module]): HF Llama/Qwen2 decoder layers (their submodules are reused).
        norm (nn.Module): the final norm.
        lm_head (nn.Linear): the output head.
        rotary_emb (nn.Module): HF rotary embedding (called once to build the cos/sin table).
        max_seq_len (int): KV-cache positions.
    """

    def __init__(
        self, *, layers: list[nn.Module], norm: nn.Module, lm_head: nn.Module, rotary_emb: nn.Module, max_seq_len: int
    ) -> None:
        super().__init__()
        _load_custom_ops()
        blocks = []
        for i, layer in enumerate(layers):
            if type(layer).__name__ not in SUPPORTED_LAYERS:
                raise UnsupportedModelError(
                    f"text_decoder layer {i} is a {type(layer).__name__}; the exporter supports "
                    f"{', '.join(SUPPORTED_LAYERS)}"
                )
            cfg = layer.self_attn.config
            head_dim = getattr(layer.self_attn, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
            attention = _CacheAttention(
                layer.self_attn,
                num_heads=cfg.num_attention_heads,
                num_kv_heads=cfg.num_key_value_heads,
                head_dim=head_dim,
                max_seq_len=max_seq_len,
            )
            blocks.append(_Block(layer, attention))
        self.layers = nn.ModuleList(blocks)
        self.norm = norm
        self.lm_head = lm_head
        self.max_seq_len = max_seq_len
        probe = torch.zeros(1, dtype=lm_head.weight.dtype)
        with torch.no_grad():
            cos, sin = rotary_emb(probe, position_ids=torch.arange(max_seq_len).unsqueeze(0))
        # [max_seq_len, 1, head_dim]: narrowed to this call's positions, broadcast over heads.
        self.register_buffer("rope_cos", cos[0].unsqueeze(1).float().contiguous(), persistent=False)
        self.register_buffer("rope_sin", sin[0].unsqueeze(1).float().contiguous(), persistent=False)

    def reset_cache(self) -> None:
        """Zero every KV-cache buffer (the causal op never reads past the current position anyway)."""
        for block in self.layers:
            block.self_attn.k_cache.zero_()
            block.self_attn.v_cache.zero_()

    def forward(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Run positions ``start_pos[0] .. start_pos[0]+T-1``; the caller keeps them below ``max_seq_len``."""
        length = embeds.shape[1]
        start = start_pos[0].item()
        torch._check(start >= 0)
        torch._check(start + length <= self.max_seq_len)
        cos = self.rope_cos.narrow(0, start, length)
        sin = self.rope_sin.narrow(0, start, length)
        h = embeds
        for block in self.layers:
            h = block(h, cos, sin, start)
        return self.lm_head(self.norm(h[:, -1, :]))


def build_kv_decoder(text_decoder: nn.Module, max_seq_len: int) -> KVCacheDecoder:
    """Build the export decoder over an eager ``text_decoder``'s submodules (shared, not copied).

    Args:
        text_decoder (nn.Module): an eager decoder exposing HF ``layers``, ``norm``,
            ``rotary_emb`` and ``lm_head`` (the reference family's ``StaticCacheDecoder``).
        max_seq_len (int): KV-cache positions of the exported program.

    Raises:
        UnsupportedModelError: the decoder lacks one of those parts or has unsupported layers.
    """
    missing = [name for name in ("layers", "norm", "rotary_emb", "lm_head") if not hasattr(text_decoder, name)]
    if missing:
        raise UnsupportedModelError(
            f"cannot export text_decoder {type(text_decoder).__name__}: it has no {', '.join(missing)} "
            "(the exporter needs HF Llama/Qwen2 layers, norm, rotary_emb and lm_head)"
        )
    return KVCacheDecoder(
        layers=list(text_decoder.layers),
        norm=text_decoder.norm,
        lm_head=text_decoder.lm_head,
        rotary_emb=text_decoder.rotary_emb,
        max_seq_len=max_seq_len,
    )
