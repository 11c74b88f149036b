"""The pieces of a family's language decoder that an export backend rebuilds its decoder from.

A backend rarely exports the eager ``text_decoder`` as it is: XNNPACK wants attention over
ExecuTorch's KV-cache custom ops, a static-shape NPU wants the cache as explicit inputs and
outputs. So a family adapter hands over *parts* (the embedding, each layer's projections, norms
and MLP, the RoPE tables, the output head) and the backend assembles them into the decoder its
runtime needs; a new family is one adapter method, not an edit in ``export/``. The parts are
the eager model's own modules (shared, not copied), so a rebuilt decoder computes the same
function and quantization rules see the same weights.

Deliberately not here: how a family finds its parts (``model/<family>/adapter.py``,
``hf_decoder.py``), how a backend assembles them (``export/decoder.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["DecoderLayerParts", "DecoderParts", "RopeTables"]

RopeTables = Callable[[int], "tuple[torch.Tensor, torch.Tensor]"]
"""``rope_tables(num_positions) -> (cos, sin)``, each float32 ``[num_positions, head_dim]``, in the
rotate-half convention (``q * cos + rotate_half(q) * sin``, halves ``[:d/2]``, ``[d/2:]``)."""


@dataclass(frozen=True)
class DecoderLayerParts:
    """One pre-norm transformer layer: ``h += o(attn(q, k, v)(attention_norm(h))); h += mlp(mlp_norm(h))``.

    The projections map ``[.., D]`` to ``[.., heads * head_dim]`` (q) and ``[.., kv_heads * head_dim]``
    (k, v), and back (o); biases, if any, live inside them.
    """

    q_proj: nn.Module
    k_proj: nn.Module
    v_proj: nn.Module
    o_proj: nn.Module
    attention_norm: nn.Module
    """Norm before attention (HF: ``input_layernorm``)."""
    mlp_norm: nn.Module
    """Norm before the MLP (HF: ``post_attention_layernorm``)."""
    mlp: nn.Module
    """``[.., D] -> [.., D]``."""


@dataclass(frozen=True)
class DecoderParts:
    """Everything a backend needs to rebuild a family's decoder.

    Attributes:
        embedding (nn.Module): token ids ``[1, T]`` -> ``[1, T, D]`` (the ``token_embedding`` lookup).
        layers (tuple[DecoderLayerParts, ...]): in order.
        norm (nn.Module): the final norm.
        lm_head (nn.Module): ``[.., D] -> [.., V]``.
        num_heads (int): query heads per layer.
        num_kv_heads (int): key/value heads per layer (grouped-query attention when fewer).
        head_dim (int): width of one head.
        rope_tables (RopeTables): the rotary-embedding tables for the first N positions.
    """

    embedding: nn.Module
    layers: tuple[DecoderLayerParts, ...]
    norm: nn.Module
    lm_head: nn.Module
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_tables: RopeTables
