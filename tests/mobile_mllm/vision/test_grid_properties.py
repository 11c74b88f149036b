"""Property-based tests (Hypothesis) of grid planning: every policy, every limit, any size from 1 to 20000.

The newcomer's ``grid 1x5000`` ended in a bare ``AssertionError``; hand-picked cases had missed it.
These draw the whole space instead and check what must hold for every draw, against rules that
do not depend on how the grid was chosen:

- the grid respects ``max_side`` / ``max_tiles``;
- the local tiles' boxes partition the image (every pixel in exactly one tile, in row-major
  order), the resized image lies on the canvas, and the canvas is ``cols*S x rows*S``;
- tile and token counts follow from the grid and the thumbnail rule;
- ``mobile-mllm grid`` prints what the processor plans, and ``preprocess`` cuts what was planned.
"""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mobile_mllm import cli
from mobile_mllm.errors import ContextOverflowError
from mobile_mllm.vision.grid import GridPolicy, Size, ThumbnailPosition
from mobile_mllm.vision.processor import VisionConfig, plan_tiles, preprocess

SIDES = st.integers(min_value=1, max_value=20000)


@st.composite
def vision_configs(draw: st.DrawFn, tile_sizes: st.SearchStrategy[int] = st.sampled_from([14, 64, 96, 384, 448])) -> VisionConfig:
    """Any policy with any side and/or tile limit (at least one), alpha, thumbnail rule and tile geometry."""
    max_side = draw(st.none() | st.integers(1, 12))
    max_tiles = draw(st.integers(1, 144)) if max_side is None else draw(st.none() | st.integers(1, 144))
    return VisionConfig(
        policy=draw(st.sampled_from(list(GridPolicy))),
        tile_size=draw(tile_sizes),
        max_side=max_side,
        max_tiles=max_tiles,
        alpha=draw(st.sampled_from([0.0, 0.05, 0.1, 0.5, 2.0])),
        thumbnail=draw(st.sampled_from(list(ThumbnailPosition))),
        thumbnail_for_single=draw(st.booleans()),
        tokens_per_tile=draw(st.integers(1, 400)),
    )


@settings(max_examples=300, deadline=None)
@given(cfg=vision_configs(), width=SIDES, height=SIDES)
def test_every_size_gets_a_grid_within_limits_whose_tiles_partition_the_image(cfg: VisionConfig, width: int, height: int) -> None:
    plan = plan_tiles(Size(width, height), cfg)
    grid, s = plan.grid, cfg.tile_size
    assert grid.cols >= 1 and grid.rows >= 1
    if cfg.max_side is not None:
        assert grid.cols <= cfg.max_side and grid.rows <= cfg.max_side
    if cfg.max_tiles is not None:
        assert grid.num_tiles <= cfg.max_tiles
    # the canvas and where the resized image sits on it
    assert plan.canvas == Size(grid.cols * s, grid.rows * s)
    lay = plan.layout
    assert 1 <= lay.resized.width and 1 <= lay.resized.height
    assert 0 <= lay.left and lay.left + lay.resized.width <= plan.canvas.width
    assert 0 <= lay.top and lay.top + lay.resized.height <= plan.canvas.height
    if cfg.policy is not GridPolicy.INTERNVL:  # aspect kept: one side fills the canvas
        assert lay.resized.width == plan.canvas.width or lay.resized.height == plan.canvas.height
    else:  # stretched
        assert lay.resized == plan.canvas
    # tile and token counts
    thumb = cfg.thumbnail is not ThumbnailPosition.NONE and (grid.num_tiles > 1 or cfg.thumbnail_for_single)
    assert plan.num_local_tiles == grid.num_tiles
    assert plan.num_tiles == grid.num_tiles + thumb == len(plan.boxes)
    assert plan.image_tokens == plan.num_tiles * cfg.tokens_per_tile
    assert (plan.thumbnail_index is not None) == thumb
    # the local boxes partition the image: inside it, row-major, neighbours share edges, areas add up
    local = [b for i, b in enumerate(plan.boxes) if i != plan.thumbnail_index]
    rows = [local[r * grid.cols : (r + 1) * grid.cols] for r in range(grid.rows)]
    for row in rows:
        assert row[0].left == 0 and row[-1].right == width
        assert all(a.right == b.left for a, b in zip(row, row[1:]))
        assert all(b.top == row[0].top and b.bottom == row[0].bottom for b in row)
    assert rows[0][0].top == 0 and rows[-1][0].bottom == height
    assert all(a[0].bottom == b[0].top for a, b in zip(rows, rows[1:]))
    assert sum(max(0, b.right - b.left) * max(0, b.bottom - b.top) for b in local) == width * height
    if thumb:
        whole = plan.boxes[plan.thumbnail_index]
        assert (whole.left, whole.top, whole.right, whole.bottom) == (0, 0, width, height)


