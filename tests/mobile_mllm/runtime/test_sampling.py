"""Sampling on hand-made logits: the kept sets are computed by hand, not by the code under test."""

from __future__ import annotations

import math

import pytest
import torch

from mobile_mllm.errors import ConfigError
from mobile_mllm.runtime.sampling import GenerationConfig, logits_to_probs, make_generator, sample

PROBS = [0.05, 0.4, 0.1, 0.3, 0.15]  # sorted: 1 (0.4), 3 (0.3), 4 (0.15), 2 (0.1), 0 (0.05)
LOGITS = torch.log(torch.tensor(PROBS))


def test_greedy_is_argmax() -> None:
    assert sample(LOGITS) == 1
    assert sample(torch.tensor([[3.0, -1.0, 7.5, 7.4]])) == 2


@pytest.mark.parametrize(
    ("top_p", "kept"),
    [
        (0.4, {1}),  # 0.4 alone reaches 0.4
        (0.41, {1, 3}),  # needs the second token
        (0.7, {1, 3}),  # 0.4 + 0.3 = 0.7 reaches it exactly
        (0.71, {1, 3, 4}),
        (0.9, {1, 3, 4, 2}),
        (1.0, {0, 1, 2, 3, 4}),
    ],
)
def test_top_p_keeps_smallest_set_reaching_p(top_p: float, kept: set[int]) -> None:
    probs = logits_to_probs(LOGITS, temperature=1.0, top_p=top_p)
    assert {i for i, p in enumerate(probs.tolist()) if p > 0} == kept
    mass = sum(PROBS[i] for i in kept)
    for i in kept:
        assert probs[i].item() == pytest.approx(PROBS[i] / mass, rel=1e-5)


def test_top_k_then_top_p() -> None:
    probs = logits_to_probs(LOGITS, temperature=1.0, top_k=2)
    assert probs.tolist() == pytest.approx([0, 0.4 / 0.7, 0, 0.3 / 0.7, 0], rel=1e-5)
    probs = logits_to_probs(LOGITS, temperature=1.0, top_k=3, top_p=0.5)  # among {1,3,4}: 0.4/0.85 < 0.5
    assert {i for i, p in enumerate(probs.tolist()) if p > 0} == {1, 3}


def test_temperature_scales_logits() -> None:
    logits = torch.tensor([0.0, 1.0])
    probs = logits_to_probs(logits, temperature=0.5)
    expected = math.exp(2) / (1 + math.exp(2))
    assert probs[1].item() == pytest.approx(expected, rel=1e-6)


def test_seeded_sampling_is_reproducible_and_respects_top_p() -> None:
    draws_a = [sample(LOGITS, temperature=1.0, top_p=0.71, generator=g) for g in [make_generator(7)] for _ in range(200)]
    gen = make_generator(7)
    draws_b = [sample(LOGITS, temperature=1.0, top_p=0.71, generator=gen) for _ in range(200)]
    assert draws_a == draws_b
    assert set(draws_a) == {1, 3, 4}  # 200 draws hit all three kept tokens, never a dropped one
    gen_other = make_generator(8)
    assert [sample(LOGITS, temperature=1.0, generator=gen_other) for _ in range(200)] != draws_a


def test_temperature_zero_cannot_build_distribution() -> None:
    with pytest.raises(ConfigError, match="greedy"):
        logits_to_probs(LOGITS, temperature=0.0)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"max_new_tokens": 0}, "max_new_tokens must be >= 1, got 0"),
        ({"temperature": -0.1}, "temperature must be >= 0"),
        ({"top_p": 0.0}, r"top_p must be in \(0, 1\], got 0.0"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -1}, "top_k must be >= 0"),
    ],
)
def test_generation_config_rejects_bad_values(kwargs: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        GenerationConfig(**kwargs)
