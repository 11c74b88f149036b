"""Tile-grid selection for dynamic-resolution image encoding. Pure Python: no PIL, no torch.

An image of ``W0 x H0`` pixels is encoded as ``m x n`` square tiles of ``S`` pixels (``m``
across, ``n`` down) on a canvas of ``S*m x S*n``. This module decides ``m x n`` from the image
size alone, so the runtime can check a token budget before any pixel is decoded. Three rules:

- ``relaxed``: BlueLM-V-3B Algorithm 1 (relaxed aspect-ratio matching), candidates in
  descending order, accepts a grid within ``alpha`` of the best effective resolution when it
  wastes less, and overwrites ``Re_max`` on every acceptance (so it can drift down).
- ``llava_next``: largest effective resolution, exact ties broken by less waste, candidates in
  ascending order (LLaVA-NeXT's ``select_best_resolution``).
- ``internvl``: closest aspect ratio (InternVL 1.5's ``find_closest_aspect_ratio``), candidates
  ordered by tile count; on an exact tie in ratio distance the later (larger) grid wins only
  when the image area exceeds half of that grid's canvas area.
- ``smolvlm``: SmolVLM/Idefics3 image splitting. The longest edge is resized to
  ``longest_edge_px`` (aspect kept, the other side made even), then both sides are rounded up
  to whole tiles; the grid is what that canvas holds. Not a choice among candidates: the
  longest edge is lowered by whole tiles until the grid is a candidate (what a user of the HF
  processor does with a smaller ``size``), so a bound or budget gives the grid of a smaller
  ``longest_edge_px``.

Candidates are all grids with ``m, n <= max_side`` and/or ``m * n <= max_tiles``. A token
budget removes candidates whose image tokens (local tiles plus the thumbnail, times
``tokens_per_tile``) do not fit; the policy's own rule then picks among the rest.

Deliberately not here: resizing, padding, cutting (``tiling.py``) and pixels of any kind.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass


from mobile_mllm.errors import ConfigError, ContextOverflowError, ImageError
from mobile_mllm.vision.config import GridPolicy, ThumbnailPosition, VisionConfig


logger = logging.getLogger(__name__)

__all__ = [
    "Grid",
    "GridChoice",
    "GridPolicy",
    "Resolution",
    "Size",
    "ThumbnailPosition",
    "candidate_grids",
    "count_tiles",
    "has_thumbnail",
    "resolution_on",
    "select_grid",
    "select_internvl",
    "select_llava_next",
    "select_relaxed",
    "select_smolvlm",
    "smolvlm_edges",
    "smolvlm_sizes",
]


@dataclass(frozen=True)
class Size:
    """A width x height in pixels (never a bare tuple across a function boundary)."""

    width: int
    height: int

    @property
    def area(self) -> int:
        """Pixels (width * height)."""
        return self.width * self.height

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


@dataclass(frozen=True)
class Grid:
    """A tile grid: ``cols`` tiles across (m), ``rows`` tiles down (n), as in the paper."""

    cols: int
    rows: int

    @property
    def num_tiles(self) -> int:
        """Local tiles (the thumbnail is not counted)."""
        return self.cols * self.rows

    def canvas(self, tile_size: int) -> Size:
        """The canvas this grid covers with ``tile_size``-pixel tiles."""
        return Size(self.cols * tile_size, self.rows * tile_size)

    def __str__(self) -> str:
        return f"{self.cols}:{self.rows}"


@dataclass(frozen=True)
class Resolution:
    """How well an image fills a grid's canvas after an aspect-preserving resize."""

    effective: int
    """Re: pixels of the resized image, capped at the original pixel count (upscaling adds nothing)."""
    wasted: int
    """Rw: canvas pixels not covered by effective resolution."""


