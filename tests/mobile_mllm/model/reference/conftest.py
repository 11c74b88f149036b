"""Fixtures of the reference-family tests: tiny models with seeded, deliberately large random weights."""

from __future__ import annotations

import pytest
from reference_models import randomize, tiny_qwen2

from mobile_mllm.model.reference.presets import reference_tiny


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def tiny_mods(request: pytest.FixtureRequest):  # -> ReferenceModules
    """Tiny modules (64-position cache), Llama and Qwen2 decoders, seeded weights."""
    from mobile_mllm.model.reference.builders import build_reference

    cfg = reference_tiny() if request.param == "llama" else tiny_qwen2()
    mods = build_reference(cfg, max_context_len=64, init=True)
    for i, m in enumerate((mods.vision_encoder, mods.hf_decoder)):
        randomize(m, seed=i)
    return mods
