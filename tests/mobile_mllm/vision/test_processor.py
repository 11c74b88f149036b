"""preprocess end to end on tiny images: tile pixels, order, thumbnail rules, sources, budget."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image
from vision_testdata import encode, gradient, png_header_only

from mobile_mllm.config import from_dict, to_dict
from mobile_mllm.errors import ConfigError, ContextOverflowError, ImageError
from mobile_mllm.vision.grid import Grid, GridPolicy, Size, ThumbnailPosition
from mobile_mllm.vision.processor import VisionConfig, parse_size, plan_grid, plan_tiles, preprocess
from mobile_mllm.vision.tiling import Box

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _norm(rgb: tuple[int, int, int], cfg: VisionConfig) -> torch.Tensor:
    """Hand normalisation of one colour: (x / 255 - mean) / std, per channel."""
    return torch.tensor([(c / 255 - m) / s for c, m, s in zip(rgb, cfg.mean, cfg.std)], dtype=torch.float32)


def _close(actual: torch.Tensor, expected: torch.Tensor) -> bool:
    """Equal up to float32 rounding (the hand value is computed in float64)."""
    return torch.allclose(actual, expected.expand_as(actual), rtol=0, atol=1e-6)


def _red_blue(width: int = 768, height: int = 384) -> np.ndarray:
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:, : width // 2] = RED
    arr[:, width // 2 :] = BLUE
    return arr


def test_exact_fit_tiles_and_padded_thumbnail() -> None:
    # 768x384 fills a 2:1 canvas exactly (relaxed ends at the least-waste full-resolution grid)
    cfg = VisionConfig()
    out = preprocess(_red_blue(), cfg)
    assert (out.grid, out.canvas, out.original_size) == (Grid(2, 1), Size(768, 384), Size(768, 384))
    assert out.tiles.shape == (3, 3, 384, 384) and out.tiles.dtype == torch.float32
    assert (out.num_local_tiles, out.thumbnail_index, out.image_tokens) == (2, 2, 3 * 196)
    assert _close(out.tiles[0], _norm(RED, cfg)[:, None, None].expand(3, 384, 384))
    assert _close(out.tiles[1], _norm(BLUE, cfg)[:, None, None].expand(3, 384, 384))
    thumb = out.tiles[2]  # 768x384 -> 384x192 centred: pad rows 0..95 and 288..383
    pad = _norm(cfg.pad_color, cfg)
    assert _close(thumb[:, 0, 200], pad) and _close(thumb[:, 383, 10], pad)
    assert _close(thumb[:, 190, 50], _norm(RED, cfg)) and _close(thumb[:, 190, 330], _norm(BLUE, cfg))
    assert out.boxes == (Box(0, 0, 384, 384), Box(384, 0, 768, 384), Box(0, 0, 768, 384))


def test_thumbnail_first_and_none() -> None:
    first = preprocess(_red_blue(), VisionConfig(thumbnail=ThumbnailPosition.FIRST))
    assert first.thumbnail_index == 0 and first.tiles.shape[0] == 3
    assert _close(first.tiles[1][:, 0, 0], _norm(RED, VisionConfig()))
    none = preprocess(_red_blue(), VisionConfig(thumbnail=ThumbnailPosition.NONE))
    assert none.thumbnail_index is None and none.tiles.shape[0] == 2 and none.image_tokens == 2 * 196
    assert torch.equal(none.tiles, first.tiles[1:])


@pytest.mark.parametrize(("for_single", "count"), [(False, 1), (True, 2)])
def test_single_tile_grid_thumbnail_rule(for_single: bool, count: int) -> None:
    arr = gradient(384, 384)
    out = preprocess(arr, VisionConfig(thumbnail_for_single=for_single))
    assert out.grid == Grid(1, 1) and out.tiles.shape[0] == count and out.image_tokens == count * 196
    if for_single:  # the global view of a one-tile image is that tile
        assert out.thumbnail_index == 1 and torch.equal(out.tiles[0], out.tiles[1])


def test_internvl_stretches_without_padding() -> None:
    colour = (10, 200, 30)
    arr = np.empty((102, 500, 3), dtype=np.uint8)
    arr[:] = colour
    cfg = VisionConfig(policy=GridPolicy.INTERNVL, max_side=None, max_tiles=9)
    out = preprocess(arr, cfg)
    assert out.grid == Grid(5, 1) and out.canvas == Size(1920, 384) and out.tiles.shape == (6, 3, 384, 384)
    assert _close(out.tiles, _norm(colour, cfg)[None, :, None, None].expand(6, 3, 384, 384))
    relaxed = preprocess(arr, VisionConfig())  # 2:1, resized to 768x157, padded above and below
    assert relaxed.grid == Grid(2, 1)
    assert _close(relaxed.tiles[0][:, 0, 0], _norm(VisionConfig().pad_color, cfg))
    assert _close(relaxed.tiles[0][:, 192, 0], _norm(colour, cfg))


def test_same_tiles_from_path_bytes_pil_and_array(tmp_path) -> None:
    arr = gradient(500, 102)
    path = tmp_path / "g.png"
    Image.fromarray(arr).save(path)
    cfg = VisionConfig()
    results = [preprocess(src, cfg) for src in (path, str(path), path.read_bytes(), Image.open(path), arr)]
    for other in results[1:]:
        assert torch.equal(other.tiles, results[0].tiles)
        assert other.plan == results[0].plan
    assert results[0].tiles.shape[0] == 3


def test_plan_matches_preprocess() -> None:
    arr = gradient(300, 700)
    cfg = VisionConfig(policy=GridPolicy.LLAVA_NEXT)
    out = preprocess(arr, cfg)
    plan = plan_tiles(Size(300, 700), cfg)
    assert out.plan == plan and out.tiles.shape[0] == plan.num_tiles == len(out.boxes)
    assert out.boxes[plan.thumbnail_index] == Box(0, 0, 300, 700)


def test_token_budget_reduces_tiles() -> None:
    arr = gradient(1080, 2400)
    out = preprocess(arr, VisionConfig(max_side=4), token_budget=1000)
    assert out.reduced_by_budget and out.grid == Grid(1, 3) and out.tiles.shape[0] == 4
    assert out.image_tokens == 784 <= 1000


def test_budget_is_checked_before_decoding(tmp_path) -> None:
    path = tmp_path / "header_only.png"  # undecodable pixels: decoding would raise ImageError
    path.write_bytes(png_header_only(1080, 2400))
    with pytest.raises(ContextOverflowError, match="token budget 100"):
        preprocess(path, VisionConfig(), token_budget=100)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        preprocess(path, VisionConfig())


def test_plan_grid_reads_size_string_or_header_only(tmp_path) -> None:
    assert plan_grid("1080x2400", VisionConfig(max_side=4)).grid == Grid(2, 4)
    path = tmp_path / "shot.png"
    path.write_bytes(png_header_only(1080, 2400))  # no pixel data: only the header is read
    plan = plan_grid(path, VisionConfig(max_side=4))
    assert plan.original_size == Size(1080, 2400) and plan.grid == Grid(2, 4)
    assert plan.summary()["grid"] == [2, 4] and plan.summary()["tiles"] == 9


def test_plan_grid_errors(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"bad image size '12xab'; expected WIDTHxHEIGHT"):
        plan_grid("12xab", VisionConfig())
    with pytest.raises(ConfigError, match="bad image size '0x10'"):
        plan_grid("0x10", VisionConfig())
    with pytest.raises(ImageError, match=r"image file not found: .*missing\.jpg"):
        plan_grid(str(tmp_path / "missing.jpg"), VisionConfig())


def test_parse_size() -> None:
    assert parse_size("1080x2400") == Size(1080, 2400)
    assert parse_size(" 7 X 9 ") == Size(7, 9)
    with pytest.raises(ConfigError, match="bad image size '1080'"):
        parse_size("1080")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"std": (0.5, 0.0, 0.5)}, r"vision.std must be positive in every channel, got \(0.5, 0.0, 0.5\)"),
        ({"pad_color": (0, 300, 0)}, r"vision.pad_color must be 3 integers in 0..255"),
        ({"tokens_per_tile": 0}, "vision.tokens_per_tile must be positive, got 0"),
        ({"max_side": None, "max_tiles": None}, "neither bounds the grid"),
    ],
)
def test_vision_config_rejects_bad_values(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(VisionConfig(), **change)


def test_vision_config_round_trips_through_dict() -> None:
    cfg = VisionConfig(policy=GridPolicy.INTERNVL, max_side=None, max_tiles=12, thumbnail=ThumbnailPosition.FIRST)
    assert from_dict(VisionConfig, to_dict(cfg)) == cfg
    assert to_dict(cfg)["resample"] == "bicubic"


def test_docstring_examples() -> None:
    import doctest  # noqa: PLC0415

    import mobile_mllm.vision.processor as module  # noqa: PLC0415

    assert doctest.testmod(module).failed == 0
