"""InternVL preprocessing and prompt layout == HF's ``InternVLProcessor`` (pixel values, grid, image tokens, ids)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from internvl_models import hf_inputs, hf_processor

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.internvl.files import read_vision_config
from mobile_mllm.model.internvl.prompt import INTERNVL_PROMPT
from mobile_mllm.runtime.layout import TileRef, first_turn, image_block, special_token_ids
from mobile_mllm.vision.config import GridPolicy
from mobile_mllm.vision.grid import Size
from mobile_mllm.vision.processor import plan_tiles, preprocess

# (width, height): square, landscape, portrait, very thin both ways, tiny, huge, an exact-tie ratio
SIZES = [(448, 448), (1000, 300), (300, 1000), (800, 600), (50, 900), (1200, 40), (37, 23), (1920, 1080), (900, 900)]


def _image(size: tuple[int, int], seed: int):
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    # smooth gradients plus noise: resampling differences would show, flat colour would hide them
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) * 127 // max(w + h - 2, 1)], -1)
    noisy = np.clip(base + rng.integers(-40, 40, base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(noisy, "RGB")


def _layout_ids(directory: Path, image, question: str) -> tuple[list[int], int]:
    """Our first-turn token ids with each tile's positions written as <IMG_CONTEXT> (as HF's input_ids do)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    cfg = read_vision_config(directory)
    plan = plan_tiles(Size(*image.size), cfg)
    ids = special_token_ids(tokenizer, INTERNVL_PROMPT)
    block = image_block(INTERNVL_PROMPT, grid=plan.grid, thumbnail_index=plan.thumbnail_index,
                        tokens_per_tile=cfg.tokens_per_tile, token_ids=ids)
    segs = first_turn(INTERNVL_PROMPT, question, encode=lambda s: tokenizer.encode(s, add_special_tokens=False).ids,
                      token_ids=ids, image=block)
    context = tokenizer.token_to_id("<IMG_CONTEXT>")
    out: list[int] = []
    for seg in segs:
        out += [context] * seg.num_tokens if isinstance(seg, TileRef) else list(seg.ids)
    return out, plan.image_tokens


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_pixel_values_and_image_tokens_equal_hf_processor(real_size_processor_dir: Path, size: tuple[int, int]) -> None:
    image = _image(size, seed=size[0] * 7 + size[1])
    expected = hf_inputs(hf_processor(real_size_processor_dir), image, "Describe it.")
    ours = preprocess(image, read_vision_config(real_size_processor_dir))
    assert tuple(ours.tiles.shape) == tuple(expected["pixel_values"].shape)
    np.testing.assert_allclose(ours.tiles.numpy(), expected["pixel_values"].numpy(), rtol=0, atol=1e-5)
    ids, image_tokens = _layout_ids(real_size_processor_dir, image, "Describe it.")
    context = expected["input_ids"][0].tolist().count(hf_processor(real_size_processor_dir).image_token_id)
    assert image_tokens == context == 256 * ours.tiles.shape[0]
    assert ids == expected["input_ids"][0].tolist()


def test_grid_rule_equals_hf_on_many_sizes(real_size_processor_dir: Path) -> None:
    """The grid alone (no pixels) on 400 sizes, incl. exact ratio ties, against HF's get_optimal_tiled_canvas."""
    from transformers.models.got_ocr2.image_processing_pil_got_ocr2 import get_optimal_tiled_canvas

    cfg = read_vision_config(real_size_processor_dir)
    rng = np.random.default_rng(0)
    sizes = [(int(w), int(h)) for w, h in rng.integers(16, 4000, size=(380, 2))]
    sizes += [(448 * m, 448 * n) for m, n in ((1, 2), (2, 1), (2, 2), (3, 1), (1, 3), (3, 4), (4, 3), (2, 6))]
    sizes += [(300, 300), (600, 600), (1000, 1000), (224, 448), (500, 1000), (1000, 500), (1500, 500), (500, 1500)]
    sizes += [(1, 1000), (1000, 1), (5000, 2), (3, 3)]
    for w, h in sizes:
        cols, rows = get_optimal_tiled_canvas((h, w), (448, 448), 1, 12)
        plan = plan_tiles(Size(w, h), cfg)
        assert (plan.grid.cols, plan.grid.rows) == (cols, rows), (w, h)
        assert plan.num_tiles == cols * rows + (cols * rows > 1)


def test_vision_config_is_internvl3s(real_size_processor_dir: Path) -> None:
    cfg = read_vision_config(real_size_processor_dir)
    assert (cfg.policy, cfg.tile_size, cfg.max_tiles, cfg.max_side, cfg.tokens_per_tile) == (GridPolicy.INTERNVL, 448, 12, None, 256)
    assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)
    relaxed = read_vision_config(real_size_processor_dir, policy=GridPolicy.RELAXED)
    assert plan_tiles(Size(380, 76), relaxed).grid != plan_tiles(Size(380, 76), cfg).grid  # 1:1 vs 5:1


def test_image_seq_length_disagreeing_with_the_tower_is_refused(real_size_processor_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = shutil.copytree(real_size_processor_dir, tmp_path / "bad")
    (bad / "processor_config.json").write_text(json.dumps({"image_seq_length": 64}), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="image_seq_length 64 but the vision tower gives 256"):
        read_vision_config(bad)


def test_min_patches_above_one_is_refused_not_ignored(real_size_processor_dir: Path, tmp_path: Path) -> None:
    import shutil

    bad = shutil.copytree(real_size_processor_dir, tmp_path / "bad")
    pre = json.loads((bad / "preprocessor_config.json").read_text(encoding="utf-8"))
    (bad / "preprocessor_config.json").write_text(json.dumps({**pre, "min_patches": 2}), encoding="utf-8")
    with pytest.raises(UnsupportedModelError, match="min_patches 2"):
        read_vision_config(bad)
