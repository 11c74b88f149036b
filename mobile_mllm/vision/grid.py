"""Tile-grid selection for dynamic-resolution image encoding. Pure Python: no PIL, no torch.

(IMPLEMENTATION PENDING: the vision work fills in select_grid and the three policies.)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class GridPolicy(str, enum.Enum):
    """How a tile grid is chosen for an image."""

    RELAXED = "relaxed"  # BlueLM-V-3B Algorithm 1 (relaxed aspect-ratio matching)
    LLAVA_NEXT = "llava_next"  # LLaVA-NeXT: largest effective resolution, then least waste
    INTERNVL = "internvl"  # InternVL 1.5: closest aspect ratio


@dataclass(frozen=True)
class Size:
    """A width x height in pixels (never a bare tuple across a function boundary)."""

    width: int
    height: int


@dataclass(frozen=True)
class Grid:
    """A tile grid: ``cols`` tiles across (m), ``rows`` tiles down (n), as in the paper."""

    cols: int
    rows: int

    @property
    def num_tiles(self) -> int:
        """Local tiles (the thumbnail is not counted)."""
        return self.cols * self.rows
