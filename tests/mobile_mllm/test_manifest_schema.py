"""The manifest schema: a hand-written valid manifest passes; each kind of violation is reported naming its key."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

from mobile_mllm import contract
from mobile_mllm.errors import ContractError
from mobile_mllm.manifest_schema import check_manifest, load_schema, manifest_errors


def test_valid_manifest_passes(valid_manifest: dict[str, Any]) -> None:
    assert manifest_errors(valid_manifest) == []
    check_manifest(valid_manifest, "test")  # no raise


def _broken(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = data
    for key in parents:
        node = node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("tile_batch", _DELETE, "tile_batch: missing"),
        ("program.sha256", _DELETE, "program.sha256: missing"),
        ("max_chunk", 128, "max_chunk: unknown key"),
        ("vision.tile_sise", 64, "vision.tile_sise: unknown key"),
        ("prefill_chunk", "128", "prefill_chunk: expected integer, got str"),
        ("use_kv_cache", True, "use_kv_cache: unknown key"),
        ("hidden_size", True, "hidden_size: expected integer, got bool"),
        ("bos_id", 1.5, "bos_id: expected integer or null, got float"),
        ("version", 3, "version: expected 2, got 3"),
        ("vision.policy", "relaxd", "vision.policy: 'relaxd' is not one of ['relaxed', 'llava_next', 'internvl', 'smolvlm']"),
        ("tile_batch", 0, "tile_batch: 0 is below the minimum 1"),
        ("vision.pad_color", [127, 127, 300], r"vision.pad_color[2]: 300 is above the maximum 255"),
        ("vision.mean", [0.5, 0.5], "vision.mean: needs at least 3 item(s), got 2"),
        ("eos_ids", [], "eos_ids: needs at least 1 item(s), got 0"),
        ("program.sha256", "xyz", "program.sha256: 'xyz' does not match"),
        ("program.constant_methods.get_max_seq_len", _DELETE, "program.constant_methods.get_max_seq_len: missing"),
        ("precision.by_method.text_decoder.w4", -1, "precision.by_method.text_decoder.w4: -1 is below the minimum 0"),
    ],
)
def test_each_violation_names_its_key(valid_manifest: dict[str, Any], path: str, value: Any, message: str) -> None:
    errors = manifest_errors(_broken(valid_manifest, path, value))
    assert any(e.startswith(message) for e in errors), errors
    with pytest.raises(ContractError, match="manifest does not follow manifest.schema.json"):
        check_manifest(_broken(valid_manifest, path, value), "test")


def test_every_problem_is_reported_at_once(valid_manifest: dict[str, Any]) -> None:
    data = valid_manifest
    del data["tile_batch"]
    data["hidden_size"] = "wide"
    assert manifest_errors(data) == ["tile_batch: missing", "hidden_size: expected integer, got str 'wide'"]


def test_a_schema_keyword_the_validator_does_not_know_is_refused() -> None:
    with pytest.raises(ContractError, match=r"unsupported keyword\(s\) \['oneOf'\]"):
        manifest_errors({}, {"type": "object", "oneOf": []})


# --------------------------------------------------------------------------- the schema and the code agree


def test_schema_keys_are_the_contracts() -> None:
    schema = load_schema()
    assert schema["properties"]["version"]["const"] == contract.MANIFEST_VERSION
    assert schema["properties"]["format"]["const"] == contract.MANIFEST_FORMAT
    assert sorted(schema["required"]) == sorted(contract.MANIFEST_KEYS)
    assert sorted(schema["properties"]) == sorted((*contract.MANIFEST_KEYS, *contract.OPTIONAL_MANIFEST_KEYS))
    constants = schema["properties"]["program"]["properties"]["constant_methods"]
    assert sorted(constants["properties"]) == sorted(contract.CONSTANT_METHODS)
    assert constants["required"] == list(contract.REQUIRED_CONSTANT_METHODS)


def test_schema_describes_every_field_of_the_stored_configs() -> None:
    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.vision.config import VisionConfig

    props = load_schema()["properties"]
    assert sorted(props["vision"]["properties"]) == sorted(f.name for f in dataclasses.fields(VisionConfig))
    assert sorted(props["prompt"]["properties"]) == sorted(f.name for f in dataclasses.fields(PromptFormat))


def test_the_configs_as_stored_pass(valid_manifest: dict[str, Any]) -> None:
    from mobile_mllm.config import to_dict
    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.vision.config import VisionConfig

    data = valid_manifest
    data["vision"], data["prompt"] = to_dict(VisionConfig(max_tiles=6)), to_dict(PromptFormat())
    assert manifest_errors(data) == []