@dataclass(frozen=True)
class GridChoice:
    """The grid picked for one image and what it costs in tiles and tokens."""

    grid: Grid
    """The chosen grid (after the token budget, if any)."""
    policy: GridPolicy
    """The rule that chose it."""
    canvas: Size
    """Canvas of the grid in pixels (tile_size * cols x tile_size * rows)."""
    num_tiles: int
    """Tiles the vision encoder sees: local tiles plus the thumbnail when there is one."""
    has_thumbnail: bool
    """Whether a thumbnail (global view) is encoded with the local tiles."""
    image_tokens: int
    """num_tiles * tokens_per_tile."""
    preferred: Grid
    """What the policy picks without a budget (equals ``grid`` unless the budget reduced it)."""

    @property
    def reduced_by_budget(self) -> bool:
        """Whether the token budget forced a smaller grid than the policy prefers."""
        return self.grid != self.preferred


def candidate_grids(max_side: int | None, max_tiles: int | None) -> tuple[Grid, ...]:
    """All grids allowed by a side bound and/or a tile-count bound, in ascending (m, n) order.

    ``max_side`` bounds m and n; ``max_tiles`` bounds m * n (the thumbnail is not counted);
    with only ``max_tiles`` a grid may be as long as ``max_tiles x 1``.

    Args:
        max_side (int | None): largest m and n, or None for no side bound.
        max_tiles (int | None): largest m * n, or None for no count bound.

    Returns:
        Grids sorted lexicographically on (cols, rows).

    Raises:
        ConfigError: when both bounds are None or one is below 1.

    Example:
        >>> [str(g) for g in candidate_grids(2, None)]
        ['1:1', '1:2', '2:1', '2:2']
        >>> [str(g) for g in candidate_grids(None, 3)]
        ['1:1', '1:2', '1:3', '2:1', '3:1']
    """
    if max_side is None and max_tiles is None:
        raise ConfigError("vision: set max_side or max_tiles (or both); neither bounds the grid")
    for name, value in (("max_side", max_side), ("max_tiles", max_tiles)):
        if value is not None and value < 1:
            raise ConfigError(f"vision.{name} must be >= 1, got {value}")
    side = max_side if max_side is not None else max_tiles
    assert side is not None  # one of the two is set (checked above)
    return tuple(  # n runs only as far as m * n <= max_tiles: O(max_tiles log max_tiles) grids, not side**2
        Grid(m, n)
        for m in range(1, side + 1)
        for n in range(1, (side if max_tiles is None else min(side, max_tiles // m)) + 1)
    )


def resolution_on(image_size: Size, grid: Grid, tile_size: int) -> Resolution:
    """Effective and wasted resolution of an image resized (aspect kept) into a grid's canvas.

    As in the paper: ``scale = min(S*m / W0, S*n / H0)``,
    ``Re = min(int(W0*scale) * int(H0*scale), W0*H0)``, ``Rw = S*m * S*n - Re``.

    Example:
        >>> resolution_on(Size(394, 390), Grid(1, 1), 384)
        Resolution(effective=145920, wasted=1536)
        >>> resolution_on(Size(394, 390), Grid(2, 2), 384)
        Resolution(effective=153660, wasted=436164)
    """
    canvas = grid.canvas(tile_size)
    scale = min(canvas.width / image_size.width, canvas.height / image_size.height)
    effective = min(int(image_size.width * scale) * int(image_size.height * scale), image_size.area)
    return Resolution(effective=effective, wasted=canvas.area - effective)


def select_relaxed(image_size: Size, candidates: tuple[Grid, ...], tile_size: int, alpha: float) -> Grid:
    """BlueLM-V-3B Algorithm 1: relaxed aspect-ratio matching.

    Candidates are visited in descending (m, n) order. A grid is accepted when
    ``Re - Re_max > alpha * Re_max`` (clearly more detail) or when
    ``Re_max - Re < alpha * Re_max and Rw < Rw_min`` (about as much detail, less waste); on
    acceptance ``Re_max`` and ``Rw_min`` are overwritten with the grid's values. The relaxation
    lets a smaller grid beat a larger one that only upscales, which saves tiles.

    Args:
        image_size (Size): original image size.
        candidates (tuple[Grid, ...]): allowed grids, any order (they are sorted here).
        tile_size (int): tile side S in pixels.
        alpha (float): relaxation; 0 makes it a strict largest-resolution rule.

    Returns:
        The accepted grid visited last.

    Example:
        >>> c = candidate_grids(3, None)
        >>> str(select_relaxed(Size(394, 390), c, 384, 0.1)), str(select_relaxed(Size(380, 393), c, 384, 0.1))
        ('1:1', '1:1')
        >>> str(select_relaxed(Size(500, 102), c, 384, 0.1)), str(select_relaxed(Size(380, 76), c, 384, 0.1))
        ('2:1', '1:1')
        >>> str(select_relaxed(Size(1080, 2400), candidate_grids(4, None), 384, 0.1))
        '2:4'
        >>> str(select_relaxed(Size(1, 5000), c, 384, 0.1))  # Re = 0 on every grid: least waste
        '1:1'
    """
    best: Grid | None = None
    re_max = 0
    rw_min = math.inf
    for grid in sorted(_require(candidates), key=lambda g: (g.cols, g.rows), reverse=True):
        res = resolution_on(image_size, grid, tile_size)
        # Re == Re_max == 0 counts as "about as much detail": an image so thin that no grid keeps
        # a whole pixel across it (1x5000 on 3 tiles) has Re = 0 everywhere, and the paper's strict
        # comparisons would accept nothing; then the least wasteful grid wins.
        about_as_much = re_max - res.effective < alpha * re_max or res.effective == re_max == 0
        if res.effective - re_max > alpha * re_max or (about_as_much and res.wasted < rw_min):
            best, re_max, rw_min = grid, res.effective, res.wasted
    assert best is not None  # the first candidate always passes: Re > 0, or Re == 0 with Rw < inf
    return best


def select_llava_next(image_size: Size, candidates: tuple[Grid, ...], tile_size: int) -> Grid:
    """LLaVA-NeXT: the grid with the largest effective resolution; exact ties go to less waste.

    Candidates are visited in ascending (m, n) order and only a strictly better grid replaces
    the current one, so among identical (Re, Rw) the smallest grid wins. Small images get
    enlarged, since upscaling never lowers Re.

    Example:
        >>> c = candidate_grids(3, None)
        >>> str(select_llava_next(Size(394, 390), c, 384)), str(select_llava_next(Size(380, 393), c, 384))
        ('2:2', '1:2')
    """
    best = _require(candidates)[0]
    best_res = Resolution(effective=-1, wasted=0)
    for grid in sorted(candidates, key=lambda g: (g.cols, g.rows)):
        res = resolution_on(image_size, grid, tile_size)
        if res.effective > best_res.effective or (
            res.effective == best_res.effective and res.wasted < best_res.wasted
        ):
            best, best_res = grid, res
    return best


def select_internvl(image_size: Size, candidates: tuple[Grid, ...], tile_size: int) -> Grid:
    """InternVL 1.5: the grid whose ratio m/n is closest to W0/H0.

    Candidates are visited by tile count (then (m, n)); a strictly closer ratio replaces the
    current pick, and an equally close one replaces it only when the image has more pixels
    than half of that grid's canvas (so large images move to the larger of equal ratios).
    It stretches the image to the canvas, so thin images get many tiles (380x76 -> 5:1).

    Example:
        >>> c = candidate_grids(None, 9)
        >>> str(select_internvl(Size(500, 102), c, 384)), str(select_internvl(Size(380, 76), c, 384))
        ('5:1', '5:1')
        >>> [str(select_internvl(Size(s, s), c, 384)) for s in (300, 600, 1000)]
        ['1:1', '2:2', '3:3']
    """
    aspect = image_size.width / image_size.height
    best = Grid(1, 1)
    best_diff = math.inf
    for grid in sorted(_require(candidates), key=lambda g: (g.num_tiles, g.cols, g.rows)):
        diff = abs(aspect - grid.cols / grid.rows)
        if diff < best_diff:
            best, best_diff = grid, diff
        elif diff == best_diff and image_size.area > 0.5 * tile_size * tile_size * grid.num_tiles:
            best = grid
    return best


_SMOLVLM_MAX_PX = 4096
"""SmolVLM's absolute bound on the resized image's longest edge (its processor's MAX_IMAGE_SIZE)."""


def _fit_longest(image_size: Size, edge: int, *, even: bool) -> Size:
    """Scale so the longest side is ``edge``, the other ``int(edge / aspect)`` (made even when asked)."""
    width, height = image_size.width, image_size.height
    aspect = width / height
    if width >= height:
        width, height = edge, int(edge / aspect)
        height += int(even and height % 2 != 0)
    else:
        width, height = int(edge * aspect), edge
        width += int(even and width % 2 != 0)
    return Size(max(width, 1), max(height, 1))


def smolvlm_sizes(image_size: Size, longest_edge_px: int, tile_size: int) -> tuple[Size, Size]:
    """The two resizes of SmolVLM's splitting: longest edge to ``longest_edge_px``, then up to whole tiles.

    Both follow SmolVLM/Idefics3's processor arithmetic (``int`` truncation, the short side made
    even, at most 4096 px; the second resize rounds the long side up to a multiple of
    ``tile_size`` and derives the short side from it before rounding that up too).

    Returns:
        (first, canvas): the size after the first resize, and the canvas (a multiple of the tile).

    Example:
        >>> [str(s) for s in smolvlm_sizes(Size(1000, 600), 2048, 512)]
        ['2048x1228', '2048x1536']
        >>> [str(s) for s in smolvlm_sizes(Size(300, 1000), 1024, 512)]
        ['308x1024', '512x1024']
    """
    first = _fit_longest(image_size, longest_edge_px, even=True)
    if max(first.width, first.height) > _SMOLVLM_MAX_PX:
        first = _fit_longest(first, _SMOLVLM_MAX_PX, even=False)
    aspect = first.width / first.height
    if first.width >= first.height:
        width = math.ceil(first.width / tile_size) * tile_size
        height = math.ceil(int(width / aspect) / tile_size) * tile_size
    else:
        height = math.ceil(first.height / tile_size) * tile_size
        width = math.ceil(int(height * aspect) / tile_size) * tile_size
    return first, Size(max(width, tile_size), max(height, tile_size))


def smolvlm_edges(longest_edge_px: int, tile_size: int) -> tuple[int, ...]:
    """The longest edges the smolvlm policy tries, largest first: the configured one, then whole tiles below it.

    Example:
        >>> smolvlm_edges(2048, 512)
        (2048, 1536, 1024, 512)
    """
    below = range(math.ceil(longest_edge_px / tile_size) - 1, 0, -1)
    return (longest_edge_px, *(k * tile_size for k in below))


def select_smolvlm(image_size: Size, candidates: tuple[Grid, ...], tile_size: int, longest_edge_px: int) -> Grid:
    """SmolVLM's grid: that of the largest longest edge (:func:`smolvlm_edges`) whose grid is a candidate.

    Example:
        >>> cands = candidate_grids(4, None)
        >>> str(select_smolvlm(Size(1000, 600), cands, 512, 2048)), str(select_smolvlm(Size(1000, 600), cands[:5], 512, 2048))
        ('4:3', '1:1')
    """
    allowed = set(_require(candidates))
    for edge in smolvlm_edges(longest_edge_px, tile_size):
        canvas = smolvlm_sizes(image_size, edge, tile_size)[1]
        grid = Grid(canvas.width // tile_size, canvas.height // tile_size)
        if grid in allowed:
            return grid
    raise ConfigError(
        f"no longest edge up to {longest_edge_px} px gives {image_size} a grid within vision.max_side/max_tiles; "
        "allow the 1:1 grid"
    )


def has_thumbnail(grid: Grid, cfg: VisionConfig) -> bool:
    """Whether a grid gets a thumbnail: never with ``thumbnail="none"``, for 1x1 only if asked.

    Example:
        >>> from mobile_mllm.vision.config import VisionConfig
        >>> has_thumbnail(Grid(1, 1), VisionConfig()), has_thumbnail(Grid(2, 1), VisionConfig())
        (False, True)
    """
    if ThumbnailPosition(cfg.thumbnail) is ThumbnailPosition.NONE:
        return False
    return grid.num_tiles > 1 or cfg.thumbnail_for_single


def count_tiles(grid: Grid, cfg: VisionConfig) -> int:
    """Tiles the encoder sees for a grid: local tiles plus the thumbnail when there is one.

    Example:
        >>> from mobile_mllm.vision.config import VisionConfig
        >>> count_tiles(Grid(2, 4), VisionConfig()) * VisionConfig().tokens_per_tile
        1764
    """
    return grid.num_tiles + int(has_thumbnail(grid, cfg))


_SELECTORS = {
    GridPolicy.RELAXED: lambda size, cands, cfg: select_relaxed(size, cands, cfg.tile_size, cfg.alpha),
    GridPolicy.LLAVA_NEXT: lambda size, cands, cfg: select_llava_next(size, cands, cfg.tile_size),
    GridPolicy.INTERNVL: lambda size, cands, cfg: select_internvl(size, cands, cfg.tile_size),
    GridPolicy.SMOLVLM: lambda size, cands, cfg: select_smolvlm(size, cands, cfg.tile_size, cfg.smolvlm_longest_edge_px),
}


def select_grid(image_size: Size, cfg: VisionConfig, *, token_budget: int | None = None) -> GridChoice:
    """Pick the tile grid for an image size under ``cfg``'s policy, bounds and a token budget.

    With a budget, grids whose image tokens exceed it are removed before the policy runs, so
    the budget changes which grids are allowed, never how they are compared.

    Args:
        image_size (Size): original image size (after EXIF orientation).
        cfg (VisionConfig): policy, tile size, bounds, alpha, thumbnail rule, tokens per tile.
        token_budget (int | None): largest number of image tokens allowed, or None. Default None.

    Returns:
        GridChoice: the grid, its canvas, tile and token counts, and the grid the policy
        would pick without the budget.

    Raises:
        ImageError: when the size is not positive.
        ContextOverflowError: when even the smallest candidate needs more tokens than the budget.

    Example:
        >>> from mobile_mllm.vision.config import VisionConfig
        >>> choice = select_grid(Size(1080, 2400), VisionConfig(max_side=4))
        >>> str(choice.grid), choice.num_tiles, choice.image_tokens
        ('2:4', 9, 1764)
        >>> small = select_grid(Size(1080, 2400), VisionConfig(max_side=4), token_budget=1000)
        >>> str(small.grid), small.image_tokens, small.reduced_by_budget
        ('1:3', 784, True)
    """
    if image_size.width <= 0 or image_size.height <= 0:
        raise ImageError(f"image size must be positive, got {image_size} (width x height)")
    policy = GridPolicy(cfg.policy)
    select = _SELECTORS[policy]
    candidates = candidate_grids(cfg.max_side, cfg.max_tiles)
    preferred = select(image_size, candidates, cfg)
    grid = preferred
    if token_budget is not None:
        fitting = tuple(g for g in candidates if count_tiles(g, cfg) * cfg.tokens_per_tile <= token_budget)
        if not fitting:
            smallest = min(count_tiles(g, cfg) for g in candidates) * cfg.tokens_per_tile
            raise ContextOverflowError(
                f"token budget {token_budget} is below the {smallest} image tokens of the smallest grid "
                f"({cfg.tokens_per_tile} per tile); raise the budget or lower vision.tokens_per_tile"
            )
        grid = select(image_size, fitting, cfg)
        if grid != preferred:
            logger.info(
                "token budget %d: grid %s (%d tokens) instead of %s (%d tokens)",
                token_budget,
                grid,
                count_tiles(grid, cfg) * cfg.tokens_per_tile,
                preferred,
                count_tiles(preferred, cfg) * cfg.tokens_per_tile,
            )
    num_tiles = count_tiles(grid, cfg)
    return GridChoice(
        grid=grid,
        policy=policy,
        canvas=grid.canvas(cfg.tile_size),
        num_tiles=num_tiles,
        has_thumbnail=has_thumbnail(grid, cfg),
        image_tokens=num_tiles * cfg.tokens_per_tile,
        preferred=preferred,
    )


def _require(candidates: tuple[Grid, ...]) -> tuple[Grid, ...]:
    if not candidates:
        raise ConfigError("no candidate grids to choose from; check vision.max_side and vision.max_tiles")
    return candidates
