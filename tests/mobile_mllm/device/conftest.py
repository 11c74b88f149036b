"""Fixtures of the device tests: a loopback ADB device trusting a private key, and a socket proxy that injects faults."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mobile_mllm.device.loopback import LoopbackConfig, LoopbackDevice


@pytest.fixture()
def make_loopback(adb_user_home: Path, tmp_path: Path) -> Iterator[Callable[..., LoopbackDevice]]:
    """``make_loopback(**config) -> LoopbackDevice`` started on a free port, trusting the test key; closed after."""
    started: list[LoopbackDevice] = []

    def make(**kw: object) -> LoopbackDevice:
        kw.setdefault("authorized_keys", (str(adb_user_home / "adbkey.pub"),))
        kw.setdefault("root", str(tmp_path / f"device{len(started)}"))
        dev = LoopbackDevice(LoopbackConfig(port=0, **kw)).start()  # type: ignore[arg-type]
        started.append(dev)
        return dev

    yield make
    for dev in started:
        dev.close()


@pytest.fixture()
def loopback(make_loopback: Callable[..., LoopbackDevice]) -> LoopbackDevice:
    return make_loopback()


class FaultProxy:
    """A TCP proxy in front of a device that can drop the link after N client bytes, or slow it down.

    Args:
        target (int): the device's port on 127.0.0.1.
        drop_after_bytes (int | None): close both sides once the client has sent this many bytes
            (only on the first connection: the retry's new connection goes through).
        drop_reply_after_bytes (int | None): the same for bytes the device sent (first connection only).
        bytes_per_s (float | None): throttle both directions to about this rate.
    """

    def __init__(self, target: int, *, drop_after_bytes: int | None = None, drop_reply_after_bytes: int | None = None,
                 bytes_per_s: float | None = None) -> None:
        self.target, self.drop_after_bytes, self.bytes_per_s = target, drop_after_bytes, bytes_per_s
        self.drop_reply_after_bytes = drop_reply_after_bytes
        self.connections = 0
        self.dropped = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def serial(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.target))
            first = self.connections == 1
            pair = (client, server)
            threading.Thread(target=self._pump, args=(client, server, self.drop_after_bytes if first else None, pair),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, self.drop_reply_after_bytes if first else None,
                                                      pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, budget: int | None, pair: tuple) -> None:
        sent = 0
        try:
            while data := src.recv(65536):
                if budget is not None and sent + len(data) > budget:
                    self.dropped += 1
                    break
                if self.bytes_per_s:
                    time.sleep(len(data) / self.bytes_per_s)
                dst.sendall(data)
                sent += len(data)
        except OSError:
            pass
        for s in pair:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture()
def fault_proxy() -> Iterator[Callable[..., FaultProxy]]:
    proxies: list[FaultProxy] = []

    def make(target: int, **kw: object) -> FaultProxy:
        proxies.append(FaultProxy(target, **kw))  # type: ignore[arg-type]
        return proxies[-1]

    yield make
    for p in proxies:
        p.close()
