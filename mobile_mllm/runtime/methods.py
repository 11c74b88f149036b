"""The one interface the session loop runs on: the three contract methods, eager or ``.pte``.

``runtime/eager.py`` wraps a :class:`~mobile_mllm.model.adapter.MultimodalModel`'s modules,
``runtime/pte.py`` wraps an ExecuTorch program's methods; ``runtime/session.py`` sees only
this protocol, so an eager-vs-program parity test compares exactly one thing. The
:class:`Backend` a model directory opens to and the :class:`RuntimeConfig` sizes live here
too, beside the interface they carry, so that ``session.py`` and ``pte.py`` need not import
each other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from mobile_mllm.errors import ConfigError, ContextOverflowError

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.vision.config import VisionConfig

__all__ = ["Backend", "ModelMethods", "RuntimeConfig", "check_cache_fits"]


class ModelMethods(Protocol):
    """The contract methods plus the static limits a program was built with."""

    max_context_len: int
    """KV-cache positions (prompt + image tokens + generated tokens)."""
    max_tile_batch: int
    """Largest batch of tiles ``vision_encoder`` accepts in one call."""
    prefill_chunk: int
    """Positions per ``text_decoder`` (and ``token_embedding``) call while prefilling; at most what one call accepts."""

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


def check_cache_fits(start: int, length: int, max_context_len: int) -> None:
    """Refuse a ``text_decoder`` call whose positions ``start .. start+length-1`` leave the KV cache.

    Every :class:`ModelMethods` checks this before running, so an over-long conversation fails
    with the same error whether eager, a ``.pte`` or static-shape graphs run it.

    Raises:
        ContextOverflowError: a negative start or a position at or past ``max_context_len``.
    """
    if start < 0 or start + length > max_context_len:
        raise ContextOverflowError(
            f"positions {start}..{start + length - 1} do not fit the KV cache of {max_context_len} positions"
        )


@dataclass(frozen=True)
class RuntimeConfig:
    """Static sizes of the runtime (an exported program fixes them; eager mode follows them)."""

    max_context_len: int = 2048
    """KV-cache positions: prompt, image tokens and answers of all turns together."""
    tile_batch: int = 4
    """Tiles per vision_encoder call (9 tiles run as 4 + 4 + 1)."""
    prefill_chunk: int = 128
    """Positions per text_decoder call while prefilling."""

    def __post_init__(self) -> None:
        for name in ("max_context_len", "tile_batch", "prefill_chunk"):
            if getattr(self, name) < 1:
                raise ConfigError(f"runtime.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Backend:
    """What a model directory opens to: the methods plus everything needed to prompt them."""

    methods: ModelMethods
    tokenizer: Any
    """A ``tokenizers.Tokenizer`` (``encode``, ``decode``, ``token_to_id``)."""
    prompt: PromptFormat
    vision: VisionConfig
    eos_ids: tuple[int, ...]
    model_load_start_ms: float = 0.0
    model_load_end_ms: float = 0.0
