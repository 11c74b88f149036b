"""Every export recipe in the top-level ``export/`` folder loads, validates, and matches its preset where it names one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_mllm.config import resolve, to_dict
from mobile_mllm.errors import ConfigError
from mobile_mllm.export.program import ExportJob
from mobile_mllm.quant.recipe import PRESETS

RECIPES = sorted((Path(__file__).resolve().parents[3] / "export").glob("**/*.toml"))


def test_recipes_exist() -> None:
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_loads_and_validates(path: Path) -> None:
    job = resolve(ExportJob, recipe=path)
    precision = path.stem.rsplit("_", 1)[-1]
    if precision in PRESETS:  # the file spells the same values as the built-in preset
        assert to_dict(job.quant) == to_dict(PRESETS[precision])


def test_cli_flags_beat_the_recipe_file() -> None:
    path = next(p for p in RECIPES if p.name == "tiny_cpu_w4.toml")
    job = resolve(ExportJob, recipe=path, overrides={"quant.group_size": 64, "target.tile_batch": 2})
    assert (job.quant.group_size, job.target.tile_batch, job.target.max_context_len) == (64, 2, 2048)


def test_unknown_key_in_a_recipe_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[quant]\ndecoder = "w4"\ngroupsize = 32\n')
    with pytest.raises(ConfigError, match="quant.groupsize: unknown key for QuantConfig"):
        resolve(ExportJob, recipe=bad)
