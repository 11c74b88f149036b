"""Registry: exact family lookup, detection from config.json, builtin: names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.registry import detect_family, get_adapter, known_families, resolve_model_path


def _config(tmp_path: Path, data: object) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(data))
    return tmp_path


def test_family_key_is_looked_up_exactly(tmp_path: Path) -> None:
    assert detect_family(_config(tmp_path, {"mobile_mllm_family": "reference"})) == "reference"
    with pytest.raises(UnsupportedModelError, match=r"no family 'Reference'; known: .*reference"):
        detect_family(_config(tmp_path, {"mobile_mllm_family": "Reference"}))


def test_model_type_alone_is_recognised_by_the_adapter(tmp_path: Path) -> None:
    assert detect_family(_config(tmp_path, {"model_type": "mobile_mllm_reference"})) == "reference"


def test_foreign_checkpoint_names_its_model_type(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"no family recognises model_type 'llava' \(architectures: none named\); known families: .*reference"):
        detect_family(_config(tmp_path, {"model_type": "llava"}))


def test_unsupported_architecture_is_named_with_the_supported_families(tmp_path: Path) -> None:
    config = {"architectures": ["LlavaForConditionalGeneration"], "model_type": "llava"}
    with pytest.raises(
        UnsupportedModelError,
        match=r"model_type 'llava' \(architectures: LlavaForConditionalGeneration\); known families: internvl, .*reference",
    ):
        detect_family(_config(tmp_path, config))


@pytest.mark.parametrize("config", [{"model_type": "internvl"}, {"architectures": ["InternVLForConditionalGeneration"]}])
def test_internvl_hf_checkpoint_is_detected_by_model_type_or_architecture(tmp_path: Path, config: dict) -> None:
    assert detect_family(_config(tmp_path, config)) == "internvl"


def test_missing_config_is_a_load_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"missing config\.json"):
        detect_family(tmp_path)


def test_get_adapter_unknown_lists_families() -> None:
    assert get_adapter("reference").name == "reference"
    assert get_adapter("internvl").name == "internvl"
    with pytest.raises(UnsupportedModelError, match=r"no family 'internv1'; known: internvl, .*reference"):
        get_adapter("internv1")
    assert {"internvl", "reference"} <= set(known_families())


def test_unknown_builtin_says_so(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"no built-in model 'tiny-random'; known: synth-small"):
        resolve_model_path("builtin:tiny-random")
    with pytest.raises(ModelLoadError, match=r"model directory not found: .*nope"):
        resolve_model_path(tmp_path / "nope")
    assert resolve_model_path(tmp_path) == tmp_path


@pytest.mark.parametrize("family", known_families())
def test_every_family_reads_its_vision_config_without_loading(family: str) -> None:
    # grid MODEL and run's checks before loading call this on every family's adapter.
    assert callable(getattr(get_adapter(family), "read_vision_config", None))


def test_read_vision_config_is_the_preprocessor_file_checked_against_the_architecture(tmp_path: Path) -> None:
    from mobile_mllm.config import from_dict
    from mobile_mllm.model.registry import BUILTIN_MODELS, read_vision_config
    from mobile_mllm.vision.processor import VisionConfig

    builtin = BUILTIN_MODELS["synth-small"]()
    expected = from_dict(VisionConfig, json.loads((builtin / "preprocessor_config.json").read_text()))
    assert read_vision_config("builtin:synth-small") == expected and expected.tile_size == 96
    # a copy whose preprocessing contradicts the tower (tile 64 vs image_size 96) is refused, naming both
    for name in ("config.json", "preprocessor_config.json"):
        (tmp_path / name).write_text((builtin / name).read_text())
    cfg = json.loads((tmp_path / "preprocessor_config.json").read_text())
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({**cfg, "tile_size": 64}))
    with pytest.raises(ModelLoadError, match=r"tile_size 64 / tokens_per_tile 36 do not match .*\(tower\.image_size 96"):
        read_vision_config(tmp_path)
    with pytest.raises(ModelLoadError, match=r"is a file; MODEL is a model directory"):
        read_vision_config(tmp_path / "config.json")


@pytest.mark.parametrize(
    "config",
    [
        {"model_type": "smolvlm"},
        {"model_type": "idefics3"},
        {"architectures": ["SmolVLMForConditionalGeneration"]},
        {"architectures": ["Idefics3ForConditionalGeneration"]},
    ],
)
def test_smolvlm_and_idefics3_checkpoints_are_detected_by_model_type_or_architecture(tmp_path: Path, config: dict) -> None:
    assert detect_family(_config(tmp_path, config)) == "smolvlm"
