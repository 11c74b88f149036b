"""Fixtures of the training tests: small generated samples (the tiny model is in tests/conftest.py)."""

from __future__ import annotations

import dataclasses

import pytest

from mobile_mllm.eval.synthetic import SyntheticSpec


@pytest.fixture(scope="session")
def small_spec() -> SyntheticSpec:
    """Generator settings with small images (fast to draw and tile), every kind and form."""
    return dataclasses.replace(SyntheticSpec(), min_side_px=200, max_side_px=420, small_text_px=(20, 30))
