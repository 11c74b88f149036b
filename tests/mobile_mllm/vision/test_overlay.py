"""The grid overlay draws exactly the plan's boxes (checked pixel by pixel on a blank image)."""

from __future__ import annotations

import pytest
from PIL import Image

from mobile_mllm.vision.config import ThumbnailPosition, VisionConfig
from mobile_mllm.vision.grid import Size
from mobile_mllm.vision.overlay import THUMBNAIL_COLOR, TILE_COLORS, caption, draw_grid
from mobile_mllm.vision.processor import plan_tiles


def test_each_local_tile_is_outlined_in_its_colour() -> None:
    cfg = VisionConfig(tile_size=100, tokens_per_tile=9, thumbnail=ThumbnailPosition.NONE)
    plan = plan_tiles(Size(600, 200), cfg)
    assert (plan.grid.cols, plan.grid.rows) == (3, 1)
    out = draw_grid(Image.new("RGB", (600, 200), (255, 255, 255)), plan)
    for i, box in enumerate(plan.boxes):
        mid_y = (box.top + box.bottom) // 2
        assert out.getpixel((box.left, mid_y)) == TILE_COLORS[i]  # left edge of tile i
        assert out.getpixel(((box.left + box.right) // 2, mid_y)) == (255, 255, 255)  # inside untouched
    assert caption(plan) == "relaxed 3x1: 3 tiles = 3 tiles x 9 = 27 image tokens"


def test_thumbnail_outlines_the_whole_image_and_is_not_a_box() -> None:
    cfg = VisionConfig(tile_size=100, tokens_per_tile=9, thumbnail=ThumbnailPosition.FIRST)
    plan = plan_tiles(Size(400, 200), cfg)
    out = draw_grid(Image.new("RGB", (400, 200), (255, 255, 255)), plan)
    assert plan.thumbnail_index == 0
    assert out.getpixel((0, 0)) == THUMBNAIL_COLOR and out.getpixel((399, 199)) == THUMBNAIL_COLOR
    assert out.getpixel((plan.boxes[1].left + 1, 50)) == TILE_COLORS[0]  # first local tile keeps colour 0
    assert "3x2: 6 tiles + thumbnail = 7 tiles" in caption(plan)


def test_image_of_another_size_is_refused() -> None:
    plan = plan_tiles(Size(400, 200), VisionConfig(tile_size=100))
    with pytest.raises(ValueError, match="plan is for 400x200"):
        draw_grid(Image.new("RGB", (200, 400)), plan)
