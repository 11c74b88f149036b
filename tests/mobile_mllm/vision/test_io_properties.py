"""Property-based tests (Hypothesis): any image mode Pillow opens becomes tiles of the right shape and range.

Every mode a user's file may decode to (``1``, ``L``, ``LA``, ``P`` with a transparent index,
``RGBA``, ``CMYK``, ``I;16``, ``I``, ``F``) and EXIF-rotated JPEGs, of any small size and content,
go through ``preprocess`` both as the PIL image and as an encoded file. The tiles must have the
planned count and the tile shape, be float32 and finite, and lie in the range normalisation
allows: ``[(0 - mean) / std, (1 - mean) / std]`` per channel (the input was 8-bit RGB after all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from mobile_mllm.vision.grid import GridPolicy, Size
from mobile_mllm.vision.io import read_image_size
from mobile_mllm.vision.processor import VisionConfig, plan_tiles, preprocess

MODES = ("1", "L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "F")
FILE_FORMAT = {"1": "PNG", "L": "PNG", "LA": "PNG", "P": "PNG", "RGBA": "PNG", "CMYK": "TIFF", "I;16": "PNG",
               "I": "TIFF", "F": "TIFF"}
"""A format that stores each mode as it is (JPEG would turn CMYK into lossy CMYK, PNG has no F)."""
EXIF_ORIENTATION = 0x0112


def _image(mode: str, width: int, height: int, seed: int) -> Image.Image:
    """Random content in ``mode``, including values beyond 8 bits for the wide modes."""
    rng = np.random.default_rng(seed)
    if mode == "P":
        img = Image.fromarray(rng.integers(0, 16, (height, width), dtype=np.uint8)).convert("P")
        img.putpalette(rng.integers(0, 256, 16 * 3, dtype=np.uint8).tolist())
        img.info["transparency"] = int(rng.integers(0, 16))
        return img
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (height, width), dtype=np.uint16))  # uint16 -> I;16
    if mode == "I":
        top = int(rng.choice([255, 70000]))  # the 8-bit and the wide reading of I
        return Image.fromarray(rng.integers(0, top + 1, (height, width), dtype=np.int32))  # int32 -> I
    if mode == "F":
        top = float(rng.choice([1.0, 255.0, 4000.0]))
        return Image.fromarray((rng.random((height, width)) * top).astype(np.float32))  # float32 -> F
    channels = {"1": 1, "L": 1, "LA": 2, "RGBA": 4, "CMYK": 4}[mode]
    arr = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    if mode == "1":
        return Image.fromarray(arr[:, :, 0]).convert("1")
    return Image.frombytes(mode, (width, height), arr.tobytes())


def _check_tiles(source: object, cfg: VisionConfig, upright: Size) -> None:
    out = preprocess(source, cfg)
    plan = plan_tiles(upright, cfg)
    assert out.original_size == upright and out.grid == plan.grid
    assert tuple(out.tiles.shape) == (plan.num_tiles, 3, cfg.tile_size, cfg.tile_size)
    assert out.tiles.dtype == torch.float32 and torch.isfinite(out.tiles).all()
    mean, std = torch.tensor(cfg.mean)[:, None, None], torch.tensor(cfg.std)[:, None, None]
    low, high = (0 - mean) / std, (1 - mean) / std
    assert (out.tiles >= low - 1e-6).all() and (out.tiles <= high + 1e-6).all()


CONFIGS = st.builds(
    VisionConfig,
    policy=st.sampled_from(list(GridPolicy)),
    tile_size=st.sampled_from([16, 32]),
    max_side=st.integers(1, 3),
    mean=st.sampled_from([(0.5, 0.5, 0.5), (0.485, 0.456, 0.406)]),
    std=st.sampled_from([(0.5, 0.5, 0.5), (0.229, 0.224, 0.225)]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mode=st.sampled_from(MODES), width=st.integers(1, 120), height=st.integers(1, 120),
    seed=st.integers(0, 2**32 - 1), cfg=CONFIGS,
)
def test_every_mode_gives_tiles_of_the_right_shape_and_range(
    tmp_path: Path, mode: str, width: int, height: int, seed: int, cfg: VisionConfig
) -> None:
    img = _image(mode, width, height, seed)
    assert img.mode == mode
    _check_tiles(img, cfg, Size(width, height))
    path = tmp_path / f"img.{FILE_FORMAT[mode].lower()}"
    img.save(path, format=FILE_FORMAT[mode])
    with Image.open(path) as reread:  # the file decodes to the mode under test (not quietly to RGB)
        assert reread.mode == mode or (mode == "I" and reread.mode.startswith("I"))
    _check_tiles(path, cfg, Size(width, height))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(orientation=st.integers(1, 8), width=st.integers(1, 120), height=st.integers(1, 120), seed=st.integers(0, 2**32 - 1), cfg=CONFIGS)
def test_exif_rotated_jpegs_are_tiled_upright(tmp_path: Path, orientation: int, width: int, height: int, seed: int, cfg: VisionConfig) -> None:
    img = _image("L", width, height, seed).convert("RGB")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    path = tmp_path / "photo.jpg"
    img.save(path, format="JPEG", exif=exif.tobytes())
    upright = Size(height, width) if orientation in (5, 6, 7, 8) else Size(width, height)  # 90/270-degree turns
    assert read_image_size(path, cfg) == upright
    _check_tiles(path, cfg, upright)
