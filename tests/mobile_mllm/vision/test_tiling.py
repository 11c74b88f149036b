"""Canvas layout, tile boxes and thumbnail order: hand-computed geometry."""

from __future__ import annotations

import doctest

import pytest

import mobile_mllm.vision.tiling as tiling
from mobile_mllm.vision.grid import Grid, GridPolicy, Size, ThumbnailPosition
from mobile_mllm.vision.processor import VisionConfig, plan_tiles
from mobile_mllm.vision.tiling import Box, CanvasLayout, layout_canvas, order_tiles, pads_canvas, tile_boxes


def test_docstring_examples() -> None:
    assert doctest.testmod(tiling).failed == 0


def test_layout_height_fills_and_centres_horizontally() -> None:
    # 1080x2400 on 768x1536: height is the tighter side; width = round(1080 * 1536 / 2400) = 691.2 -> 691
    assert layout_canvas(Size(1080, 2400), Size(768, 1536), pad=True) == CanvasLayout(
        canvas=Size(768, 1536), resized=Size(691, 1536), left=(768 - 691) // 2, top=0
    )


def test_layout_width_fills_and_centres_vertically() -> None:
    # 500x102 on 768x384: height = round(102 * 768 / 500) = round(156.67) = 157, top = (384 - 157) // 2
    assert layout_canvas(Size(500, 102), Size(768, 384), pad=True) == CanvasLayout(
        canvas=Size(768, 384), resized=Size(768, 157), left=0, top=113
    )


def test_layout_exact_fit_and_stretch_have_no_offset() -> None:
    assert layout_canvas(Size(768, 384), Size(768, 384), pad=True).resized == Size(768, 384)
    stretched = layout_canvas(Size(380, 76), Size(1920, 384), pad=False)
    assert (stretched.resized, stretched.left, stretched.top) == (Size(1920, 384), 0, 0)


def test_pads_canvas_only_for_non_internvl() -> None:
    assert pads_canvas(VisionConfig(policy=GridPolicy.RELAXED))
    assert pads_canvas(VisionConfig(policy=GridPolicy.LLAVA_NEXT))
    assert not pads_canvas(VisionConfig(policy=GridPolicy.INTERNVL))


def test_boxes_of_phone_screenshot_hand_computed() -> None:
    # resized 691x1536 at left 38: canvas x -> original x = (x - 38) * 1080 / 691; y scale 2400/1536
    # col 0: 0 -> 0 (clipped), 384 -> 346*1080/691 = 540.8 -> 541; col 1: 541 -> 730*1080/691 = 1141 -> 1080
    size = Size(1080, 2400)
    boxes = tile_boxes(size, layout_canvas(size, Size(768, 1536), pad=True), Grid(2, 4), 384)
    assert len(boxes) == 8
    assert boxes[0] == Box(0, 0, 541, 600)
    assert boxes[1] == Box(541, 0, 1080, 600)
    assert boxes[7] == Box(541, 1800, 1080, 2400)  # row-major: last tile is bottom-right
    assert sum((b.right - b.left) * (b.bottom - b.top) for b in boxes) == size.area  # they tile the image


def test_stretched_boxes_split_evenly() -> None:
    size = Size(500, 102)
    boxes = tile_boxes(size, layout_canvas(size, Size(1920, 384), pad=False), Grid(5, 1), 384)
    assert [(b.left, b.right) for b in boxes] == [(0, 100), (100, 200), (200, 300), (300, 400), (400, 500)]
    assert all((b.top, b.bottom) == (0, 102) for b in boxes)


def test_padding_only_tiles_get_empty_boxes() -> None:
    size = Size(100, 100)
    boxes = tile_boxes(size, layout_canvas(size, Size(384, 1152), pad=True), Grid(1, 3), 384)
    assert [b.is_empty for b in boxes] == [True, False, True]
    assert boxes[1] == Box(0, 0, 100, 100)


@pytest.mark.parametrize(
    ("position", "expected_index"), [(ThumbnailPosition.FIRST, 0), (ThumbnailPosition.LAST, 2), (ThumbnailPosition.NONE, None)]
)
def test_order_tiles_positions(position: ThumbnailPosition, expected_index: int | None) -> None:
    items, index = order_tiles(["a", "b"], "T", position)
    assert index == expected_index
    assert items == (["a", "b"] if index is None else ["a", "b"][:index] + ["T"] + ["a", "b"][index:])


def test_plan_boxes_put_the_whole_image_at_the_thumbnail_index() -> None:
    first = plan_tiles(Size(500, 102), VisionConfig(thumbnail=ThumbnailPosition.FIRST))
    assert first.thumbnail_index == 0 and first.boxes[0] == Box(0, 0, 500, 102)
    assert len(first.boxes) == first.num_tiles == 3
    last = plan_tiles(Size(500, 102), VisionConfig())
    assert last.thumbnail_index == 2 and last.boxes[2] == Box(0, 0, 500, 102)
    assert last.boxes[:2] == first.boxes[1:]
