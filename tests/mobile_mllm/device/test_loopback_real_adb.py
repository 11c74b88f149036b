"""Protocol fidelity of the loopback device with an independent client: Debian's real ``adb``.

The adb client talks to its own server; each test module uses a private server port and HOME
(so the user's and other sessions' adb servers are untouched) and kills that server at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb is not installed (apt-get install adb)"),
]


@pytest.fixture()
def adb_device(adb, make_loopback):
    """A loopback device trusting the adb client's key (adb made it at start-server), connected with `adb connect`."""
    def make():
        dev = make_loopback(authorized_keys=(str(adb.home / ".android" / "adbkey.pub"),))
        out = adb("connect", dev.address)
        assert f"connected to {dev.address}" in out.stdout, out.stdout + out.stderr
        return dev

    made = []
    yield lambda: made.append(make()) or made[-1]
    for dev in made:
        adb("disconnect", dev.address)


def test_connect_and_devices_list_it_as_a_device(adb, adb_device) -> None:
    dev = adb_device()
    lines = adb("devices", "-l").stdout.splitlines()
    (line,) = [ln for ln in lines if ln.startswith(dev.address)]
    assert line.split()[1] == "device" and "model:loopback" in line


def test_shell_returns_the_exit_status_and_both_streams(adb, adb_device) -> None:
    dev = adb_device()
    r = adb("-s", dev.address, "shell", "echo out; echo err >&2; exit 42")
    assert (r.returncode, r.stdout, r.stderr) == (42, "out\n", "err\n")
    assert adb("-s", dev.address, "shell", "getprop", "ro.product.model").stdout.strip() == "loopback"


def test_push_and_pull_a_multi_megabyte_file_with_matching_hashes(adb, adb_device, tmp_path: Path) -> None:
    dev = adb_device()
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(6 * 2**20 + 123))
    assert adb("-s", dev.address, "push", str(src), "/data/local/tmp/d/blob.bin").returncode == 0
    assert adb("-s", dev.address, "pull", "/data/local/tmp/d/blob.bin", str(tmp_path / "back.bin")).returncode == 0
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    assert hashlib.sha256((Path(dev.root) / "d" / "blob.bin").read_bytes()).hexdigest() == digest
    assert hashlib.sha256((tmp_path / "back.bin").read_bytes()).hexdigest() == digest
    listing = adb("-s", dev.address, "shell", "ls", "/data/local/tmp/d").stdout.split()
    assert listing == ["blob.bin"]
    (Path(dev.root) / "d" / "sub").mkdir()
    (Path(dev.root) / "d" / "sub" / "small.txt").write_text("small\n")
    # a folder pull walks the tree with sync LIST (DENT entries), then RECVs each file
    assert adb("-s", dev.address, "pull", "/data/local/tmp/d", str(tmp_path / "tree")).returncode == 0
    assert (tmp_path / "tree" / "sub" / "small.txt").read_text() == "small\n"
    assert hashlib.sha256((tmp_path / "tree" / "blob.bin").read_bytes()).hexdigest() == digest


def test_paths_outside_data_local_tmp_are_refused(adb, adb_device, tmp_path: Path) -> None:
    dev = adb_device()
    src = tmp_path / "x.txt"
    src.write_text("x")
    r = adb("-s", dev.address, "push", str(src), "/system/x.txt")
    assert r.returncode != 0 and "outside /data/local/tmp" in r.stdout + r.stderr


def test_two_loopback_devices_at_once(adb, adb_device) -> None:
    first, second = adb_device(), adb_device()
    listed = adb("devices").stdout
    assert f"{first.address}\tdevice" in listed and f"{second.address}\tdevice" in listed
    adb("-s", first.address, "shell", "echo one > /data/local/tmp/who")
    adb("-s", second.address, "shell", "echo two > /data/local/tmp/who")
    assert (Path(first.root) / "who").read_text() == "one\n" and (Path(second.root) / "who").read_text() == "two\n"


def test_legacy_shell_and_exec_out_services(adb, adb_device) -> None:
    dev = adb_device()
    payload = bytes(range(256)) * 64
    (Path(dev.root) / "bin.dat").write_bytes(payload)
    legacy = adb("-s", dev.address, "shell", "-x", "echo hi; echo err >&2; exit 3")  # shell: without v2
    assert legacy.returncode == 0 and legacy.stdout.split() == ["hi", "err"]  # merged streams, no exit status
    raw = subprocess.run(["adb", "-s", dev.address, "exec-out", "cat /data/local/tmp/bin.dat"], capture_output=True,
                         env=adb.env, timeout=60)  # type: ignore[attr-defined]
    assert raw.stdout == payload  # exec: is binary-clean (no pty, no newline translation)


def test_our_client_through_the_real_adb_server(adb, adb_device, tmp_path: Path, monkeypatch) -> None:
    """The other direction: our AdbDevice relayed by Debian's adb server (host:transport, shell,v2, sync)."""
    from mobile_mllm.device.adb import AdbDevice
    from mobile_mllm.device.adb_server import ServerLink
    from mobile_mllm.device.push import push_file

    dev = adb_device()
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", adb.env["ANDROID_ADB_SERVER_PORT"])  # type: ignore[attr-defined]
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(3 * 2**20))
    with AdbDevice(dev.address) as client:
        assert isinstance(client._dev, ServerLink)
        r = client.run("echo out; echo err >&2; exit 5")
        assert (r.exit_code, r.stdout, r.stderr) == (5, "out\n", "err\n")
        assert push_file(client, src, "/data/local/tmp/s/blob.bin")  # verified on the device by hash
        client.pull("/data/local/tmp/s/blob.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
