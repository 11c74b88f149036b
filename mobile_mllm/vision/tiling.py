"""Place an image on its grid's canvas, cut it into tiles, and make the thumbnail.

Geometry first, pixels second: :func:`layout_canvas`, :func:`tile_boxes` and
:func:`order_tiles` are pure functions of sizes (the size-only planner and the demo use them
without decoding anything); :func:`render_tiles` applies the same layout to pixels.

Conventions (also what the phone must do; they are stored in manifest.json via VisionConfig):

- Padding policies (``relaxed``, ``llava_next``): the image is resized keeping its aspect ratio
  so that one side fills the canvas exactly and the other side is
  ``round(side * scale)`` (at most the canvas), then pasted **centred** on a canvas filled with
  ``pad_color`` (left/top offset = floor of half the slack), as LLaVA-NeXT pads.
- ``internvl``: the image is stretched to the canvas, no padding, as InternVL does.
- ``smolvlm``: stretched too, in SmolVLM's two steps (longest edge first, then the canvas,
  ``grid.smolvlm_sizes``); its thumbnail (SmolVLM's global image) is the canvas squashed to
  one tile, not the original image.
- Tiles are cut row-major (left to right, then top to bottom), ``S x S`` each.
- The thumbnail is the whole image as one tile, laid out with the same rule as the canvas
  (aspect kept and padded to a square, or stretched for ``internvl``), placed first or last.
- Tile boxes are in original image coordinates: the part of the image a tile shows, rounded
  to whole pixels and clipped to the image. A tile that shows only padding gets an empty box
  (zero width or height) on the nearest image edge. The thumbnail's box is the whole image.

PIL is imported only where pixels are touched, so planning stays light.

Deliberately not here: grid choice (``grid.py``), normalisation (``normalize.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from mobile_mllm.vision.config import GridPolicy, Resample, ThumbnailPosition, VisionConfig
from mobile_mllm.errors import ConfigError
from mobile_mllm.vision.grid import Grid, Size, smolvlm_edges, smolvlm_sizes

if TYPE_CHECKING:
    from PIL import Image


__all__ = [
    "Box",
    "CanvasLayout",
    "Resample",
    "layout_canvas",
    "order_tiles",
    "pads_canvas",
    "render_tiles",
    "tile_boxes",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Box:
    """A rectangle in original image pixels: ``left <= x < right``, ``top <= y < bottom``."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def is_empty(self) -> bool:
        """True for a tile that shows only padding."""
        return self.right <= self.left or self.bottom <= self.top


@dataclass(frozen=True)
class CanvasLayout:
    """Where the resized image sits on a canvas."""

    canvas: Size
    """The canvas (grid cols * S x grid rows * S, or S x S for the thumbnail)."""
    resized: Size
    """The image after resizing (equals ``canvas`` when stretched)."""
    left: int
    """Padding columns left of the image."""
    top: int
    """Padding rows above the image."""


def pads_canvas(cfg: VisionConfig) -> bool:
    """Whether the policy keeps the aspect ratio and pads (all but ``internvl`` and ``smolvlm``, which stretch)."""
    return GridPolicy(cfg.policy) not in (GridPolicy.INTERNVL, GridPolicy.SMOLVLM)


def layout_canvas(image_size: Size, canvas: Size, *, pad: bool) -> CanvasLayout:
    """Resize-and-place an image on a canvas: aspect kept and centred (``pad``) or stretched.

    Integer arithmetic only, so host and phone agree to the pixel.

    Example:
        >>> layout_canvas(Size(1080, 2400), Size(768, 1536), pad=True)
        CanvasLayout(canvas=Size(width=768, height=1536), resized=Size(width=691, height=1536), left=38, top=0)
        >>> layout_canvas(Size(500, 102), Size(768, 384), pad=True).resized
        Size(width=768, height=157)
        >>> layout_canvas(Size(500, 102), Size(1920, 384), pad=False).resized
        Size(width=1920, height=384)
    """
    if not pad:
        return CanvasLayout(canvas=canvas, resized=canvas, left=0, top=0)
    w0, h0 = image_size.width, image_size.height
    if canvas.width * h0 <= canvas.height * w0:  # width is the tighter side: it fills
        resized = Size(canvas.width, min(canvas.height, max(1, _round_div(h0 * canvas.width, w0))))
    else:
        resized = Size(min(canvas.width, max(1, _round_div(w0 * canvas.height, h0))), canvas.height)
    return CanvasLayout(
        canvas=canvas,
        resized=resized,
        left=(canvas.width - resized.width) // 2,
        top=(canvas.height - resized.height) // 2,
    )


