"""Normalisation against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from mobile_mllm.errors import ImageError
from mobile_mllm.vision.normalize import normalize

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def test_half_mean_std_maps_0_255_to_minus1_plus1() -> None:
    px = np.array([[[0, 255, 51]]], dtype=np.uint8)
    out = normalize(px, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert out.shape == (3, 1, 1) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 0, 0], [-1.0, 1.0, (0.2 - 0.5) / 0.5], rtol=0, atol=1e-6)


def test_clip_statistics_per_channel_and_layout() -> None:
    px = np.zeros((2, 4, 5, 3), dtype=np.uint8)  # N x H x W x C
    px[1, 2, 3] = (10, 20, 30)
    out = normalize(px, CLIP_MEAN, CLIP_STD)
    assert out.shape == (2, 3, 4, 5)
    expected = [(10 / 255 - CLIP_MEAN[0]) / CLIP_STD[0], (20 / 255 - CLIP_MEAN[1]) / CLIP_STD[1], (30 / 255 - CLIP_MEAN[2]) / CLIP_STD[2]]
    np.testing.assert_allclose(out[1, :, 2, 3], expected, rtol=1e-6)
    np.testing.assert_allclose(out[0, :, 0, 0], [-m / s for m, s in zip(CLIP_MEAN, CLIP_STD)], rtol=1e-6)


@pytest.mark.parametrize(
    "bad", [np.zeros((4, 4, 3), dtype=np.float32), np.zeros((4, 4), dtype=np.uint8), np.zeros((3, 4, 4), dtype=np.uint8)]
)
def test_rejects_non_uint8_or_channels_first(bad: np.ndarray) -> None:
    with pytest.raises(ImageError, match="uint8 pixels with 3 channels last"):
        normalize(bad, (0.5,) * 3, (0.5,) * 3)


def test_docstring_examples() -> None:
    import doctest  # noqa: PLC0415

    import mobile_mllm.vision.normalize as module  # noqa: PLC0415

    assert doctest.testmod(module).failed == 0
