"""The one interface the session loop runs on: the three contract methods, eager or ``.pte``.

``runtime/eager.py`` wraps a :class:`~mobile_mllm.model.adapter.MultimodalModel`'s modules,
``runtime/pte.py`` wraps an ExecuTorch program's methods; ``runtime/session.py`` sees only
this protocol, so an eager-vs-program parity test compares exactly one thing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch


class ModelMethods(Protocol):
    """The contract methods plus the static limits a program was built with."""

    max_seq_len: int
    """KV-cache positions (prompt + image tokens + generated tokens)."""
    max_tile_batch: int
    """Largest batch of tiles ``vision_encoder`` accepts in one call."""
    max_chunk: int
    """Largest number of positions ``text_decoder`` accepts in one call."""

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        """Normalised tiles ``[B, 3, S, S]`` float32 -> image embeddings ``[B, N, D]``."""
        ...

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids ``[1, T]`` int64 -> embeddings ``[1, T, D]``."""
        ...

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        """Embeddings ``[1, T, D]`` at positions ``start_pos .. start_pos+T-1`` -> last-position logits ``[1, V]``.

        Writes those positions into the static KV cache; positions after them are ignored
        (a new turn or a new image simply overwrites from its start position).
        """
        ...
