"""Helpers of the reference-family tests: seeded large random weights, a Qwen2 variant of tiny."""

from __future__ import annotations

import dataclasses

import torch

from mobile_mllm.model.reference.config import DecoderArchitecture, ReferenceConfig
from mobile_mllm.model.reference.presets import reference_tiny


def randomize(module: torch.nn.Module, seed: int, std: float = 0.2) -> None:
    """Overwrite every parameter with seeded normal noise (larger than HF's 0.02 so errors show)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(module.named_parameters(), key=lambda kv: kv[0]):
            p.copy_(torch.randn(p.shape, generator=gen) * std)


def tiny_qwen2() -> ReferenceConfig:
    """The tiny preset with a Qwen2 decoder (q/k/v biases, tied embeddings)."""
    cfg = reference_tiny()
    decoder = dataclasses.replace(
        cfg.decoder, architecture=DecoderArchitecture.QWEN2, tie_word_embeddings=True, rope_theta=1e6
    )
    return dataclasses.replace(cfg, variant="custom", decoder=decoder)