def tile_boxes(image_size: Size, layout: CanvasLayout, grid: Grid, tile_size: int) -> tuple[Box, ...]:
    """The original-image rectangle each local tile shows, row-major.

    Example:
        >>> lay = layout_canvas(Size(800, 400), Size(768, 768), pad=True)
        >>> [(b.left, b.top, b.right, b.bottom) for b in tile_boxes(Size(800, 400), lay, Grid(2, 2), 384)]
        [(0, 0, 400, 200), (400, 0, 800, 200), (0, 200, 400, 400), (400, 200, 800, 400)]
        >>> lay = layout_canvas(Size(100, 100), Size(384, 1152), pad=True)  # padding above and below
        >>> [(b.top, b.bottom, b.is_empty) for b in tile_boxes(Size(100, 100), lay, Grid(1, 3), 384)]
        [(0, 0, True), (0, 100, False), (100, 100, True)]
    """
    def to_original(pos: int, offset: int, resized: int, original: int) -> int:
        return min(original, max(0, _round_div((pos - offset) * original, resized)))

    boxes = []
    for row in range(grid.rows):
        for col in range(grid.cols):
            x0, y0 = col * tile_size, row * tile_size
            boxes.append(
                Box(
                    left=to_original(x0, layout.left, layout.resized.width, image_size.width),
                    top=to_original(y0, layout.top, layout.resized.height, image_size.height),
                    right=to_original(x0 + tile_size, layout.left, layout.resized.width, image_size.width),
                    bottom=to_original(y0 + tile_size, layout.top, layout.resized.height, image_size.height),
                )
            )
    return tuple(boxes)


def order_tiles(local: Sequence[T], thumbnail: T | None, position: ThumbnailPosition) -> tuple[list[T], int | None]:
    """Put the thumbnail (if any) first or last among the local tiles.

    Used for tile images and for their boxes, so the two always line up.

    Returns:
        The ordered items and the thumbnail's index (None without a thumbnail).

    Example:
        >>> order_tiles(["a", "b"], "T", ThumbnailPosition.FIRST)
        (['T', 'a', 'b'], 0)
        >>> order_tiles(["a", "b"], "T", ThumbnailPosition.LAST)
        (['a', 'b', 'T'], 2)
        >>> order_tiles(["a"], None, ThumbnailPosition.LAST)
        (['a'], None)
    """
    items = list(local)
    position = ThumbnailPosition(position)
    if thumbnail is None or position is ThumbnailPosition.NONE:
        return items, None
    if position is ThumbnailPosition.FIRST:
        return [thumbnail, *items], 0
    return [*items, thumbnail], len(items)


def render_tiles(
    img: Image.Image, grid: Grid, cfg: VisionConfig, *, with_thumbnail: bool
) -> tuple[list[Image.Image], int | None]:
    """Cut an RGB image into its grid's tiles (row-major) plus the thumbnail, in model order.

    Args:
        img (PIL.Image.Image): the upright RGB image (from ``io.load_image``).
        grid (Grid): the chosen grid.
        cfg (VisionConfig): tile size, pad colour, resample filter, thumbnail position.
        with_thumbnail (bool): whether to add the global view (``grid.has_thumbnail``).

    Returns:
        The ``S x S`` RGB tiles in the order the model consumes them, and the thumbnail's index.
    """
    size = Size(img.width, img.height)
    pad = pads_canvas(cfg)
    s = cfg.tile_size
    if GridPolicy(cfg.policy) is GridPolicy.SMOLVLM:
        first = _smolvlm_first_resize(size, grid, cfg)
        img = _place(img, layout_canvas(size, first, pad=False), cfg)
        size = first
    canvas = _place(img, layout_canvas(size, grid.canvas(s), pad=pad), cfg)
    local = [canvas.crop((c * s, r * s, (c + 1) * s, (r + 1) * s)) for r in range(grid.rows) for c in range(grid.cols)]
    thumb_source = canvas if GridPolicy(cfg.policy) is GridPolicy.SMOLVLM else img
    thumb_size = Size(thumb_source.width, thumb_source.height)
    thumb = _place(thumb_source, layout_canvas(thumb_size, Size(s, s), pad=pad), cfg) if with_thumbnail else None
    return order_tiles(local, thumb, cfg.thumbnail)


def _smolvlm_first_resize(size: Size, grid: Grid, cfg: VisionConfig) -> Size:
    """The first of SmolVLM's two resizes: for the largest longest edge that gives ``grid`` (what ``select_smolvlm`` picked)."""
    for edge in smolvlm_edges(cfg.smolvlm_longest_edge_px, cfg.tile_size):
        first, canvas = smolvlm_sizes(size, edge, cfg.tile_size)
        if canvas == grid.canvas(cfg.tile_size):
            return first
    raise ConfigError(f"grid {grid} is not a smolvlm grid of a {size} image (longest edge <= {cfg.smolvlm_longest_edge_px} px)")


def _place(img: Image.Image, layout: CanvasLayout, cfg: VisionConfig) -> Image.Image:
    from PIL import Image  # noqa: PLC0415  (pixels only; planning must not pay for PIL)

    filters = {
        Resample.BICUBIC: Image.Resampling.BICUBIC,
        Resample.BILINEAR: Image.Resampling.BILINEAR,
        Resample.NEAREST: Image.Resampling.NEAREST,
        Resample.LANCZOS: Image.Resampling.LANCZOS,
    }
    resized = img.resize((layout.resized.width, layout.resized.height), filters[Resample(cfg.resample)])
    if layout.resized == layout.canvas:
        return resized
    canvas = Image.new("RGB", (layout.canvas.width, layout.canvas.height), tuple(cfg.pad_color))
    canvas.paste(resized, (layout.left, layout.top))
    return canvas


def _round_div(num: int, den: int) -> int:
    """round(num / den) for integers, halves rounded up (no float error)."""
    return (2 * num + den) // (2 * den)
