"""Shared pytest fixtures. Test tiers are markers (see pyproject): default unit, slow, integration."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``tiny`` preset model directory with seeded random weights, written once per test run."""
    from mobile_mllm.model.reference.init_model import init_model

    return init_model("tiny", tmp_path_factory.mktemp("tiny") / "model", seed=0).path


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path):  # -> MultimodalModel
    """The tiny model with a 512-position KV cache (shared by a module's tests; sessions overwrite the cache)."""
    from mobile_mllm.model import load_model

    return load_model(tiny_dir, max_context_len=512)
