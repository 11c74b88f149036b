"""read_manifest refuses what a runtime cannot trust, naming the file and what to do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mobile_mllm import contract
from mobile_mllm.errors import ContractError
from mobile_mllm.export.manifest import read_manifest


def _write(tmp_path: Path, data: object) -> Path:
    (tmp_path / contract.MANIFEST_FILE).write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def _complete() -> dict[str, object]:
    data: dict[str, object] = {key: None for key in contract.MANIFEST_KEYS}
    data.update(format=contract.MANIFEST_FORMAT, version=contract.MANIFEST_VERSION)
    return data


def test_complete_manifest_reads_back(tmp_path: Path) -> None:
    assert read_manifest(_write(tmp_path, _complete()))["version"] == contract.MANIFEST_VERSION


def test_missing_file_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="manifest.json not found; is .* an exported program directory"):
        read_manifest(tmp_path)


def test_newer_version_asks_to_upgrade(tmp_path: Path) -> None:
    data = _complete()
    data["version"] = contract.MANIFEST_VERSION + 1
    with pytest.raises(ContractError, match="newer than this toolkit reads.*upgrade mobile-mllm or re-export"):
        read_manifest(_write(tmp_path, data))


def test_missing_keys_are_listed(tmp_path: Path) -> None:
    data = _complete()
    del data["tile_batch"], data["eos_ids"]
    with pytest.raises(ContractError, match="missing keys eos_ids, tile_batch; re-export"):
        read_manifest(_write(tmp_path, data))


def test_other_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="format is not 'mobile-mllm-manifest'"):
        read_manifest(_write(tmp_path, {"format": "something-else"}))


def test_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / contract.MANIFEST_FILE).write_text("{oops", encoding="utf-8")
    with pytest.raises(ContractError, match="not valid JSON"):
        read_manifest(tmp_path)
