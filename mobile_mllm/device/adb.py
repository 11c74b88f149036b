"""One ADB connection to a device, over ``adb-shell``: key, connect, commands with exit status, file transfer.

:class:`AdbDevice` owns the connection. Serials are ``host:port`` (TCP, as ``adb connect``
uses them) or a USB serial (where ``libusb1`` is installed); a serial that a running ``adb``
server holds goes through that server instead (``adb_server.py``). The user's key is
``~/.android/adbkey`` (what Android Studio's ``adb`` uses, so a phone that trusts ``adb`` trusts
us), created with mode 0600 when missing; it is never logged or copied. Commands use the
``shell,v2`` service, which carries stdout, stderr and the exit status separately (every phone
since Android 7). Every adb-shell or socket failure becomes a :class:`DeviceError` subclass
with one line saying what to do.
Deliberately not here: which files to push (``push.py``), the runner (``run.py``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_mllm.errors import DeviceError, DeviceNotFoundError, DeviceUnauthorizedError, MissingDependencyError, TransferError

logger = logging.getLogger(__name__)

__all__ = ["AdbDevice", "CommandResult", "default_key_path", "load_signer"]

DEFAULT_TIMEOUT_S = 30.0
AUTH_TIMEOUT_S = 10.0


def default_key_path() -> Path:
    """``$ADB_VENDOR_KEYS``-free default: ``~/.android/adbkey`` (``$ANDROID_USER_HOME`` if set)."""
    base = os.environ.get("ANDROID_USER_HOME") or str(Path.home() / ".android")
    return Path(base) / "adbkey"


def load_signer(path: Path | None = None) -> Any:
    """The RSA signer of the user's ADB key, generating the key pair (mode 0600) when missing."""
    from adb_shell.auth.keygen import keygen
    from adb_shell.auth.sign_pythonrsa import PythonRSASigner

    path = path or default_key_path()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        old = os.umask(0o077)
        try:
            keygen(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        logger.info("created an ADB key pair at %s (the phone asks once to trust it)", path)
    pub = path.with_name(path.name + ".pub")
    return PythonRSASigner(pub.read_text() if pub.is_file() else None, path.read_text())


@dataclass(frozen=True)
class CommandResult:
    """What a device command printed, and how it ended."""

    exit_code: int
    stdout: str
    stderr: str


def byte_sum(data: bytes | bytearray | str) -> int:
    """ADB's packet checksum (the byte sum, 32 bits), with numpy: same value as adb-shell's, ~50x faster.

    Example:
        >>> byte_sum(b"\\x01\\x02\\xff")
        258
    """
    import numpy as np

    raw = data.encode() if isinstance(data, str) else data
    return int(np.frombuffer(raw, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


def _use_fast_checksum() -> None:
    """Make adb-shell checksum packets with :func:`byte_sum`: its pure-Python sum took half of a push's time."""
    from adb_shell import adb_device, adb_message

    adb_message.checksum = adb_device.checksum = byte_sum


def _eof_aware_tcp(host: str, port: int) -> Any:
    """adb-shell's TCP transport, except that a closed connection raises at once.

    adb-shell reads an empty ``recv`` (the peer closed) as "no data yet" and spins until its read
    timeout, so a dropped link looked like a hung device for the whole timeout. adb-shell only
    accepts transports derived from its ``BaseTransport``, hence the subclass.
    """
    from adb_shell.transport.tcp_transport import TcpTransport

    class EofAwareTcpTransport(TcpTransport):  # type: ignore[misc]
        def bulk_read(self, numbytes: int, transport_timeout_s: float | None) -> bytes:
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data:
                raise ConnectionResetError(f"{host}:{port} closed the connection")
            return data

    return EofAwareTcpTransport(host, port)


def _text(e: BaseException) -> str:
    arg = e.args[0] if e.args else e
    return arg.decode("utf-8", "replace") if isinstance(arg, (bytes, bytearray)) else str(arg)


def _adb_errors() -> tuple[type[BaseException], ...]:
    from adb_shell import exceptions as ex

    return (
        ex.AdbConnectionError, ex.AdbTimeoutError, ex.TcpTimeoutException, ex.InvalidChecksumError,
        ex.InvalidCommandError, ex.InvalidResponseError, ex.AdbCommandFailureException, ex.UsbReadFailedError,
        ex.UsbWriteFailedError, OSError, struct.error,
    )


class AdbDevice:
    """An open ADB connection to one device.

    Args:
        serial (str): ``host:port`` or a USB serial.
        timeout_s (float): socket timeout of each transfer. Default 30.
        key_path (Path | None): the private key. Default ``~/.android/adbkey``.
        auth_timeout_s (float): how long to wait for the user to accept the key. Default 10.

    Raises:
        DeviceNotFoundError: nothing answers at ``serial``.
        DeviceUnauthorizedError: the device did not accept the key.
        DeviceError: the device is offline or answered with something that is not ADB.
    """

    def __init__(
        self, serial: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, key_path: Path | None = None,
        auth_timeout_s: float = AUTH_TIMEOUT_S,
    ) -> None:
        self.serial = serial
        self.auth_timeout_s = auth_timeout_s
        self.timeout_s = timeout_s
        self.key_path = key_path
        self._dev = self._connect()

    def _connect(self) -> Any:
        from adb_shell import exceptions as ex

        from mobile_mllm.device.adb_server import ServerLink, server_devices

        serial, timeout_s = self.serial, self.timeout_s
        state = dict(server_devices() or []).get(serial)
        if state is not None:  # a running adb server holds this device: let it relay
            if state == "unauthorized":
                raise DeviceUnauthorizedError(self._unauthorized())
            if state != "device":
                raise DeviceError(f"device {serial} is {state} in the adb server; reconnect it (adb reconnect)")
            logger.debug("%s: through the adb server", serial)
            _use_fast_checksum()
            return ServerLink(serial, timeout_s)
        dev = self._transport(serial, timeout_s)
        asked = []  # adb-shell calls back when the device rejected our signature and we offer the public key
        try:
            dev.connect(rsa_keys=[load_signer(self.key_path)], auth_timeout_s=self.auth_timeout_s,
                        transport_timeout_s=timeout_s, read_timeout_s=timeout_s, auth_callback=asked.append)
        except ConnectionRefusedError as e:
            raise DeviceNotFoundError(
                f"no device at {serial} (connection refused); check the address, or run `mobile-mllm devices`"
            ) from e
        except ex.DeviceAuthError as e:
            raise DeviceUnauthorizedError(self._unauthorized()) from e
        except (ex.AdbTimeoutError, ex.TcpTimeoutException) as e:
            if asked:  # our key was offered and the device said nothing: the prompt waits on the phone
                raise DeviceUnauthorizedError(self._unauthorized()) from e
            raise DeviceError(f"device {serial} is offline (no ADB answer within {timeout_s:.0f} s); reconnect it") from e
        except _adb_errors() as e:
            raise DeviceError(f"device {serial} is offline or not an ADB device ({type(e).__name__}: {e})") from e
        return dev

    def reconnect(self) -> None:
        """Drop the connection and open a new one (after a lost or timed-out command)."""
        self.close()
        self._dev = self._connect()

    def _unauthorized(self) -> str:
        return (f"device {self.serial} is unauthorized: accept the 'Allow USB debugging' prompt on the phone "
                f"for the key {default_key_path()}.pub, then retry")

    @staticmethod
    def _transport(serial: str, timeout_s: float) -> Any:
        from adb_shell.adb_device import AdbDevice as ShellDevice

        _use_fast_checksum()
        if ":" in serial:
            host, _, port = serial.rpartition(":")
            return ShellDevice(_eof_aware_tcp(host, int(port)), default_transport_timeout_s=timeout_s)
        try:
            from adb_shell.adb_device import AdbDeviceUsb
        except ImportError as e:  # pragma: no cover - adb-shell always exports it
            raise MissingDependencyError("USB needs `pip install adb-shell[usb]` (libusb1)") from e
        try:
            return AdbDeviceUsb(serial=serial, default_transport_timeout_s=timeout_s)
        except Exception as e:  # adb-shell raises InvalidTransportError or usb1's own errors
            raise DeviceNotFoundError(
                f"USB device {serial} not usable ({e}); install libusb1 (`pip install adb-shell[usb]`) or connect "
                "over TCP with `adb tcpip 5555` and --serial HOST:5555"
            ) from e

    # ---- commands
    @contextlib.contextmanager
    def _lost(self, what: str) -> Iterator[None]:
        """Turn transport failures during ``what`` into one DeviceError line."""
        try:
            yield
        except DeviceError:
            raise
        except _adb_errors() as e:
            raise DeviceError(f"connection to {self.serial} lost during {what} ({type(e).__name__}: {e}); "
                              "check the cable or network and retry") from e

    def stream(self, command: str, *, timeout_s: float | None = None) -> Iterator[tuple[int, bytes]]:
        """Run ``command`` with the shell,v2 service; yield ``(1, stdout)``, ``(2, stderr)`` pieces and ``(3, exit code)``.

        ``command`` is passed to the device's shell as is: quote every user value with
        ``shlex.quote`` before building it.
        """
        timeout = timeout_s or self.timeout_s
        buf = bytearray()
        with self._lost(f"`{command[:60]}`"):
            for piece in self._dev._streaming_command(b"shell,v2,raw", command.encode(), timeout, timeout, None):
                buf += piece
                while len(buf) >= 5:
                    kind, length = struct.unpack_from("<BI", buf)
                    if len(buf) < 5 + length:
                        break
                    data = bytes(buf[5 : 5 + length])
                    del buf[: 5 + length]
                    yield (kind, data[0] if kind == 3 and data else data)  # type: ignore[misc]

    def run(self, command: str, *, timeout_s: float | None = None) -> CommandResult:
        """Run ``command`` to its end; its exit status, stdout and stderr."""
        out, err, code = bytearray(), bytearray(), -1
        for kind, data in self.stream(command, timeout_s=timeout_s):
            if kind == 1:
                out += data  # type: ignore[arg-type]
            elif kind == 2:
                err += data  # type: ignore[arg-type]
            elif kind == 3:
                code = int(data)  # type: ignore[arg-type]
        if code < 0:
            raise DeviceError(f"connection to {self.serial} lost during `{command[:60]}` (no exit status); retry")
        return CommandResult(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def check(self, command: str, *, timeout_s: float | None = None) -> str:
        """Run ``command``; its stdout, or DeviceError with its exit code and stderr."""
        r = self.run(command, timeout_s=timeout_s)
        if r.exit_code != 0:
            raise DeviceError(f"`{command[:80]}` failed on {self.serial} with exit code {r.exit_code}: "
                              f"{(r.stderr or r.stdout).strip()[-300:]}")
        return r.stdout

    def getprop(self, name: str) -> str:
        import shlex

        return self.run(f"getprop {shlex.quote(name)}").stdout.strip()

    # ---- files
    def push(self, local: Path, remote: str, on_bytes: Callable[[int], None] | None = None) -> None:
        """Copy one file with the sync service (no checks here: see ``push.push_file``)."""
        def progress(_path: str, written: int, _total: int) -> None:
            if on_bytes is not None:
                on_bytes(written)

        from adb_shell.exceptions import PushFailedError

        with self._lost(f"the push of {local.name}"):
            try:
                self._dev.push(str(local), remote, progress_callback=progress, read_timeout_s=self.timeout_s)
            except PushFailedError as e:
                raise TransferError(f"{self.serial} refused {remote}: {_text(e)}") from e

    def pull(self, remote: str, local: Path) -> None:
        """Copy one device file to ``local`` (written to a temporary name, renamed when complete)."""
        tmp = local.with_name(local.name + ".part")
        from adb_shell.exceptions import AdbCommandFailureException

        with self._lost(f"the pull of {remote}"):
            try:
                self._dev.pull(remote, str(tmp), read_timeout_s=self.timeout_s)
            except AdbCommandFailureException as e:
                tmp.unlink(missing_ok=True)
                raise TransferError(f"cannot pull {remote} from {self.serial}: {_text(e)}") from e
        os.replace(tmp, local)

    def close(self) -> None:
        with contextlib.suppress(*_adb_errors()):
            self._dev.close()

    def __enter__(self) -> AdbDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
