"""Grid policies against the shared test vectors, the paper's worked examples and hand-traced cases."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from vision_testdata import grid_cases_paths, load_grid_cases

from mobile_mllm.errors import ConfigError, ContextOverflowError, ImageError
from mobile_mllm.vision.grid import (
    Grid,
    GridPolicy,
    Resolution,
    Size,
    ThumbnailPosition,
    candidate_grids,
    resolution_on,
    select_grid,
    select_internvl,
    select_llava_next,
    select_relaxed,
)
from mobile_mllm.vision.processor import VisionConfig


GRID_CASES = load_grid_cases()
POLICIES = ("relaxed", "llava_next", "internvl")


def _cfg_for_row(row: dict, policy: str) -> VisionConfig:
    """The testdata convention: relaxed/llava_next bound m, n; internvl bounds m*n by max_side**2."""
    k = row["max_side"]
    if policy == "internvl":
        return VisionConfig(policy=GridPolicy(policy), tile_size=row["base"], max_side=None, max_tiles=k * k)
    return VisionConfig(policy=GridPolicy(policy), tile_size=row["base"], max_side=k, max_tiles=None)


def test_grid_cases_copy_matches_shared() -> None:
    shared, copy = grid_cases_paths()
    if not shared.is_file():
        pytest.skip("shared/ not present (clone elsewhere); the copy is the only source")
    assert json.loads(copy.read_text()) == json.loads(shared.read_text())
    assert len(GRID_CASES) == 120


@pytest.mark.parametrize(
    ("row", "policy"),
    [(row, policy) for row in GRID_CASES for policy in POLICIES],
    ids=[f"{r['width']}x{r['height']}-side{r['max_side']}-{p}" for r in GRID_CASES for p in POLICIES],
)
def test_grid_cases_row(row: dict, policy: str) -> None:
    choice = select_grid(Size(row["width"], row["height"]), _cfg_for_row(row, policy))
    assert [choice.grid.cols, choice.grid.rows] == row[policy]


@pytest.mark.parametrize(
    ("size", "relaxed", "other_policy", "other"),
    [
        (Size(394, 390), Grid(1, 1), "llava_next", Grid(2, 2)),
        (Size(380, 393), Grid(1, 1), "llava_next", Grid(1, 2)),
        (Size(500, 102), Grid(2, 1), "internvl", Grid(5, 1)),
        (Size(380, 76), Grid(1, 1), "internvl", Grid(5, 1)),
    ],
)
def test_paper_worked_examples_max_side_3(size: Size, relaxed: Grid, other_policy: str, other: Grid) -> None:
    assert select_grid(size, VisionConfig(max_side=3)).grid == relaxed
    if other_policy == "internvl":
        cfg = VisionConfig(policy=GridPolicy.INTERNVL, max_side=None, max_tiles=9)
    else:
        cfg = VisionConfig(policy=GridPolicy.LLAVA_NEXT, max_side=3)
    assert select_grid(size, cfg).grid == other


def test_phone_screenshot_picks_2x4_with_9_tiles_1764_tokens() -> None:
    choice = select_grid(Size(1080, 2400), VisionConfig(max_side=4))
    assert (choice.grid, choice.num_tiles, choice.image_tokens) == (Grid(2, 4), 9, 1764)
    assert choice.canvas == Size(768, 1536)
    assert choice.has_thumbnail and not choice.reduced_by_budget


def test_resolution_hand_computed() -> None:
    # 394x390 on 1:1: scale = 384/394, so 384 x int(390*384/394) = 384 x 380
    assert resolution_on(Size(394, 390), Grid(1, 1), 384) == Resolution(384 * 380, 384 * 384 - 384 * 380)
    # on 2:2 the image is upscaled: Re is capped at the original 394*390 pixels
    assert resolution_on(Size(394, 390), Grid(2, 2), 384) == Resolution(394 * 390, 768 * 768 - 394 * 390)


def test_relaxed_keeps_smaller_grid_within_alpha() -> None:
    # 100x100 fills every grid with the same Re (capped at 10000 pixels). With alpha 0.1 each
    # smaller grid is within alpha and wastes less, so the walk ends at 1:1. With alpha 0 the
    # "within alpha" test (Re_max - Re < 0) never holds and the first grid visited, 3:3, stays.
    cands = candidate_grids(3, None)
    assert select_relaxed(Size(100, 100), cands, 384, 0.1) == Grid(1, 1)
    assert select_relaxed(Size(100, 100), cands, 384, 0.0) == Grid(3, 3)
    assert select_grid(Size(100, 100), VisionConfig(alpha=0.0)).grid == Grid(3, 3)


def test_relaxed_overwrites_re_max_so_it_drifts_down() -> None:
    # 386x406, hand trace (Re, Rw): 3:3 (156716, 1170388) accept; 3:2 (156716, 728020) accept;
    # 3:1 (140160, ...) 16556 >= 0.1*156716 reject; 2:3 same Rw reject; 2:2 (156716, 433108)
    # accept; 2:1 reject; 1:3 (154752, 287616) accept -> Re_max drops to 154752;
    # 1:2 (154752, 140160) accept; 1:1 (140160, 7296): 14592 < 15475.2 and less waste -> accept.
    # A running maximum (Re_max stays 156716) would reject 1:1 and answer 1:2.
    assert select_relaxed(Size(386, 406), candidate_grids(3, None), 384, 0.1) == Grid(1, 1)


def test_relaxed_enumerates_candidates_in_descending_order() -> None:
    # Hand-traced for 100x804, max side 3: descending visits 3:3 (Re 80400), 3:2 (72960, less
    # waste), 2:3 (80400 - 72960 = 7440 > 0.1 * 72960), 2:2, 1:3, then 1:2 (within alpha, less
    # waste) -> 1:2. Ascending would end on 1:3, so this pins the order the paper prescribes.
    assert select_relaxed(Size(100, 804), candidate_grids(3, None), 384, 0.1) == Grid(1, 2)


def test_llava_next_breaks_exact_ties_by_less_waste() -> None:
    # every grid holds all 100x100 pixels (same Re): the least-waste grid, 1:1, wins
    assert select_llava_next(Size(100, 100), candidate_grids(3, None), 384) == Grid(1, 1)
    # an image exactly one 3:2 canvas: only 3:2 keeps every pixel
    assert select_llava_next(Size(1152, 768), candidate_grids(3, None), 384) == Grid(3, 2)


@pytest.mark.parametrize(("side", "expected"), [(300, Grid(1, 1)), (600, Grid(2, 2)), (1000, Grid(3, 3))])
def test_internvl_tie_prefers_larger_grid_only_when_area_exceeds_half_its_canvas(side: int, expected: Grid) -> None:
    # square image: 1:1, 2:2, 3:3 tie on ratio; k:k replaces when side^2 > 0.5 * 384^2 * k^2
    # 300^2 = 90000 < 294912 (2:2); 600^2 = 360000 > 294912 but < 663552 (3:3); 1000^2 > 663552
    assert select_internvl(Size(side, side), candidate_grids(None, 9), 384) == expected


def test_candidates_by_side_by_count_and_both() -> None:
    assert len(candidate_grids(3, None)) == 9
    assert Grid(5, 1) in candidate_grids(None, 9) and Grid(4, 3) not in candidate_grids(None, 9)
    both = candidate_grids(4, 6)
    assert all(g.cols <= 4 and g.rows <= 4 and g.num_tiles <= 6 for g in both)
    assert Grid(2, 3) in both and Grid(6, 1) not in both and Grid(4, 2) not in both


def test_max_side_bounds_internvl_too() -> None:
    assert select_grid(Size(380, 76), VisionConfig(policy=GridPolicy.INTERNVL, max_side=3)).grid == Grid(3, 1)


def test_token_budget_reduces_grid() -> None:
    cfg = VisionConfig(max_side=4)
    # 1764 tokens (2:4 + thumbnail) do not fit 1000: only grids with <= 5 tiles incl. thumbnail
    # remain; relaxed among them: 1:4 and 1:3 both hold 384x853 pixels, 1:3 wastes less.
    choice = select_grid(Size(1080, 2400), cfg, token_budget=1000)
    assert (choice.grid, choice.preferred, choice.image_tokens) == (Grid(1, 3), Grid(2, 4), 4 * 196)
    assert choice.reduced_by_budget
    same = select_grid(Size(1080, 2400), cfg, token_budget=1764)
    assert same.grid == Grid(2, 4) and not same.reduced_by_budget


def test_token_budget_counts_thumbnail_per_config() -> None:
    no_thumb = VisionConfig(max_side=4, thumbnail=ThumbnailPosition.NONE)
    choice = select_grid(Size(1080, 2400), no_thumb, token_budget=8 * 196)
    assert choice.grid == Grid(2, 4) and choice.num_tiles == 8 and not choice.has_thumbnail
    # the smallest grid costs one tile without a thumbnail for 1x1, two with thumbnail_for_single
    assert select_grid(Size(100, 100), VisionConfig(), token_budget=196).grid == Grid(1, 1)
    with pytest.raises(ContextOverflowError, match=r"token budget 196 is below the 392 image tokens"):
        select_grid(Size(100, 100), VisionConfig(thumbnail_for_single=True), token_budget=196)


def test_token_budget_below_one_tile_is_an_error() -> None:
    with pytest.raises(ContextOverflowError, match=r"token budget 195 .* raise the budget"):
        select_grid(Size(1080, 2400), VisionConfig(), token_budget=195)


def test_bad_sizes_and_bounds_raise() -> None:
    with pytest.raises(ImageError, match="image size must be positive, got 0x5"):
        select_grid(Size(0, 5), VisionConfig())
    with pytest.raises(ConfigError, match="neither bounds the grid"):
        candidate_grids(None, None)
    with pytest.raises(ConfigError, match=r"max_tiles must be in 1\.\.10000, got 0"):
        VisionConfig(max_tiles=0)
    with pytest.raises(ConfigError, match=r"max_side must be in 1\.\.100, got 1000 \(more tiles than"):
        VisionConfig(max_side=1000)
    for alpha in (float("nan"), float("inf"), -0.5):
        with pytest.raises(ConfigError, match="alpha must be a finite number >= 0"):
            VisionConfig(alpha=alpha)


@pytest.mark.parametrize("policy", list(GridPolicy))
@pytest.mark.parametrize("size", [Size(1, 5000), Size(5000, 1), Size(2, 5000), Size(1, 20000)])
def test_thin_images_get_a_grid(policy: GridPolicy, size: Size) -> None:
    # The newcomer's 1x5000 strip: Re = 0 on every 3x3 candidate; relaxed used to accept none.
    choice = select_grid(size, VisionConfig(policy=policy))
    assert 1 <= choice.grid.cols <= 3 and 1 <= choice.grid.rows <= 3


def test_relaxed_with_zero_effective_resolution_everywhere_takes_the_least_waste() -> None:
    # 1x5000 on S=384, max side 3: int(1 * min(384m/1, 384n/5000)) = 0 for every grid, so Re = 0
    # and every grid ties on detail; 1:1 wastes the least (384*384 - 0). Hand-computed.
    assert all(resolution_on(Size(1, 5000), g, 384).effective == 0 for g in candidate_grids(3, None))
    assert select_relaxed(Size(1, 5000), candidate_grids(3, None), 384, 0.1) == Grid(1, 1)
    # Once a taller grid keeps a pixel across (1x14 holds 5376 px > 5000), it wins on detail.
    assert select_relaxed(Size(1, 5000), candidate_grids(14, None), 384, 0.1) == Grid(1, 14)


def test_grid_module_imports_no_pil_or_torch() -> None:
    code = (
        "import sys, mobile_mllm.vision.grid, mobile_mllm.vision.processor; "
        "print(sorted(m for m in ('PIL', 'torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_examples() -> None:
    import doctest  # noqa: PLC0415

    import mobile_mllm.vision.grid as module  # noqa: PLC0415

    assert doctest.testmod(module).failed == 0
