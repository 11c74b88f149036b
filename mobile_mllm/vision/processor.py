"""Image -> normalised tiles, driven by one VisionConfig.

(IMPLEMENTATION PENDING: the vision work fills in preprocess.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mobile_mllm.errors import ConfigError
from mobile_mllm.vision.grid import Grid, GridPolicy, Size


class ThumbnailPosition(str, enum.Enum):
    """Where the global view goes relative to the local tiles."""

    FIRST = "first"
    LAST = "last"
    NONE = "none"


@dataclass(frozen=True)
class VisionConfig:
    """Everything that decides how an image becomes tiles. Stored in manifest.json."""

    policy: GridPolicy = GridPolicy.RELAXED
    """Grid policy: relaxed (BlueLM-V-3B), llava_next or internvl."""
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

    def __post_init__(self) -> None:
        if self.max_side is None and self.max_tiles is None:
            raise ConfigError("vision: set max_side or max_tiles (or both); neither bounds the grid")
        if self.tile_size <= 0:
            raise ConfigError(f"vision.tile_size must be positive, got {self.tile_size}")
        if self.max_side is not None and self.max_side < 1:
            raise ConfigError(f"vision.max_side must be >= 1, got {self.max_side}")
        if self.max_tiles is not None and self.max_tiles < 1:
            raise ConfigError(f"vision.max_tiles must be >= 1, got {self.max_tiles}")
        if self.alpha < 0:
            raise ConfigError(f"vision.alpha must be >= 0, got {self.alpha}")
