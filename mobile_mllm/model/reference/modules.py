"""The three contract modules of the ``reference`` family and the pieces they are made of.

* :class:`TokenDownsampler`: pad the patch grid to even, concatenate each 2x2 block's
  channels (space-to-channel), LayerNorm + Linear (BlueLM-V-3B: 27x27 -> 14x14 tokens).
* :class:`Projector`: Linear -> GELU -> Linear into the decoder's width.
* :class:`VisionEncoder`: SigLIP tower + downsampler + projector, ``[B,3,S,S] -> [B,N,D]``.
* :class:`TokenEmbedding`: ``[1,T] int64 -> [1,T,D]``.
* :class:`StaticCacheDecoder`: the HF decoder's own layers run over a static KV cache held as
  buffers, ``(embeds[1,T,D], start_pos[1]) -> logits[1,V]`` of the last position.

Everything is static-shape friendly: no Python branch depends on a tensor's value, so
``torch.export`` traces one graph for any ``T`` (with ``T`` marked dynamic). Deliberately not
here: building from a config (``builders.py``) and checkpoint I/O (``checkpoint.py``).
"""

from __future__ import annotations

import inspect
import logging

import torch
from torch import nn

from mobile_mllm.errors import UnsupportedModelError

logger = logging.getLogger(__name__)

__all__ = [
    "Projector",
    "StaticCacheDecoder",
    "TokenDownsampler",
    "TokenEmbedding",
    "VisionEncoder",
    "space_to_channel_2x2",
]


def space_to_channel_2x2(x: torch.Tensor, grid_side: int) -> torch.Tensor:
    """Merge each 2x2 block of a square token grid into one token of 4x the channels.

    The grid (row-major, ``grid_side`` tokens across) is first padded with zero tokens on the
    right and bottom to an even side. Each output token concatenates its block's tokens in
    the order top-left, top-right, bottom-left, bottom-right; output tokens are row-major.

    Args:
        x (torch.Tensor): ``[B, grid_side**2, C]`` tokens.
        grid_side (int): tokens per row and per column of the input grid.

    Returns:
        torch.Tensor: ``[B, ceil(grid_side / 2)**2, 4 * C]``.

    Example:
        >>> t = torch.arange(9.0).reshape(1, 9, 1)  # 3x3 grid, values 0..8
        >>> space_to_channel_2x2(t, 3)[0, :, :].tolist()
        [[0.0, 1.0, 3.0, 4.0], [2.0, 0.0, 5.0, 0.0], [6.0, 7.0, 0.0, 0.0], [8.0, 0.0, 0.0, 0.0]]
    """
    batch, _, channels = x.shape
    grid = x.reshape(batch, grid_side, grid_side, channels)
    pad = grid_side % 2
    if pad:  # grid_side is a Python int fixed at build time: no data-dependent branch
        grid = nn.functional.pad(grid, (0, 0, 0, pad, 0, pad))
    half = (grid_side + pad) // 2
    blocks = grid.reshape(batch, half, 2, half, 2, channels).permute(0, 1, 3, 2, 4, 5)
    return blocks.reshape(batch, half * half, 4 * channels)


