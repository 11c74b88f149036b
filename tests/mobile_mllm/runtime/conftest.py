"""Fixtures of the runtime tests: a noise picture and a call-counting backend (the tiny model is in tests/conftest.py)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from mobile_mllm.runtime.eager import EagerMethods


@pytest.fixture(scope="session")
def picture() -> np.ndarray:
    """A 180x100 (wide) RGB image of seeded noise: the tiny preset tiles it 3x2 plus a thumbnail."""
    return (np.random.default_rng(0).random((100, 180, 3)) * 255).astype(np.uint8)


class CountingMethods:
    """Wraps a backend and counts each method's calls (and the positions text_decoder saw)."""

    def __init__(self, inner: EagerMethods) -> None:
        self.inner = inner
        self.max_context_len = inner.max_context_len
        self.max_tile_batch = inner.max_tile_batch
        self.prefill_chunk = inner.prefill_chunk
        self.calls: Counter[str] = Counter()
        self.tile_batches: list[int] = []
        self.decoder_positions: list[tuple[int, int]] = []

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        self.calls["vision_encoder"] += 1
        self.tile_batches.append(tiles.shape[0])
        return self.inner.vision_encoder(tiles)

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        self.calls["token_embedding"] += 1
        return self.inner.token_embedding(tokens)

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        self.calls["text_decoder"] += 1
        self.decoder_positions.append((int(start_pos[0]), embeds.shape[1]))
        return self.inner.text_decoder(embeds, start_pos)


@pytest.fixture()
def counting():
    """The :class:`CountingMethods` class (a fixture, so test modules need not import conftest)."""
    return CountingMethods
