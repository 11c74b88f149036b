"""discover.py against loopback devices: states, facts from the host (what getprop and /proc say), serial choice."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mobile_mllm.device.adb import load_signer
from mobile_mllm.device.discover import list_devices, parse_df_available, resolve_serial
from mobile_mllm.errors import DeviceNotFoundError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_list_reports_ready_unauthorized_and_offline_devices(make_loopback, tmp_path: Path) -> None:
    ready = make_loopback()
    other = tmp_path / "k" / "adbkey"
    load_signer(other)
    locked = make_loopback(authorized_keys=(str(other) + ".pub",))
    gone = f"127.0.0.1:{_closed_port()}"
    infos = {d.serial: d for d in list_devices([ready.address, locked.address, gone])}
    assert [infos[s].state for s in (ready.address, locked.address, gone)] == ["device", "unauthorized", "offline"]
    facts = infos[ready.address]
    meminfo = {ln.split(":")[0]: ln.split()[1] for ln in Path("/proc/meminfo").read_text().splitlines()}
    assert facts.ram_bytes == int(meminfo["MemTotal"]) * 1024
    assert facts.cpu_cores == os.cpu_count() and facts.model == "loopback" and facts.abi
    statvfs = os.statvfs(ready.root)
    assert abs(facts.free_bytes - statvfs.f_bavail * statvfs.f_frsize) < 512 * 2**20  # df vs statvfs, same disk


def test_serial_choice(make_loopback, monkeypatch) -> None:
    a, b = make_loopback(), make_loopback()
    monkeypatch.setenv("MOBILE_MLLM_ADB_DEVICES", a.address)
    assert resolve_serial(None) == a.address
    monkeypatch.setenv("MOBILE_MLLM_ADB_DEVICES", f"{a.address},{b.address}")
    with pytest.raises(DeviceNotFoundError, match="several devices .* --serial"):
        resolve_serial(None)
    assert resolve_serial(b.address) == b.address
    monkeypatch.setenv("MOBILE_MLLM_ADB_DEVICES", "")
    with pytest.raises(DeviceNotFoundError, match="no device found"):
        resolve_serial(None)


@pytest.mark.parametrize(("text", "expected"), [
    ("Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/block/dm-5 115234 10 2048 1% /data\n", 2048 * 1024),
    ("Filesystem     1K-blocks    Used Available Use% Mounted on\n/dev/sda1\n  1000 500 500 50% /\n", 500 * 1024),
])
def test_df_output_of_toybox_and_gnu(text: str, expected: int) -> None:
    assert parse_df_available(text) == expected
