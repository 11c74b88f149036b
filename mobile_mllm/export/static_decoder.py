"""Static-shape decoder shards for an NPU: the KV cache, RoPE rows and mask are inputs, new keys/values outputs.

An NPU compiler (MediaTek's NeuroPilot) needs every shape fixed, so the decoder is exported
twice per shard, at ``T = prompt_len`` positions (the prompt method, 128 by default) and at
``T = 1`` (the generate method), over the same weights. A shard holds a run of layers; the first
takes the token/image embeddings, the last ends with the final norm and the output head. Per
call::

    hidden [1, T, D], rope_cos [T, head_dim], rope_sin [T, head_dim], mask [1, 1, T, C + T],
    k_0, v_0, k_1, v_1, ... [1, kv_heads, C, head_dim]   (C = max_context_len, one pair per layer)
    -> out [1, T, D] (logits [1, T, V] in the last shard), new_k_0, new_v_0, ... [1, kv_heads, T, head_dim]

Attention runs over the cache's ``C`` positions followed by the call's ``T`` new ones; which of
them a query may see is entirely the mask's business (0 or :data:`MASK_VALUE`), so the graph
has no data-dependent control flow. The runner (``runtime/static.py``) owns the cache, writes
the returned keys/values at their positions, and builds the RoPE rows and the mask: a padded
prompt chunk's padding rows are masked out of every valid query's view by causality alone.

Layers keep HF's names under their global index (``layers.5.self_attn.q_proj``), so quantization
rules and reports name the same layers as the eager model does. Deliberately not here: the
runner (``runtime/static.py``), quantization (``quant/pt2e.py``), the backend (``backends/mediatek.py``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from mobile_mllm.export.decoder import _rotate_half  # the same RoPE convention as the CPU decoder

if TYPE_CHECKING:
    from mobile_mllm.model.parts import DecoderLayerParts, DecoderParts

__all__ = ["MASK_VALUE", "StaticDecoderShard", "build_shards", "shard_layers"]

MASK_VALUE = -1000.0
"""What the mask adds to a score a query must not see: far enough below any real score that its
softmax weight is 0 in float32 and float16 (an NPU may run the add in fp16), and no further: the
NPU recipe quantizes the mask input and ``scores + mask`` to int16 per tensor, whose step is
``|MASK_VALUE| / 32767`` (0.03 here; -30000 made it 0.9 and doubled the tiny model's logit error,
bench/RESULTS.md)."""


class _StaticAttention(nn.Module):
    """One layer's attention over ``[cache ; new]`` keys/values, reusing the layer's projections."""

    def __init__(self, layer: DecoderLayerParts, *, num_heads: int, num_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj
        self.num_heads, self.num_kv_heads, self.head_dim = num_heads, num_kv_heads, head_dim
        self.scale = 1.0 / math.sqrt(head_dim)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
        k_cache: torch.Tensor, v_cache: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        length = x.shape[1]
        q = self.q_proj(x).view(1, length, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(1, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(1, length, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        keys = torch.cat([k_cache, k], dim=2)
        values = torch.cat([v_cache, v], dim=2)
        groups = self.num_heads // self.num_kv_heads
        if groups > 1:  # grouped-query attention: each key/value head serves `groups` query heads
            keys, values = (
                t.unsqueeze(2).expand(1, self.num_kv_heads, groups, t.shape[2], self.head_dim)
                .reshape(1, self.num_heads, t.shape[2], self.head_dim)
                for t in (keys, values)
            )
        scores = torch.matmul(q, keys.transpose(2, 3)) * self.scale + mask
        out = torch.matmul(torch.softmax(scores, dim=-1), values)
        out = out.transpose(1, 2).reshape(1, length, self.num_heads * self.head_dim)
        return self.o_proj(out), k, v


class _StaticBlock(nn.Module):
    def __init__(self, layer: DecoderLayerParts, attention: _StaticAttention) -> None:
        super().__init__()
        self.input_layernorm = layer.attention_norm
        self.self_attn = attention
        self.post_attention_layernorm = layer.mlp_norm
        self.mlp = layer.mlp

    def forward(
        self, h: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
        k_cache: torch.Tensor, v_cache: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        attn, k, v = self.self_attn(self.input_layernorm(h), cos, sin, mask, k_cache, v_cache)
        h = h + attn
        return h + self.mlp(self.post_attention_layernorm(h)), k, v


class StaticDecoderShard(nn.Module):
    """Layers ``[first, last)`` of the decoder with explicit KV inputs/outputs (see the module docstring).

    Args:
        parts (DecoderParts): the family's decoder parts (shared, not copied).
        first (int): index of the shard's first layer.
        last (int): one past its last layer.
        head (bool): end with the final norm and the output head (the last shard).
    """

    def __init__(self, parts: DecoderParts, first: int, last: int, *, head: bool) -> None:
        super().__init__()
        self.first, self.last = first, last
        self.layers = nn.ModuleDict({
            str(i): _StaticBlock(parts.layers[i], _StaticAttention(
                parts.layers[i], num_heads=parts.num_heads, num_kv_heads=parts.num_kv_heads, head_dim=parts.head_dim,
            ))
            for i in range(first, last)
        })
        self.head = head
        if head:
            self.norm = parts.norm
            self.lm_head = parts.lm_head

    def forward(
        self, hidden: torch.Tensor, rope_cos: torch.Tensor, rope_sin: torch.Tensor, mask: torch.Tensor,
        *caches: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        """Run the shard's layers on ``T`` positions; return the output and each layer's new keys and values."""
        new: list[torch.Tensor] = []
        h = hidden
        for j, block in enumerate(self.layers.values()):
            h, k, v = block(h, rope_cos, rope_sin, mask, caches[2 * j], caches[2 * j + 1])
            new += [k, v]
        if self.head:
            h = self.lm_head(self.norm(h))
        return (h, *new)


def shard_layers(num_layers: int, layers_per_shard: int) -> list[tuple[int, int]]:
    """Split ``num_layers`` into consecutive ``[first, last)`` runs of at most ``layers_per_shard``.

    Example:
        >>> shard_layers(5, 2)
        [(0, 2), (2, 4), (4, 5)]
    """
    step = max(1, min(layers_per_shard, num_layers)) if layers_per_shard else num_layers
    return [(i, min(i + step, num_layers)) for i in range(0, num_layers, step)]


def build_shards(parts: DecoderParts, layers_per_shard: int) -> list[StaticDecoderShard]:
    """The decoder as shards of ``layers_per_shard`` layers (0: one shard), the last with the head."""
    runs = shard_layers(len(parts.layers), layers_per_shard)
    return [StaticDecoderShard(parts, a, b, head=i == len(runs) - 1).eval() for i, (a, b) in enumerate(runs)]