class TokenDownsampler(nn.Module):
    """BlueLM-V-3B's token downsampler: 2x2 space-to-channel, LayerNorm, Linear.

    Cuts a tile's tokens by 4 (729 -> 196 for SigLIP-so400m at 384) so that a 9-tile image
    fits a 2k context.

    Args:
        grid_side (int): patches per side of the tower's output grid.
        in_dim (int): the tower's width (C).
        out_dim (int): width of each output token.
        eps (float): LayerNorm epsilon. Default 1e-6.
    """

    def __init__(self, *, grid_side: int, in_dim: int, out_dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.grid_side = grid_side
        self.norm = nn.LayerNorm(4 * in_dim, eps=eps)
        self.linear = nn.Linear(4 * in_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, grid_side**2, C] -> [B, ceil(grid_side/2)**2, out_dim]``."""
        return self.linear(self.norm(space_to_channel_2x2(x, self.grid_side)))


class Projector(nn.Module):
    """Two-layer MLP with GELU mapping image tokens into the decoder's embedding space.

    Args:
        in_dim (int): width of the downsampled image tokens.
        hidden_dim (int): width of the hidden layer.
        out_dim (int): the decoder's hidden size.
    """

    def __init__(self, *, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[..., in_dim] -> [..., out_dim]``."""
        return self.fc2(self.act(self.fc1(x)))


class VisionEncoder(nn.Module):
    """``vision_encoder`` contract method: normalised tiles -> decoder-space image embeddings.

    Args:
        tower (nn.Module): a transformers ``SiglipVisionModel`` (its ``last_hidden_state``,
            after the post-LayerNorm, is used).
        downsampler (TokenDownsampler): 2x2 token merge.
        projector (Projector): into the decoder's width.
    """

    def __init__(self, *, tower: nn.Module, downsampler: TokenDownsampler, projector: Projector) -> None:
        super().__init__()
        self.tower = tower
        self.downsampler = downsampler
        self.projector = projector

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        """``tiles [B, 3, S, S]`` (float32 or the model dtype) -> ``[B, N, D]`` in the model dtype."""
        hidden = self.tower(pixel_values=tiles).last_hidden_state
        return self.projector(self.downsampler(hidden))


class TokenEmbedding(nn.Module):
    """``token_embedding`` contract method: token ids -> embeddings.

    Args:
        embedding (nn.Embedding): the decoder's input embedding (shared with the HF model).
    """

    def __init__(self, embedding: nn.Embedding) -> None:
        super().__init__()
        self.embedding = embedding

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens [1, T] int64 -> [1, T, D]``."""
        return self.embedding(tokens)


class _CacheView:
    """What HF attention layers call ``cache.update`` on: writes this call's positions into our buffers.

    HF attention hands over ``(key_states, value_states, layer_idx)`` after rotary embedding;
    we ``index_copy_`` them at ``positions`` into the layer's static buffers and return the
    whole buffers, which the attention mask restricts to positions ``<= query position``.
    """

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], positions: torch.Tensor) -> None:
        self.keys = keys
        self.values = values
        self.positions = positions

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: object, **kwargs: object
    ) -> tuple[torch.Tensor, torch.Tensor]:
        k_cache, v_cache = self.keys[layer_idx], self.values[layer_idx]
        k_cache.index_copy_(2, self.positions, key_states.to(k_cache.dtype))
        v_cache.index_copy_(2, self.positions, value_states.to(v_cache.dtype))
        return k_cache, v_cache


def _cache_keyword(layer: nn.Module) -> str:
    """The keyword an HF decoder layer takes its cache by: ``cache`` (transformers >= 5.2x) or ``past_key_values``.

    Passing the wrong one would not fail: the layer would swallow it in ``**kwargs`` and attend
    to the current chunk only, so we ask the signature instead of guessing.
    """
    params = inspect.signature(type(layer).forward).parameters
    for name in ("cache", "past_key_values"):
        if name in params:
            return name
    raise UnsupportedModelError(
        f"{type(layer).__name__}.forward takes neither 'cache' nor 'past_key_values'; "
        "this transformers version is not supported (tested: 5.17, 5.24)"
    )


class StaticCacheDecoder(nn.Module):
    """``text_decoder`` contract method over the HF causal LM's own layers and a static KV cache.

    The HF model's decoder layers, final norm, rotary embedding and output head are reused
    as they are (so the numbers are HF's); only the cache is ours: two buffers per layer of
    shape ``[1, num_kv_heads, max_context_len, head_dim]``, written at ``start_pos .. start_pos+T-1``.
    Attention is causal over ``0 .. start_pos+T-1`` through an additive mask over all
    ``max_context_len`` positions, so stale entries past the current position are never read and
    a new turn may simply overwrite from its start position.

    Args:
        hf_model (nn.Module): a transformers ``LlamaForCausalLM`` or ``Qwen2ForCausalLM``.
        max_context_len (int): cache positions.
        num_kv_heads (int): key/value heads per layer.
        head_dim (int): width of one head.
    """

    def __init__(self, hf_model: nn.Module, *, max_context_len: int, num_kv_heads: int, head_dim: int) -> None:
        super().__init__()
        self.layers = hf_model.model.layers
        self.norm = hf_model.model.norm
        self.rotary_emb = hf_model.model.rotary_emb
        self.lm_head = hf_model.lm_head
        self.max_context_len = max_context_len
        self._cache_keyword = _cache_keyword(self.layers[0])
        dtype = hf_model.lm_head.weight.dtype
        shape = (1, num_kv_heads, max_context_len, head_dim)
        for i in range(len(self.layers)):
            self.register_buffer(f"k_cache_{i}", torch.zeros(shape, dtype=dtype), persistent=False)
            self.register_buffer(f"v_cache_{i}", torch.zeros(shape, dtype=dtype), persistent=False)

    def kv_caches(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The per-layer key and value cache buffers, in layer order."""
        n = len(self.layers)
        return [getattr(self, f"k_cache_{i}") for i in range(n)], [getattr(self, f"v_cache_{i}") for i in range(n)]

    def reset_cache(self) -> None:
        """Zero the KV cache (never needed for correctness: the mask hides unwritten positions)."""
        for buf in (*self.kv_caches()[0], *self.kv_caches()[1]):
            buf.zero_()

    def forward(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """``embeds [1, T, D]`` at positions ``start_pos[0] ..`` -> logits ``[1, V]`` of the last one.

        The caller keeps ``start_pos + T <= max_context_len`` (the runtime checks before any compute).
        """
        seq_len = embeds.shape[1]
        positions = start_pos.reshape(1).to(torch.long) + torch.arange(seq_len, dtype=torch.long)
        position_ids = positions.unsqueeze(0)
        key_positions = torch.arange(self.max_context_len, dtype=torch.long)
        visible = key_positions.unsqueeze(0) <= positions.unsqueeze(1)  # [T, L]
        dtype = embeds.dtype
        mask = torch.zeros(visible.shape, dtype=dtype).masked_fill(~visible, torch.finfo(dtype).min)
        mask = mask[None, None, :, :]
        keys, values = self.kv_caches()
        cache = _CacheView(keys, values, positions)
        position_embeddings = self.rotary_emb(embeds, position_ids=position_ids)
        hidden = embeds
        for layer in self.layers:
            hidden = layer(
                hidden,
                attention_mask=mask,
                position_ids=position_ids,
                position_embeddings=position_embeddings,
                **{self._cache_keyword: cache},
            )
        last = self.norm(hidden[:, -1, :])
        return self.lm_head(last)
