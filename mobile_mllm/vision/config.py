"""``VisionConfig``: everything that decides how an image becomes tiles (stored in manifest.json).

Its own module so that the grid rules, the tiler and the processor can all name it without
importing one another (the enums it holds are theirs, re-exported there). Light to import: no torch, PIL or numpy.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

from mobile_mllm.errors import ConfigError

__all__ = ["GridPolicy", "Resample", "ThumbnailPosition", "VisionConfig", "with_grid_limits"]


class GridPolicy(str, enum.Enum):
    """How a tile grid is chosen for an image."""

    RELAXED = "relaxed"  # BlueLM-V-3B Algorithm 1 (relaxed aspect-ratio matching)
    LLAVA_NEXT = "llava_next"  # LLaVA-NeXT: largest effective resolution, then least waste
    INTERNVL = "internvl"  # InternVL 1.5: closest aspect ratio
    SMOLVLM = "smolvlm"  # SmolVLM/Idefics3: longest edge resized, then rounded up to whole tiles


class ThumbnailPosition(str, enum.Enum):
    """Where the global view goes relative to the local tiles."""

    FIRST = "first"
    LAST = "last"
    NONE = "none"


class Resample(str, enum.Enum):
    """Interpolation used when resizing to the canvas and the thumbnail."""

    BICUBIC = "bicubic"
    BILINEAR = "bilinear"
    NEAREST = "nearest"
    LANCZOS = "lanczos"


MAX_SIDE_LIMIT = 100
"""Largest accepted ``max_side``: 100 x 100 tiles of 384 px is 38400 px across, ~2M image tokens."""
MAX_TILES_LIMIT = 10_000
"""Largest accepted ``max_tiles``: keeps the candidate list (~max_tiles * ln(max_tiles) grids) instant."""


@dataclass(frozen=True)
class VisionConfig:
    """Everything that decides how an image becomes tiles. Stored in manifest.json."""

    policy: GridPolicy = GridPolicy.RELAXED
    """Grid policy: relaxed (BlueLM-V-3B), llava_next, internvl or smolvlm."""
    tile_size: int = 384
    """Side of one square tile in pixels."""
    max_side: int | None = 3
    """Largest number of tiles across or down (m, n <= max_side)."""
    max_tiles: int | None = None
    """Largest number of local tiles m*n (the thumbnail is not counted)."""
    alpha: float = 0.1
    """Relaxation of the relaxed policy: a grid within alpha of the best resolution may win on less waste."""
    thumbnail: ThumbnailPosition = ThumbnailPosition.LAST
    """Position of the global-view thumbnail: first, last or none."""
    thumbnail_for_single: bool = False
    """Whether a 1x1 grid also gets a thumbnail (it would duplicate the only tile)."""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel mean subtracted after scaling pixels to [0, 1]."""
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel standard deviation divided by after subtracting the mean."""
    pad_color: tuple[int, int, int] = (127, 127, 127)
    """RGB colour of the padding around the resized image on the canvas."""
    background: tuple[int, int, int] = (255, 255, 255)
    """RGB colour transparent images are composited on."""
    max_pixels: int = 80_000_000
    """Refuse images with more pixels than this (decompression-bomb guard)."""
    tokens_per_tile: int = 196
    """Image tokens the model produces per tile (after the token downsampler)."""
    resample: Resample = Resample.BICUBIC
    """Interpolation for the canvas and the thumbnail: bicubic, bilinear, nearest or lanczos."""
    longest_edge_px: int | None = None
    """smolvlm policy only: the longest edge an image is first resized to (SmolVLM/Idefics3's
    ``size.longest_edge``, e.g. 2048 = 4 tiles of 512); a token budget lowers it by whole tiles.
    Default None: ``max_side`` (else ``max_tiles``) tiles."""

    @property
    def smolvlm_longest_edge_px(self) -> int:
        """The smolvlm policy's first longest edge: ``longest_edge_px``, else ``max_side`` (else ``max_tiles``) tiles."""
        if self.longest_edge_px is not None:
            return self.longest_edge_px
        return self.tile_size * int(self.max_side or self.max_tiles or 1)

    def __post_init__(self) -> None:
        if self.max_side is None and self.max_tiles is None:
            raise ConfigError("vision: set max_side or max_tiles (or both); neither bounds the grid")
        if self.tile_size <= 0:
            raise ConfigError(f"vision.tile_size must be positive, got {self.tile_size}")
        for name, most in (("max_side", MAX_SIDE_LIMIT), ("max_tiles", MAX_TILES_LIMIT)):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= most:
                raise ConfigError(
                    f"vision.{name} must be in 1..{most}, got {value} (more tiles than any model's context holds)"
                )
        if not 0 <= self.alpha < math.inf:  # NaN fails too: the relaxed rule compares with alpha * Re
            raise ConfigError(f"vision.alpha must be a finite number >= 0, got {self.alpha}")
        if self.tokens_per_tile <= 0:
            raise ConfigError(f"vision.tokens_per_tile must be positive, got {self.tokens_per_tile}")
        if self.longest_edge_px is not None and self.longest_edge_px <= 0:
            raise ConfigError(f"vision.longest_edge_px must be positive, got {self.longest_edge_px}")
        if self.max_pixels <= 0:
            raise ConfigError(f"vision.max_pixels must be positive, got {self.max_pixels}")
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ConfigError(f"vision.mean and vision.std need 3 values (RGB), got {self.mean} and {self.std}")
        if any(s <= 0 for s in self.std):
            raise ConfigError(f"vision.std must be positive in every channel, got {self.std}")
        for name in ("pad_color", "background"):
            color = getattr(self, name)
            if len(color) != 3 or any(not 0 <= c <= 255 for c in color):
                raise ConfigError(f"vision.{name} must be 3 integers in 0..255 (RGB), got {color}")


def with_grid_limits(cfg: VisionConfig, *, max_tiles: int | None, max_side: int | None) -> VisionConfig:
    """``cfg`` with a user's grid limits, meaning the same in every command (``grid``, ``export``).

    ``max_tiles`` bounds the local tiles m*n (the thumbnail is not counted), ``max_side`` the
    tiles across or down. ``max_tiles`` alone lifts the side bound (so internvl may pick a 5:1
    grid); neither keeps ``cfg``'s limits.

    Example:
        >>> with_grid_limits(VisionConfig(max_side=3), max_tiles=6, max_side=None).max_side is None
        True
        >>> with_grid_limits(VisionConfig(max_side=3), max_tiles=None, max_side=None).max_side
        3
    """
    if max_tiles is None and max_side is None:
        return cfg
    return dataclasses.replace(cfg, max_tiles=max_tiles if max_tiles is not None else cfg.max_tiles, max_side=max_side)
