"""Pixels to model input: uint8 ``...HWC`` -> float32 ``...CHW`` as ``(x / 255 - mean) / std``.

Numpy only, so the same arithmetic is easy to mirror on the phone. Deliberately not here:
resizing (``tiling.py``) and torch (``processor.py`` wraps the result in a tensor).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mobile_mllm.errors import ImageError

__all__ = ["normalize"]


def normalize(pixels: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> np.ndarray:
    """Scale uint8 RGB pixels to [0, 1], subtract ``mean``, divide by ``std``, move channels first.

    Works on one image (``H x W x 3``) or a stack (``N x H x W x 3``); the channel axis moves
    from last to third-from-last, as the vision encoder takes ``[N, 3, S, S]``.

    Args:
        pixels (np.ndarray): uint8 array with 3 channels last.
        mean (Sequence[float]): per-channel mean (RGB) on the [0, 1] scale.
        std (Sequence[float]): per-channel standard deviation (RGB), all positive.

    Returns:
        np.ndarray: float32, channels first.

    Raises:
        ImageError: when the array is not uint8 with 3 channels last.

    Example:
        >>> px = np.array([[[0, 255, 51]]], dtype=np.uint8)
        >>> normalize(px, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)).ravel().tolist()
        [-1.0, 1.0, -0.6000000238418579]
    """
    if pixels.dtype != np.uint8 or pixels.ndim < 3 or pixels.shape[-1] != 3:
        raise ImageError(
            f"normalize expects uint8 pixels with 3 channels last, got {pixels.dtype} {tuple(pixels.shape)}"
        )
    m = np.asarray(mean, dtype=np.float32)
    s = np.asarray(std, dtype=np.float32)
    scaled = pixels.astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(np.moveaxis((scaled - m) / s, -1, -3))
