"""Test data for the vision tests: the grid test vectors and tiny images made on the fly.

A plain module, not a conftest.py, and it never does ``from conftest import ...``: with several
conftest.py files in the tree that name is ambiguous, so ``tests/conftest.py`` (REPO, SHARED) is
loaded by its path.
"""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import zlib
from pathlib import Path
from types import ModuleType

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


def root_conftest() -> ModuleType:
    """``tests/conftest.py`` as a module (for its REPO and SHARED paths)."""
    path = Path(__file__).resolve().parents[2] / "conftest.py"
    spec = importlib.util.spec_from_file_location("mobile_mllm_tests_root_conftest", path)
    assert spec is not None and spec.loader is not None  # the file is part of this repository
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def grid_cases_paths() -> tuple[Path, Path]:
    """The shared test vectors and the copy under tests/assets (used when shared/ is absent)."""
    root = root_conftest()
    return root.SHARED / "testdata" / "grid_cases.json", root.REPO / "tests" / "assets" / "grid_cases.json"


def load_grid_cases() -> list[dict]:
    """Rows of grid_cases.json: from shared/ when present, else the committed copy."""
    shared, copy = grid_cases_paths()
    return json.loads((shared if shared.is_file() else copy).read_text())
