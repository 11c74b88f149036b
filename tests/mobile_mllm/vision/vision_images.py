"""Tiny images generated on the fly for the vision tests (nothing downloaded, nothing committed).

A plain module, not a conftest.py: a second conftest would shadow ``tests/conftest.py`` for
``from conftest import ...``.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def encode(img: Image.Image, fmt: str, **save_kwargs: object) -> bytes:
    """Encode a PIL image to bytes in ``fmt`` (PNG, JPEG, ...)."""
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save_kwargs)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` RGB pixels but holds no image data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def gradient(width: int, height: int) -> np.ndarray:
    """A deterministic uint8 RGB image whose every pixel differs from its neighbours."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([(x * 7 + y) % 256, (y * 5 + 3 * x) % 256, (x * y) % 256], axis=-1).astype(np.uint8)
