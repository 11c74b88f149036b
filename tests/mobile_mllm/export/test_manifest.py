"""read_manifest refuses what a runtime cannot trust, naming the file, the key and what to do; version 1 still reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mobile_mllm import contract
from mobile_mllm.errors import ContractError
from mobile_mllm.export.manifest import read_manifest


def _write(tmp_path: Path, data: object) -> Path:
    (tmp_path / contract.MANIFEST_FILE).write_text(json.dumps(data), encoding="utf-8")
    return tmp_path


def test_complete_manifest_reads_back(tmp_path: Path, valid_manifest: dict[str, Any]) -> None:
    assert read_manifest(_write(tmp_path, valid_manifest)) == valid_manifest


def test_version_1_manifest_reads_as_version_2(tmp_path: Path, valid_manifest: dict[str, Any]) -> None:
    """Version 1 said max_seq_len for the KV cache and max_chunk for the longest call."""
    old = dict(valid_manifest, version=1, max_seq_len=2048, max_chunk=128)
    got = read_manifest(_write(tmp_path, old))
    assert (got["version"], got["max_seq_len"], got["max_context_len"]) == (2, 128, 2048)
    assert "max_chunk" not in got


def test_missing_file_names_the_directory(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="manifest.json not found; is .* an exported program directory"):
        read_manifest(tmp_path)


def test_newer_version_asks_to_upgrade(tmp_path: Path, valid_manifest: dict[str, Any]) -> None:
    valid_manifest["version"] = contract.MANIFEST_VERSION + 1
    with pytest.raises(ContractError, match="newer than this toolkit reads.*upgrade mobile-mllm or re-export"):
        read_manifest(_write(tmp_path, valid_manifest))


def test_missing_and_mistyped_keys_are_named(tmp_path: Path, valid_manifest: dict[str, Any]) -> None:
    del valid_manifest["tile_batch"], valid_manifest["eos_ids"]
    valid_manifest["prefill_chunk"] = "128"
    with pytest.raises(ContractError, match=r"manifest.json.*eos_ids: missing; tile_batch: missing; prefill_chunk: "
                                            r"expected integer.*Re-export"):
        read_manifest(_write(tmp_path, valid_manifest))


def test_other_format_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="format is not 'mobile-mllm-manifest'"):
        read_manifest(_write(tmp_path, {"format": "something-else"}))


def test_not_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / contract.MANIFEST_FILE).write_text("{oops", encoding="utf-8")
    with pytest.raises(ContractError, match="not valid JSON"):
        read_manifest(tmp_path)
