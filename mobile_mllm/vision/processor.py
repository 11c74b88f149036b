"""Image -> normalised tiles, driven by one VisionConfig.

Two entry points:

- :func:`plan_tiles` / :func:`plan_grid`: size-only planning (grid, canvas, boxes, tile and
  token counts) without decoding pixels, so the CLI and the runtime can check a token budget
  first. Light to import: no torch, PIL or numpy at module level.
- :func:`preprocess`: the full pipeline (load -> plan -> resize/pad -> cut -> normalise), the
  tiles as a float32 tensor ``[N, 3, S, S]`` in the order the model consumes them.

Deliberately not here: the grid rules (``grid.py``), canvas geometry (``tiling.py``), image
decoding (``io.py``), and the image-token layout of a prompt (``model.adapter.PromptFormat``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm.errors import ConfigError, ImageError
from mobile_mllm.vision.grid import Grid, GridPolicy, Size, ThumbnailPosition, select_grid
from mobile_mllm.vision.config import VisionConfig
from mobile_mllm.vision.tiling import Box, CanvasLayout, layout_canvas, order_tiles, pads_canvas, tile_boxes

if TYPE_CHECKING:
    import torch

    from mobile_mllm.vision.io import ImageSource

logger = logging.getLogger(__name__)

__all__ = [
    "ImageTiles",
    "ThumbnailPosition",
    "TilePlan",
    "VisionConfig",
    "parse_size",
    "plan_grid",
    "plan_tiles",
    "preprocess",
]


@dataclass(frozen=True)
class TilePlan:
    """How an image of a given size becomes tiles, known before any pixel is decoded."""

    original_size: Size
    """The image size after EXIF orientation."""
    policy: GridPolicy
    """The grid policy that chose ``grid``."""
    grid: Grid
    """The chosen grid (after the token budget)."""
    preferred_grid: Grid
    """The grid the policy picks without a budget."""
    canvas: Size
    """Canvas of the grid in pixels."""
    layout: CanvasLayout
    """Where the resized image sits on the canvas (size and padding offsets)."""
    boxes: tuple[Box, ...]
    """Per tile, in model order, the original-image rectangle it shows (thumbnail: whole image)."""
    thumbnail_index: int | None
    """Index of the thumbnail among the tiles, or None without one."""
    num_local_tiles: int
    """Tiles cut from the canvas (cols * rows)."""
    num_tiles: int
    """Tiles the encoder sees, thumbnail included."""
    image_tokens: int
    """num_tiles * tokens_per_tile."""

    @property
    def reduced_by_budget(self) -> bool:
        """Whether a token budget forced a smaller grid than the policy prefers."""
        return self.grid != self.preferred_grid

    def summary(self) -> dict[str, Any]:
        """A JSON-ready view (what ``mobile-mllm grid --json`` prints)."""
        return {
            "image": [self.original_size.width, self.original_size.height],
            "policy": self.policy.value,
            "grid": [self.grid.cols, self.grid.rows],
            "tiles": self.num_tiles,
            "local_tiles": self.num_local_tiles,
            "thumbnail_index": self.thumbnail_index,
            "canvas": [self.canvas.width, self.canvas.height],
            "resized": [self.layout.resized.width, self.layout.resized.height],
            "image_tokens": self.image_tokens,
            "reduced_by_budget": self.reduced_by_budget,
            "preferred_grid": [self.preferred_grid.cols, self.preferred_grid.rows],
        }


@dataclass(frozen=True)
class ImageTiles:
    """One preprocessed image: the tiles the vision encoder takes and how they were made."""

    tiles: torch.Tensor
    """float32 ``[N, 3, S, S]``, normalised, in model order (thumbnail at ``thumbnail_index``)."""
    grid: Grid
    """The grid of local tiles."""
    canvas: Size
    """Canvas of the grid in pixels."""
    boxes: tuple[Box, ...]
    """One per tile, in original image coordinates (the thumbnail's box is the whole image)."""
    thumbnail_index: int | None
    """Index of the thumbnail in ``tiles``, or None."""
    num_local_tiles: int
    """Tiles cut from the canvas."""
    image_tokens: int
    """Tiles * tokens_per_tile."""
    original_size: Size
    """Image size after EXIF orientation."""
    reduced_by_budget: bool
    """Whether the token budget forced a smaller grid."""
    plan: TilePlan
    """The full size-only plan the tiles were cut from."""


def plan_tiles(image_size: Size, cfg: VisionConfig, *, token_budget: int | None = None) -> TilePlan:
    """Plan grid, canvas, tile boxes and token count for an image size (no pixels needed).

    Args:
        image_size (Size): the upright image size.
        cfg (VisionConfig): the vision settings.
        token_budget (int | None): largest number of image tokens allowed. Default None.

    Returns:
        TilePlan: what :func:`preprocess` will produce for an image of this size.

    Raises:
        ImageError: a non-positive size.
        ContextOverflowError: the budget is below even the smallest grid's tokens.

    Example:
        >>> plan = plan_tiles(Size(1080, 2400), VisionConfig(max_side=4))
        >>> str(plan.grid), plan.num_tiles, plan.image_tokens, plan.thumbnail_index, str(plan.canvas)
        ('2:4', 9, 1764, 8, '768x1536')
    """
    choice = select_grid(image_size, cfg, token_budget=token_budget)
    layout = layout_canvas(image_size, choice.canvas, pad=pads_canvas(cfg))
    local_boxes = tile_boxes(image_size, layout, choice.grid, cfg.tile_size)
    whole = Box(0, 0, image_size.width, image_size.height) if choice.has_thumbnail else None
    boxes, thumbnail_index = order_tiles(local_boxes, whole, cfg.thumbnail)
    return TilePlan(
        original_size=image_size,
        policy=choice.policy,
        grid=choice.grid,
        preferred_grid=choice.preferred,
        canvas=choice.canvas,
        layout=layout,
        boxes=tuple(boxes),
        thumbnail_index=thumbnail_index,
        num_local_tiles=choice.grid.num_tiles,
        num_tiles=choice.num_tiles,
        image_tokens=choice.image_tokens,
    )


_SIZE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_size(text: str) -> Size:
    """Parse ``"WxH"`` (e.g. ``"1080x2400"``) into a Size.

    Raises:
        ConfigError: when the text is not two positive integers joined by ``x``.

    Example:
        >>> parse_size("1080x2400")
        Size(width=1080, height=2400)
    """
    match = _SIZE_RE.match(text)
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise ConfigError(f"bad image size {text!r}; expected WIDTHxHEIGHT with positive integers, e.g. 1080x2400")
    return Size(int(match.group(1)), int(match.group(2)))


def plan_grid(image: str | Path | Size, cfg: VisionConfig, *, token_budget: int | None = None) -> TilePlan:
    """Plan tiles for an image file or a ``"WxH"`` size string, reading at most the file's header.

    An existing file wins over the size syntax; text that looks like neither is an error
    naming both readings.

    Args:
        image (str | Path | Size): a path, a size string such as ``"1080x2400"``, or a Size.
        cfg (VisionConfig): the vision settings.
        token_budget (int | None): largest number of image tokens allowed. Default None.

    Raises:
        ConfigError: a string that is neither an existing file nor ``WxH``.
        ImageError: an unreadable or oversized image file.
        ContextOverflowError: the budget is below the smallest grid's tokens.

    Example:
        >>> str(plan_grid("500x102", VisionConfig()).grid)
        '2:1'
    """
    if isinstance(image, Size):
        size = image
    elif Path(image).exists():  # a file, or a folder that read_image_size names as one
        from mobile_mllm.vision.io import read_image_size  # noqa: PLC0415  (PIL only for real files)

        size = read_image_size(Path(image), cfg)
    elif isinstance(image, str) and _SIZE_RE.match(image):
        size = parse_size(image)
    elif isinstance(image, str) and not Path(image).suffix:
        raise ConfigError(f"bad image size {image!r}; expected WIDTHxHEIGHT (e.g. 1080x2400) or an image file")
    else:
        raise ImageError(f"image file not found: {image} (or give a size such as 1080x2400)")
    return plan_tiles(size, cfg, token_budget=token_budget)


def preprocess(image: ImageSource, cfg: VisionConfig, *, token_budget: int | None = None) -> ImageTiles:
    """Turn an image into normalised tiles for the vision encoder.

    The size is read and the grid planned (budget checked) before the pixels are decoded.

    Args:
        image (ImageSource): a path, encoded bytes, a PIL image or a numpy array (``io.load_image``).
        cfg (VisionConfig): the vision settings (also stored in manifest.json).
        token_budget (int | None): largest number of image tokens allowed. Default None.

    Returns:
        ImageTiles: tiles ``[N, 3, S, S]`` float32 plus grid, canvas, boxes and counts.

    Raises:
        ImageError: the image cannot be loaded (see ``io.load_image``).
        ContextOverflowError: the budget is below the smallest grid's tokens.
    """
    import numpy as np  # noqa: PLC0415  (heavy: only when pixels are processed)
    import torch  # noqa: PLC0415

    from mobile_mllm.vision.io import load_image, read_image_size  # noqa: PLC0415
    from mobile_mllm.vision.normalize import normalize  # noqa: PLC0415
    from mobile_mllm.vision.tiling import render_tiles  # noqa: PLC0415

    plan = plan_tiles(read_image_size(image, cfg), cfg, token_budget=token_budget)
    rgb = load_image(image, cfg)
    if Size(rgb.width, rgb.height) != plan.original_size:  # header and decoded size disagree
        raise ImageError(
            f"decoded image is {rgb.width}x{rgb.height} but its header said {plan.original_size}; the file is corrupt"
        )
    images, thumbnail_index = render_tiles(rgb, plan.grid, cfg, with_thumbnail=plan.thumbnail_index is not None)
    assert thumbnail_index == plan.thumbnail_index  # same order_tiles rule for pixels and boxes
    pixels = np.stack([np.asarray(t, dtype=np.uint8) for t in images])
    tiles = torch.from_numpy(normalize(pixels, cfg.mean, cfg.std))
    logger.debug("preprocess %s: grid %s, %d tiles, %d tokens", plan.original_size, plan.grid, plan.num_tiles, plan.image_tokens)
    return ImageTiles(
        tiles=tiles,
        grid=plan.grid,
        canvas=plan.canvas,
        boxes=plan.boxes,
        thumbnail_index=plan.thumbnail_index,
        num_local_tiles=plan.num_local_tiles,
        image_tokens=plan.image_tokens,
        original_size=plan.original_size,
        reduced_by_budget=plan.reduced_by_budget,
        plan=plan,
    )
