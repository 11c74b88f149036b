"""Draw the tile grid a plan chose over the image: what the model will see, before it runs.

The demo shows this next to the chat so a user can see how a grid policy, a tile limit or a
token budget cuts their photo (and how much of each tile is padding) before asking. Boxes come
from :class:`~mobile_mllm.vision.processor.TilePlan` (original-image coordinates), so the
drawing is exactly the tiling ``preprocess`` performs, not a second computation of it.

Deliberately not here: choosing the grid (``grid.py``, ``processor.py``) or any model call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

if TYPE_CHECKING:
    from mobile_mllm.vision.processor import TilePlan

__all__ = ["TILE_COLORS", "THUMBNAIL_COLOR", "caption", "draw_grid"]

TILE_COLORS: tuple[tuple[int, int, int], ...] = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180))
"""Outline colours of local tiles, cycled in tile order (neighbours differ)."""
THUMBNAIL_COLOR = (255, 225, 25)
"""Outline of the whole image when the plan adds a thumbnail (global view)."""


def caption(plan: TilePlan) -> str:
    """One line saying what the plan feeds the model.

    Example:
        >>> from mobile_mllm.vision.config import VisionConfig
        >>> from mobile_mllm.vision.grid import Size
        >>> from mobile_mllm.vision.processor import plan_tiles
        >>> caption(plan_tiles(Size(1080, 720), VisionConfig(tokens_per_tile=36)))
        'relaxed 3x2: 6 tiles + thumbnail = 7 tiles x 36 = 252 image tokens'
    """
    thumb = " + thumbnail" if plan.thumbnail_index is not None else ""
    reduced = f" (reduced from {plan.preferred_grid.cols}x{plan.preferred_grid.rows})" if plan.reduced_by_budget else ""
    per_tile = plan.image_tokens // max(plan.num_tiles, 1)
    return (
        f"{plan.policy.value} {plan.grid.cols}x{plan.grid.rows}{reduced}: {plan.num_local_tiles} tiles{thumb} = "
        f"{plan.num_tiles} tiles x {per_tile} = {plan.image_tokens} image tokens"
    )


def draw_grid(image: Image.Image, plan: TilePlan) -> Image.Image:
    """A copy of ``image`` with each local tile outlined and numbered in model order.

    Tiles that show only padding (possible when the canvas is wider than the image) are
    numbered at the edge but have no box. With a thumbnail, the whole image gets a yellow
    outline labelled ``thumbnail``.

    Args:
        image (Image.Image): the image as the plan saw it (EXIF-oriented, ``plan.original_size``).
        plan (TilePlan): the plan of that image.

    Returns:
        Image.Image: an RGB copy with the overlay.

    Raises:
        ValueError: ``image`` is not the size the plan was made for.
    """
    size = (plan.original_size.width, plan.original_size.height)
    if image.size != size:
        raise ValueError(f"the image is {image.size[0]}x{image.size[1]} but the plan is for {size[0]}x{size[1]}")
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    line = max(2, min(size) // 150)
    font = ImageFont.load_default(size=max(12, min(size) // 18))
    local = 0
    for i, box in enumerate(plan.boxes):
        if i == plan.thumbnail_index:
            continue
        color = TILE_COLORS[local % len(TILE_COLORS)]
        local += 1
        if box.is_empty:
            continue
        rect = (box.left, box.top, max(box.left, box.right - 1), max(box.top, box.bottom - 1))
        draw.rectangle(rect, outline=color, width=line)
        draw.text((box.left + 2 * line, box.top + line), str(i), fill=color, font=font, stroke_width=1, stroke_fill=(0, 0, 0))
    if plan.thumbnail_index is not None:
        draw.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=THUMBNAIL_COLOR, width=max(1, line // 2))
        label = f"thumbnail ({plan.thumbnail_index})"
        right, bottom = draw.textbbox((0, 0), label, font=font)[2:]
        draw.text((size[0] - right - 2 * line, size[1] - bottom - 2 * line), label, fill=THUMBNAIL_COLOR, font=font,
                  stroke_width=1, stroke_fill=(0, 0, 0))
    return out
