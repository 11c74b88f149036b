"""AdbDevice against the loopback device: key handling, auth, shell,v2 exit status, transfers, malformed packets."""

from __future__ import annotations

import os
import socket
import stat
import threading
from pathlib import Path

import pytest

from mobile_mllm.device.adb import AdbDevice, load_signer
from mobile_mllm.device.loopback import decode_android_pubkey
from mobile_mllm.errors import DeviceError, DeviceNotFoundError, DeviceUnauthorizedError, TransferError


def test_missing_key_is_generated_private_and_matches_its_public_half(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = tmp_path / "sub" / "adbkey"
    load_signer(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    private = load_pem_private_key(key.read_bytes(), password=None).private_numbers().public_numbers
    # the Android-format public key decodes to the private key's own modulus and exponent
    assert decode_android_pubkey((tmp_path / "sub" / "adbkey.pub").read_text()) == (private.n, private.e)


def test_shell_v2_gives_stdout_stderr_and_exit_status(loopback) -> None:
    with AdbDevice(loopback.address) as dev:
        r = dev.run("echo out; echo err >&2; exit 7")
    assert (r.exit_code, r.stdout, r.stderr) == (7, "out\n", "err\n")


def test_commands_run_in_the_root_standing_for_data_local_tmp(loopback) -> None:
    with AdbDevice(loopback.address) as dev:
        dev.check("mkdir -p /data/local/tmp/a && echo hi > /data/local/tmp/a/f.txt")
    assert (Path(loopback.root) / "a" / "f.txt").read_text() == "hi\n"


def test_unknown_key_is_unauthorized_with_what_to_do(make_loopback, tmp_path: Path) -> None:
    other = tmp_path / "other" / "adbkey"
    load_signer(other)  # the device trusts this key only, not ours
    dev = make_loopback(authorized_keys=(str(other) + ".pub",))
    with pytest.raises(DeviceUnauthorizedError, match="unauthorized: accept"):
        AdbDevice(dev.address, auth_timeout_s=1)


def test_accepting_a_new_key_lets_it_in(make_loopback, tmp_path: Path) -> None:
    other = tmp_path / "other" / "adbkey"
    load_signer(other)
    dev = make_loopback(authorized_keys=(str(other) + ".pub",), accept_new_keys=True)
    with AdbDevice(dev.address) as d:
        assert d.run("exit 0").exit_code == 0


def test_no_device_at_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    with pytest.raises(DeviceNotFoundError, match="connection refused"):
        AdbDevice(f"127.0.0.1:{port}")


def test_push_and_pull_round_trip_and_paths_outside_are_refused(loopback, tmp_path: Path) -> None:
    src = tmp_path / "blob.bin"
    src.write_bytes(os.urandom(300_000))
    with AdbDevice(loopback.address) as dev:
        dev.push(src, "/data/local/tmp/x/blob.bin")
        dev.pull("/data/local/tmp/x/blob.bin", tmp_path / "back.bin")
        with pytest.raises(TransferError, match="outside /data/local/tmp"):
            dev.push(src, "/data/local/tmp/../../etc/blob.bin")
    assert (tmp_path / "back.bin").read_bytes() == src.read_bytes()
    assert not (Path(loopback.root).parent / "etc").exists()


def test_malformed_packet_from_the_device_is_a_clear_error_not_a_hang() -> None:
    server = socket.create_server(("127.0.0.1", 0))

    def garbage() -> None:
        conn, _ = server.accept()
        conn.recv(4096)
        conn.sendall(b"NOT ADB AT ALL, SORRY" * 3)

    threading.Thread(target=garbage, daemon=True).start()
    with pytest.raises(DeviceError, match="not an ADB device|offline"):
        AdbDevice(f"127.0.0.1:{server.getsockname()[1]}", timeout_s=3, auth_timeout_s=1)
    server.close()


def test_loopback_drops_a_client_sending_a_malformed_packet(loopback) -> None:
    with socket.create_connection(("127.0.0.1", loopback.port), timeout=5) as s:
        s.sendall(b"\x00" * 20 + b"\x01\x02\x03\x04")  # magic does not match the command
        assert s.recv(100) == b""  # closed at once, no hang


def test_a_device_that_never_answers_is_offline_not_unauthorized() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    with pytest.raises(DeviceError, match="is offline") as info:
        AdbDevice(f"127.0.0.1:{server.getsockname()[1]}", timeout_s=1, auth_timeout_s=1)
    assert not isinstance(info.value, DeviceUnauthorizedError)
    server.close()
