"""The smolvlm adapter: detection from config.json, preprocessing read from the directory, refusals, the relaxed option."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.registry import detect_family, known_families, read_vision_config
from mobile_mllm.vision.config import GridPolicy, Resample, ThumbnailPosition


def _copy_with(src: Path, dst: Path, name: str, **changes) -> Path:
    shutil.copytree(src, dst)
    data = json.loads((dst / name).read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    (dst / name).write_text(json.dumps(data))
    return dst


def test_both_checkpoint_kinds_are_detected_as_smolvlm(smolvlm_dir: Path) -> None:
    assert "smolvlm" in known_families()
    assert detect_family(smolvlm_dir) == "smolvlm"


def test_architectures_alone_identify_the_family(smolvlm_dir: Path, tmp_path: Path) -> None:
    d = _copy_with(smolvlm_dir, tmp_path / "m", "config.json", model_type="something_else")
    assert detect_family(d) == "smolvlm"


def test_an_unsupported_architecture_lists_the_families(smolvlm_dir: Path, tmp_path: Path) -> None:
    d = _copy_with(smolvlm_dir, tmp_path / "m", "config.json", model_type="paligemma", architectures=["PaliGemmaForConditionalGeneration"])
    with pytest.raises(UnsupportedModelError, match="known families: .*smolvlm"):
        detect_family(d)


def test_vision_config_is_read_from_the_processor_settings(smolvlm_dir: Path) -> None:
    cfg = read_vision_config(smolvlm_dir)
    assert cfg.policy is GridPolicy.SMOLVLM
    assert (cfg.tile_size, cfg.longest_edge_px, cfg.max_side) == (64, 256, 4)
    assert cfg.tokens_per_tile == (64 // 8) ** 2 // 2**2  # (image_size / patch)^2 / scale_factor^2
    assert cfg.resample is Resample.LANCZOS and cfg.thumbnail is ThumbnailPosition.LAST
    assert cfg.mean == cfg.std == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"do_image_splitting": False}, "do_image_splitting=False is not supported"),
        ({"rescale_factor": 0.5}, "rescale_factor 0.5 is not supported"),
        ({"max_image_size": {"longest_edge": 32}}, "the vision tower takes 64 px"),
    ],
)
def test_settings_we_do_not_reproduce_are_refused(smolvlm_dir: Path, tmp_path: Path, changes: dict, words: str) -> None:
    d = _copy_with(smolvlm_dir, tmp_path / "m", "preprocessor_config.json", **changes)
    with pytest.raises(UnsupportedModelError, match=words):
        read_vision_config(d)


def test_a_tokenizer_without_the_image_tokens_is_refused(smolvlm_dir: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    d = tmp_path / "m"
    shutil.copytree(smolvlm_dir, d)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.add_special_tokens(["<end_of_utterance>", "<|im_end|>"])
    tok.save(str(d / "tokenizer.json"))
    from mobile_mllm.model import load_model

    with pytest.raises(ModelLoadError, match="has no token '<fake_token_around_image>'"):
        load_model(d, max_context_len=64)


def test_the_relaxed_policy_is_an_option_with_the_same_tile_tokens(smolvlm) -> None:
    # Relaxed (BlueLM-V-3B) grid, padded canvas; the prompt still names each tile <row_r_col_c> and ends with the
    # global image, as SmolVLM's processor would lay out that grid (its own expansion function, given our rows/cols).
    from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

    from mobile_mllm.runtime.eager import EagerMethods
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session
    from mobile_mllm.runtime.layout import TokenRun

    vision = dataclasses.replace(smolvlm.vision, policy=GridPolicy.RELAXED, max_side=3)
    session = Session(
        EagerMethods(smolvlm), tokenizer=smolvlm.tokenizer, prompt=smolvlm.prompt, vision=vision,
        eos_ids=smolvlm.eos_ids, generation=GenerationConfig(max_new_tokens=4),
    )
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 200, 3), dtype=np.uint8))
    plan = session._plan("<image>", image)
    grid = plan.tiles.grid
    assert grid.cols > grid.rows  # a wide image
    text = get_image_prompt_string(
        grid.rows, grid.cols, vision.tokens_per_tile, fake_token_around_image="<fake_token_around_image>",
        image_token="<image>", global_image_token="<global-img>",
    )
    image_id = smolvlm.special_ids["<image>"]
    ids = [i for s in plan.segments for i in (s.ids if isinstance(s, TokenRun) else [image_id] * s.num_tokens)]
    expected = smolvlm.tokenizer.encode(f"<|im_start|>User:{text}<end_of_utterance>\nAssistant:", add_special_tokens=False).ids
    assert ids == expected
    assert session.ask("What is it?", image).stats.num_tiles == grid.num_tiles + 1
