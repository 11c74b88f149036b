"""The other way to reach a device: through a running ``adb`` server (port 5037, or $ANDROID_ADB_SERVER_PORT).

When the user's ``adb`` server already holds a phone (over USB, with the phone's trust in
adb's key), we ask the server to relay: ``host:transport:SERIAL`` selects the device, then the
same services as over a direct connection (``shell,v2,raw:``, ``sync:``), each on its own
socket (adb's ``SERVICES.TXT``; requests are a 4-hex-digit length and the text; answers
``OKAY`` or ``FAIL`` with a length-prefixed message). :class:`ServerLink` offers the methods
:class:`~mobile_mllm.device.adb.AdbDevice` calls on adb-shell's device and raises adb-shell's
exception types, so the one ``AdbDevice`` serves both transports.
Deliberately not here: starting an adb server (we only use one that runs).
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["ServerLink", "recv_exact", "server_devices", "server_port"]

SYNC_DATA_MAX = 64 * 1024


def server_port() -> int:
    """The adb server's port: ``$ANDROID_ADB_SERVER_PORT`` or 5037."""
    return int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))


def _request(sock: socket.socket, text: str) -> None:
    raw = text.encode()
    sock.sendall(f"{len(raw):04x}".encode() + raw)


def recv_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly ``n`` bytes from ``sock``; ConnectionError when the peer closes first."""
    buf = bytearray()
    while len(buf) < n:
        piece = sock.recv(n - len(buf))
        if not piece:
            raise ConnectionError(f"the peer closed the connection ({len(buf)} of {n} bytes read)")
        buf += piece
    return bytes(buf)


def _status(sock: socket.socket) -> str | None:
    """None on OKAY, else the server's FAIL message."""
    status = recv_exact(sock, 4)
    if status == b"OKAY":
        return None
    if status != b"FAIL":
        raise ConnectionError(f"unexpected adb server answer {status!r}")
    return recv_exact(sock, int(recv_exact(sock, 4), 16)).decode("utf-8", "replace")


def server_devices(timeout_s: float = 2.0) -> list[tuple[str, str]] | None:
    """(serial, state) of every device a running adb server knows, or None when no server runs."""
    try:
        with socket.create_connection(("127.0.0.1", server_port()), timeout=timeout_s) as sock:
            _request(sock, "host:devices")
            if _status(sock) is not None:
                return []
            text = recv_exact(sock, int(recv_exact(sock, 4), 16)).decode()
    except OSError:
        return None
    return [tuple(line.split("\t")[:2]) for line in text.splitlines() if "\t" in line]  # type: ignore[misc]


class ServerLink:
    """One device through the adb server, with the subset of adb-shell's ``AdbDevice`` API we use."""

    def __init__(self, serial: str, timeout_s: float) -> None:
        self.serial, self.timeout_s = serial, timeout_s

    def _open(self, service: str, timeout_s: float | None = None) -> socket.socket:
        from adb_shell.exceptions import AdbConnectionError

        sock = socket.create_connection(("127.0.0.1", server_port()), timeout=timeout_s or self.timeout_s)
        for text in (f"host:transport:{self.serial}", service):
            _request(sock, text)
            failure = _status(sock)
            if failure is not None:
                sock.close()
                raise AdbConnectionError(f"adb server: {failure}")
        return sock

    def _streaming_command(self, service: bytes, command: bytes, _transport_timeout_s: float, read_timeout_s: float,
                           _timeout_s: float | None) -> Iterator[bytes]:
        """The raw bytes of ``service:command`` until the device closes the stream (as adb-shell yields them)."""
        with self._open(f"{service.decode()}:{command.decode()}", read_timeout_s) as sock:
            while data := sock.recv(65536):
                yield data

    def push(self, local: str, remote: str, st_mode: int = 0o100644, mtime: int = 0,
             progress_callback: Callable[[str, int, int], None] | None = None, read_timeout_s: float | None = None) -> None:
        from adb_shell.exceptions import PushFailedError

        total = Path(local).stat().st_size
        with self._open("sync:", read_timeout_s) as sock, open(local, "rb") as f:
            spec = f"{remote},{st_mode}".encode()
            sock.sendall(b"SEND" + struct.pack("<I", len(spec)) + spec)
            while data := f.read(SYNC_DATA_MAX):
                sock.sendall(b"DATA" + struct.pack("<I", len(data)) + data)
                if progress_callback is not None:
                    progress_callback(remote, len(data), total)
            sock.sendall(b"DONE" + struct.pack("<I", mtime or int(time.time())))
            ident, length = struct.unpack("<4sI", recv_exact(sock, 8))
            if ident != b"OKAY":
                raise PushFailedError(recv_exact(sock, length).decode("utf-8", "replace") if ident == b"FAIL" else ident)
            sock.sendall(b"QUIT" + struct.pack("<I", 0))

    def pull(self, remote: str, local: str, progress_callback: object = None, read_timeout_s: float | None = None) -> None:
        from adb_shell.exceptions import AdbCommandFailureException

        raw = remote.encode()
        with self._open("sync:", read_timeout_s) as sock, open(local, "wb") as f:
            sock.sendall(b"RECV" + struct.pack("<I", len(raw)) + raw)
            while True:
                ident, length = struct.unpack("<4sI", recv_exact(sock, 8))
                if ident == b"DONE":
                    break
                data = recv_exact(sock, length)
                if ident != b"DATA":
                    raise AdbCommandFailureException(data.decode("utf-8", "replace"))
                f.write(data)
            sock.sendall(b"QUIT" + struct.pack("<I", 0))

    def close(self) -> None:
        """Nothing to close: each service had its own socket."""
