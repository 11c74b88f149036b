"""Fixtures of the internvl-family tests: checkpoint directories written with transformers' classes."""

from __future__ import annotations

from pathlib import Path

import pytest
from internvl_models import write_processor_files, write_tiny_internvl


@pytest.fixture(scope="session")
def tiny_internvl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny InternVL-hf checkpoint (seeded random weights, 28-px tiles, 4 tokens per tile, up to 6 tiles)."""
    return write_tiny_internvl(tmp_path_factory.mktemp("internvl_tiny"))


@pytest.fixture(scope="session")
def hf_model(tiny_internvl_dir: Path):  # -> InternVLForConditionalGeneration
    """transformers' own model of the tiny directory (SDPA attention, HF's layer norms): the parity reference.

    Loaded separately from the model under test, whose tower has its norms and attention
    rewritten for lowering, so the two share no module.
    """
    from transformers import InternVLForConditionalGeneration

    return InternVLForConditionalGeneration.from_pretrained(str(tiny_internvl_dir), attn_implementation="sdpa").eval()


@pytest.fixture(scope="session")
def real_size_processor_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """InternVL3's preprocessing at its real size (448-px tiles, up to 12, 256 tokens each); no weights.

    ``config.json`` carries only what preprocessing reads (InternVL3-1B-hf's vision values).
    """
    import json

    out = tmp_path_factory.mktemp("internvl_448")
    write_processor_files(out, tile_px=448, max_patches=12, tokens_per_tile=256)
    config = {
        "architectures": ["InternVLForConditionalGeneration"], "model_type": "internvl", "downsample_ratio": 0.5,
        "vision_config": {"image_size": [448, 448], "patch_size": [14, 14]},
    }
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return out
