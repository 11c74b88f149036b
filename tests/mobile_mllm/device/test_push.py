"""push.py against the loopback device, with faults injected at the socket (dropped link, slow link) and a full disk."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from mobile_mllm.device.adb import AdbDevice
from mobile_mllm.device.push import push_file, push_program
from mobile_mllm.errors import ContractError, TransferError


def _fake_export(folder: Path, program_bytes: int) -> Path:
    """An export folder's file set (the bytes do not matter to push)."""
    folder.mkdir(parents=True)
    (folder / "model.pte").write_bytes(os.urandom(program_bytes))
    (folder / "manifest.json").write_text(json.dumps({"format": "mobile-mllm-manifest"}))
    (folder / "tokenizer.json").write_text("{}")
    return folder


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_sends_all_files_then_skips_identical_ones_and_resends_a_changed_one(loopback, tmp_path: Path) -> None:
    out = _fake_export(tmp_path / "prog", 200_000)
    with AdbDevice(loopback.address) as dev:
        first = push_program(dev, out)
        second = push_program(dev, out)
        (out / "manifest.json").write_text('{"changed": true}')
        third = push_program(dev, out)
    remote = Path(loopback.root) / "mobile_mllm" / "prog"
    assert set(first.pushed) == {"model.pte", "manifest.json", "tokenizer.json"} and not first.skipped
    assert second.pushed == () and set(second.skipped) == set(first.pushed)
    assert third.pushed == ("manifest.json",)
    assert {p.name: _sha(p) for p in remote.iterdir()} == {p.name: _sha(p) for p in out.iterdir()}


def test_dropped_link_mid_push_is_retried_and_the_hash_verifies(loopback, fault_proxy, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2_000_000))
    proxy = fault_proxy(loopback.port, drop_after_bytes=1_000_000)
    with AdbDevice(proxy.serial, timeout_s=2) as dev:
        assert push_file(dev, src, "/data/local/tmp/big.bin", retries=2)
    assert proxy.dropped == 1 and proxy.connections >= 2
    assert _sha(Path(loopback.root) / "big.bin") == _sha(src)


def test_dropped_link_without_retry_is_a_clear_error_and_nothing_counts_as_pushed(loopback, fault_proxy, tmp_path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(2_000_000))
    proxy = fault_proxy(loopback.port, drop_after_bytes=1_000_000)
    with AdbDevice(proxy.serial, timeout_s=2) as dev, pytest.raises(TransferError, match="failed after 1 attempt"):
        push_file(dev, src, "/data/local/tmp/big.bin", retries=0)
    assert not (Path(loopback.root) / "big.bin").exists()
    assert not (Path(loopback.root) / "big.bin.part").exists()  # the partial file was removed


def test_slow_link_completes_with_a_verified_copy(loopback, fault_proxy, tmp_path: Path) -> None:
    src = tmp_path / "slow.bin"
    src.write_bytes(os.urandom(400_000))
    proxy = fault_proxy(loopback.port, bytes_per_s=1_000_000)
    seen: list[int] = []
    with AdbDevice(proxy.serial, timeout_s=10) as dev:
        push_file(dev, src, "/data/local/tmp/slow.bin", on_bytes=seen.append)
    assert sum(seen) == src.stat().st_size
    assert _sha(Path(loopback.root) / "slow.bin") == _sha(src)


def test_a_device_without_room_is_refused_before_any_byte(make_loopback, tmp_path: Path) -> None:
    dev_ = make_loopback(capacity_bytes=100_000)
    out = _fake_export(tmp_path / "prog", 300_000)
    with AdbDevice(dev_.address) as dev, pytest.raises(TransferError, match=r"MB free .* needs 0\.3 MB"):
        push_program(dev, out)
    assert not any(Path(dev_.root).rglob("*.pte*"))


def test_disk_filling_up_mid_push_is_reported_and_leaves_nothing(make_loopback, tmp_path: Path) -> None:
    dev_ = make_loopback(capacity_bytes=100_000)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(300_000))
    with AdbDevice(dev_.address) as dev, pytest.raises(TransferError, match="No space left on device"):
        push_file(dev, src, "/data/local/tmp/big.bin")  # push_file alone does not check room first
    assert not any(Path(dev_.root).rglob("big.bin*"))


def test_not_an_export_folder(loopback, tmp_path: Path) -> None:
    with AdbDevice(loopback.address) as dev, pytest.raises(ContractError, match="missing model.pte"):
        push_program(dev, tmp_path)


def test_the_image_engine_file_the_manifest_names_is_pushed_and_required(loopback, tmp_path: Path) -> None:
    out = _fake_export(tmp_path / "ort", 1000)
    manifest = {"format": "mobile-mllm-manifest", "vision_engine": "onnxruntime", "vision_program": {"file": "vision.onnx"}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    with AdbDevice(loopback.address) as dev:
        with pytest.raises(ContractError, match="missing vision.onnx"):  # named by the manifest, so required
            push_program(dev, out)
        (out / "vision.onnx").write_bytes(os.urandom(5000))
        pushed = push_program(dev, out)
    assert set(pushed.pushed) == {"model.pte", "manifest.json", "tokenizer.json", "vision.onnx"}
    remote = Path(loopback.root) / "mobile_mllm" / "ort"
    assert _sha(remote / "vision.onnx") == _sha(out / "vision.onnx")
