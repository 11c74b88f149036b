"""Fixtures of the training tests: a tiny random-weight model and small generated samples."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mobile_mllm.eval.synthetic import SyntheticSpec


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``tiny`` preset model directory with seeded random weights."""
    from mobile_mllm.model.reference.init_model import init_model

    return init_model("tiny", tmp_path_factory.mktemp("tiny") / "model", seed=0).path


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path):  # -> MultimodalModel
    """The tiny model with a 512-position KV cache."""
    from mobile_mllm.model import load_model

    return load_model(tiny_dir, max_seq_len=512)


@pytest.fixture(scope="session")
def small_spec() -> SyntheticSpec:
    """Generator settings with small images (fast to draw and tile), every kind and form."""
    return dataclasses.replace(SyntheticSpec(), min_side=200, max_side=420, small_text_px=(20, 30))
