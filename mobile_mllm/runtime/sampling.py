"""Next-token choice from logits: greedy, temperature, top-k, top-p. Pure functions on tensors.

Kept apart from the loop (as gpt-fast keeps ``logits_to_probs``/``sample`` apart from
``decode_one_token``) so the eager and ``.pte`` backends, and the tests, share one sampler.
Deliberately not here: stopping rules, repetition penalties, beam search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobile_mllm.errors import ConfigError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["GenerationConfig", "logits_to_probs", "make_generator", "sample"]


@dataclass(frozen=True)
class GenerationConfig:
    """How answers are generated (sampling and length)."""

    max_new_tokens: int = 128
    """Largest number of tokens generated per answer (the stop token included)."""
    temperature: float = 0.0
    """Softmax temperature; 0 means greedy (argmax)."""
    top_p: float = 1.0
    """Nucleus sampling: keep the most likely tokens whose probabilities add up to top_p (1 keeps all)."""
    top_k: int = 0
    """Keep only the top_k most likely tokens before top_p (0 keeps all)."""
    seed: int = 0
    """Seed of the sampling generator, so a sampled answer can be reproduced."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"generation.max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"generation.temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"generation.top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ConfigError(f"generation.top_k must be >= 0 (0 = no limit), got {self.top_k}")


def make_generator(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed``; one per session, so answers are reproducible."""
    import torch

    return torch.Generator(device="cpu").manual_seed(seed)


def logits_to_probs(logits: torch.Tensor, *, temperature: float, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Turn one position's logits into the distribution to sample from.

    Temperature scales the logits, top-k keeps the ``top_k`` largest, top-p then keeps the
    smallest set of most likely tokens whose probability reaches ``top_p`` (the token that
    crosses the threshold is kept). Everything else gets probability 0.

    Args:
        logits (torch.Tensor): ``[V]`` (or ``[1, V]``) logits of the next token.
        temperature (float): > 0.
        top_k (int): tokens kept by rank; 0 keeps all. Default 0.
        top_p (float): cumulative probability kept, in (0, 1]. Default 1.0.

    Returns:
        torch.Tensor: ``[V]`` float32 probabilities summing to 1.

    Example:
        >>> import torch
        >>> logits_to_probs(torch.log(torch.tensor([0.5, 0.3, 0.2])), temperature=1.0, top_p=0.7)
        tensor([0.6250, 0.3750, 0.0000])
    """
    import torch

    if temperature <= 0:
        raise ConfigError(f"temperature must be > 0 to build a distribution, got {temperature} (0 means greedy)")
    scores = logits.reshape(-1).float() / temperature
    if 0 < top_k < scores.numel():
        kth = torch.topk(scores, top_k).values[-1]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    probs = torch.softmax(scores, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True, stable=True)
        before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass of strictly better tokens
        drop_sorted = before >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum()
    return probs


def sample(
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
) -> int:
    """Pick the next token id: argmax when ``temperature == 0``, else a draw from :func:`logits_to_probs`.

    Args:
        logits (torch.Tensor): ``[V]`` or ``[1, V]`` logits of the next token.
        temperature (float): 0 for greedy. Default 0.0.
        top_k (int): see :func:`logits_to_probs`. Default 0.
        top_p (float): see :func:`logits_to_probs`. Default 1.0.
        generator (torch.Generator | None): source of randomness (seeded by the session).

    Returns:
        int: the chosen token id.

    Example:
        >>> import torch
        >>> sample(torch.tensor([0.1, 2.0, -1.0]))
        1
    """
    import torch

    if temperature == 0:
        return int(torch.argmax(logits.reshape(-1)).item())
    probs = logits_to_probs(logits, temperature=temperature, top_k=top_k, top_p=top_p)
    return int(torch.multinomial(probs, 1, generator=generator).item())