@settings(max_examples=150, deadline=None)
@given(cfg=vision_configs(), width=SIDES, height=SIDES, budget=st.integers(1, 20000))
def test_a_token_budget_gives_a_grid_within_it_or_one_clear_error(cfg: VisionConfig, width: int, height: int, budget: int) -> None:
    try:
        plan = plan_tiles(Size(width, height), cfg, token_budget=budget)
    except ContextOverflowError as e:
        smallest = (1 + (cfg.thumbnail is not ThumbnailPosition.NONE and cfg.thumbnail_for_single)) * cfg.tokens_per_tile
        assert budget < smallest and f"token budget {budget} is below the {smallest} image tokens" in str(e)
        return
    assert plan.image_tokens <= budget
    unbounded = plan_tiles(Size(width, height), cfg)
    assert plan.preferred_grid == unbounded.grid
    assert plan.reduced_by_budget == (unbounded.image_tokens > budget)
    if cfg.max_side is not None:
        assert plan.grid.cols <= cfg.max_side and plan.grid.rows <= cfg.max_side
    if cfg.max_tiles is not None:
        assert plan.grid.num_tiles <= cfg.max_tiles


def _grid_flags(cfg: VisionConfig) -> list[str]:
    """The flags that make ``mobile-mllm grid`` use exactly ``cfg``'s grid settings."""
    flags = ["--policy", cfg.policy.value, "--tile-size", str(cfg.tile_size), "--alpha", repr(cfg.alpha),
             "--thumbnail", cfg.thumbnail.value, "--tokens-per-tile", str(cfg.tokens_per_tile),
             "--thumbnail-for-single" if cfg.thumbnail_for_single else "--no-thumbnail-for-single"]
    if cfg.max_side is not None:
        flags += ["--max-side", str(cfg.max_side)]
    if cfg.max_tiles is not None:
        flags += ["--max-tiles", str(cfg.max_tiles)]
    if cfg.max_side is not None and cfg.max_tiles is None:
        flags += ["--max-tiles", "none"]
    return flags


@settings(max_examples=60, deadline=None)
@given(cfg=vision_configs(), width=SIDES, height=SIDES)
def test_grid_command_prints_what_the_processor_plans(cfg: VisionConfig, width: int, height: int) -> None:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main(["-q", "grid", f"{width}x{height}", *_grid_flags(cfg), "--json"])
    assert code == 0
    printed = json.loads(out.getvalue())
    assert printed.pop("model") == "builtin:synth-small"
    assert printed == plan_tiles(Size(width, height), cfg).summary()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=vision_configs(st.sampled_from([8, 14, 32])), width=st.integers(1, 600), height=st.integers(1, 600))
def test_preprocess_cuts_what_was_planned(cfg: VisionConfig, width: int, height: int) -> None:
    pixels = np.random.default_rng(width * 7919 + height).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = preprocess(pixels, cfg)
    plan = plan_tiles(Size(width, height), cfg)
    assert out.plan == plan
    assert tuple(out.tiles.shape) == (plan.num_tiles, 3, cfg.tile_size, cfg.tile_size)
