"""Grid limits mean the same in every command: --max-tiles alone lifts the side bound, nothing given keeps the model's."""

from __future__ import annotations

import pytest

from mobile_mllm.vision.config import GridPolicy, ThumbnailPosition, VisionConfig, with_grid_limits
from mobile_mllm.vision.processor import plan_grid


@pytest.mark.parametrize(
    ("max_tiles", "max_side", "expected"),
    [
        (None, None, (3, None)),  # the model's limits
        (6, None, (None, 6)),  # tiles alone: no side bound
        (None, 4, (4, None)),
        (6, 2, (2, 6)),
    ],
)
def test_limits_combine_as_in_the_grid_command(max_tiles, max_side, expected) -> None:
    cfg = with_grid_limits(VisionConfig(max_side=3), max_tiles=max_tiles, max_side=max_side)
    assert (cfg.max_side, cfg.max_tiles) == expected


def test_max_tiles_alone_lets_internvl_pick_a_long_grid() -> None:
    """A 5:1 panorama: with the side bound lifted, 5 tiles in a row fit max_tiles 6; with side 3 they cannot."""
    base = VisionConfig(policy=GridPolicy.INTERNVL, max_side=3, thumbnail=ThumbnailPosition.NONE)
    lifted = plan_grid("2000x400", with_grid_limits(base, max_tiles=6, max_side=None))
    bounded = plan_grid("2000x400", base)
    assert (lifted.grid.cols, lifted.grid.rows) == (5, 1)
    assert bounded.grid.cols <= 3
