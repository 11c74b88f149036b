"""A loopback Android device: the device side of the ADB protocol on 127.0.0.1, no phone needed.

Speaks what ``adbd`` speaks over TCP (adb's ``protocol.txt``, ``SYNC.TXT``, ``SERVICES.TXT``):
the 24-byte message header (command, arg0, arg1, length, byte-sum checksum, magic), CNXN with
a ``device::`` banner, AUTH with the RSA public-key check (a token signed with a key we know,
else the client's public key is accepted only when ``accept_new_keys``), OPEN/OKAY/WRTE/CLSE
streams with one unacknowledged WRTE each way, and the services ``shell:`` (stdout and stderr
merged), ``shell,v2[,args]:`` (stdout/stderr/exit-status packets), ``exec:`` (raw stdout) and
``sync:`` (STAT, LIST, SEND, RECV, DATA, DONE, QUIT).

Commands run with ``/bin/sh`` as this user, in ``root`` which stands for ``/data/local/tmp``
(that prefix in a command is rewritten to ``root``), with a ``PATH`` that adds ``getprop``
(answering from this host's real facts: CPU, cores, RAM, ABI) and ``mobile-mllm-runner`` (the
host runner of ``android_app/RUNNER.md``; with ``runner`` x86_64 or arm64, the native runner of
``android_app/runner`` built from this checkout, arm64 under qemu: see :mod:`mobile_mllm.device.native`,
and then getprop reports that ABI). File transfers outside ``/data/local/tmp`` are
refused. ``capacity_bytes`` makes a small "disk": ``df`` reports it and a push beyond it fails
with "No space left on device", as on a full phone.
Deliberately not a sandbox: a shell command can touch anything this user can, so the server
listens on 127.0.0.1 only and authenticates keys; use it for tests and laptops, not shared hosts.
"""

from __future__ import annotations

import base64
import logging
import os
import platform
import posixpath
import queue
import shlex
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mobile_mllm.device.adb import byte_sum
from mobile_mllm.device.adb_server import recv_exact
from mobile_mllm.device.native import RunnerKind, build_runner, device_abi, runner_command
from mobile_mllm.errors import ConfigError, DeviceError

logger = logging.getLogger(__name__)

__all__ = ["DEVICE_ROOT", "LoopbackConfig", "LoopbackDevice", "decode_android_pubkey", "host_props"]

DEVICE_ROOT = "/data/local/tmp"
VERSION = 0x01000001
MAX_PAYLOAD = 256 * 1024
SYNC_DATA_MAX = 64 * 1024
AUTH_TOKEN, AUTH_SIGNATURE, AUTH_RSAPUBLICKEY = 1, 2, 3
HEADER = struct.Struct("<6I")


def _cmd(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


CNXN, AUTH, OPEN, OKAY, CLSE, WRTE = (_cmd(c) for c in (b"CNXN", b"AUTH", b"OPEN", b"OKAY", b"CLSE", b"WRTE"))
KNOWN_COMMANDS = {CNXN, AUTH, OPEN, OKAY, CLSE, WRTE, _cmd(b"SYNC")}


@dataclass(frozen=True)
class LoopbackConfig:
    """How a loopback device presents itself."""

    port: int = 5555
    """TCP port on 127.0.0.1 (0: any free port)."""
    root: str | None = None
    """Folder standing for /data/local/tmp (None: a new temporary folder)."""
    serial: str = "loopback"
    """The device's name in its banner (ro.serialno)."""
    authorized_keys: tuple[str, ...] = ()
    """Public-key files (adbkey.pub form) whose holders may connect; empty: ~/.android/adbkey.pub."""
    accept_new_keys: bool = False
    """Accept a public key the client offers (as if the user tapped "Allow" on the phone)."""
    capacity_bytes: int | None = None
    """Size of the "disk" under root (None: the host's real free space)."""
    runner: RunnerKind = RunnerKind.HOST
    """The device's mobile-mllm-runner: host (the Python runtime), or the native runner built for x86_64 or arm64 (arm64 emulated with qemu-aarch64-static: ExecuTorch's real arm64 kernels, times meaningless)."""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "runner", RunnerKind(self.runner))
        except ValueError as e:
            raise ConfigError(f"runner must be one of {', '.join(k.value for k in RunnerKind)}, got {self.runner!r}") from e
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"loopback port must be in 0..65535, got {self.port}")
        if self.capacity_bytes is not None and self.capacity_bytes < 0:
            raise ConfigError(f"capacity_bytes must be >= 0, got {self.capacity_bytes}")


def decode_android_pubkey(text: str) -> tuple[int, int]:
    """(modulus, exponent) of an ADB public key: base64 of Android's RSAPublicKey struct, then a comment.

    The struct is ``u32 words, u32 n0inv, u32 n[words], u32 rr[words], u32 e``, little-endian.
    """
    blob = base64.b64decode(text.strip().split()[0])
    words = struct.unpack_from("<I", blob, 0)[0]
    n = int.from_bytes(blob[8 : 8 + 4 * words], "little")
    e = struct.unpack_from("<I", blob, 8 + 8 * words)[0]
    return n, e


def _verify_token(key: tuple[int, int], token: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the PKCS#1 v1.5 signature of ``token`` as a SHA-1 digest (adb's RSA_sign)."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

    public = rsa.RSAPublicNumbers(key[1], key[0]).public_key()
    try:
        public.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
    except (InvalidSignature, ValueError):
        return False
    return True


def host_props(serial: str, abi: str | None = None) -> dict[str, str]:
    """getprop's answers, from this host's real facts (CPU model, ABI, kernel), labelled as a loopback device.

    ``abi`` overrides the ABI (an emulated native runner makes the device an arm64-v8a one).
    """
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    abi = abi or {"x86_64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}.get(platform.machine(), platform.machine())
    return {
        "ro.serialno": serial,
        "ro.product.manufacturer": "mobile-mllm",
        "ro.product.model": "loopback",
        "ro.product.name": "loopback",
        "ro.product.device": "loopback",
        "ro.product.cpu.abi": abi,
        "ro.board.platform": platform.machine(),
        "ro.soc.model": cpu,
        "ro.build.version.release": f"loopback ({platform.system()} {platform.release()})",
        "ro.build.version.sdk": "0",
    }


# --------------------------------------------------------------------------- streams


class _Stream:
    """One OPENed stream: our id, the client's id, an inbox of WRTE payloads, one WRTE in flight."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int) -> None:
        self.conn, self.local_id, self.remote_id = conn, local_id, remote_id
        self.inbox: queue.Queue[bytes | None] = queue.Queue()
        self._acked = threading.Event()
        self._acked.set()
        self.closed = threading.Event()
        self._clse_sent = False

    def send(self, data: bytes) -> None:
        """WRTE ``data`` in payload-sized pieces, each after the client's OKAY of the previous one."""
        step = self.conn.max_payload
        for i in range(0, len(data), step):
            while not self._acked.wait(0.5):
                if self.closed.is_set():
                    raise ConnectionError("stream closed by the client")
            if self.closed.is_set():
                raise ConnectionError("stream closed by the client")
            self._acked.clear()
            self.conn.send(WRTE, self.local_id, self.remote_id, data[i : i + step])

    def acked(self) -> None:
        self._acked.set()

    def close(self) -> None:
        """CLSE to the client (once, also in answer to the client's CLSE), and wake whoever waits on this stream."""
        self.closed.set()
        if not self._clse_sent:
            self._clse_sent = True
            self.conn.send(CLSE, self.local_id, self.remote_id)
            self.conn.forget(self.local_id)
        self.inbox.put(None)

    def remote_closed(self) -> None:
        self.closed.set()
        self._acked.set()
        self.inbox.put(None)


class _Reader:
    """Exact-size reads over a stream's WRTE payloads (a sync request may span packets)."""

    def __init__(self, stream: _Stream) -> None:
        self.stream, self.buf = stream, bytearray()

    def read(self, n: int) -> bytes:
        while len(self.buf) < n:
            piece = self.stream.inbox.get()
            if piece is None:
                raise EOFError("stream closed")
            self.buf += piece
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out


# --------------------------------------------------------------------------- connection


class _Connection:
    """One client connection: the handshake, then packets dispatched to streams."""

    def __init__(self, device: LoopbackDevice, sock: socket.socket) -> None:
        self.device, self.sock = device, sock
        self.max_payload = MAX_PAYLOAD
        self._send_lock = threading.Lock()
        self.streams: dict[int, _Stream] = {}
        self._next_id = 1
        self.procs: set[subprocess.Popen] = set()

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        header = HEADER.pack(command, arg0, arg1, len(data), byte_sum(data), command ^ 0xFFFFFFFF)
        with self._send_lock:
            self.sock.sendall(header + data)

    def forget(self, local_id: int) -> None:
        self.streams.pop(local_id, None)

    def read_packet(self) -> tuple[int, int, int, bytes]:
        command, arg0, arg1, length, _checksum, magic = HEADER.unpack(recv_exact(self.sock, HEADER.size))
        if magic != command ^ 0xFFFFFFFF or command not in KNOWN_COMMANDS or length > 16 * 1024 * 1024:
            raise ValueError(f"malformed packet header (command {command:#x}, magic {magic:#x}, length {length})")
        return command, arg0, arg1, recv_exact(self.sock, length) if length else b""

    def serve(self) -> None:
        try:
            self._handshake()
            while True:
                command, arg0, arg1, data = self.read_packet()
                self._dispatch(command, arg0, arg1, data)
        except (EOFError, ConnectionError, OSError, ValueError) as e:
            logger.debug("connection ended: %s", e)
        finally:
            for s in list(self.streams.values()):
                s.remote_closed()
            for p in list(self.procs):
                _kill(p)
            self.sock.close()

    def _handshake(self) -> None:
        command, _version, maxdata, _banner = self.read_packet()
        while command != CNXN:
            command, _version, maxdata, _banner = self.read_packet()
        self.max_payload = min(MAX_PAYLOAD, maxdata or MAX_PAYLOAD)
        known = self.device.known_keys()
        token = os.urandom(20)
        self.send(AUTH, AUTH_TOKEN, 0, token)
        while True:
            command, kind, _arg1, data = self.read_packet()
            if command != AUTH:
                continue
            if kind == AUTH_SIGNATURE:
                if any(_verify_token(k, token, data) for k in known):
                    break
                token = os.urandom(20)
                self.send(AUTH, AUTH_TOKEN, 0, token)
            elif kind == AUTH_RSAPUBLICKEY:
                text = data.rstrip(b"\0").decode("ascii", "replace")
                if self.device.config.accept_new_keys:
                    self.device.accept_key(text)
                    break
                logger.info("refused an unknown ADB key (%s); run with accept_new_keys to allow it", text.split()[-1])
        self.send(CNXN, VERSION, MAX_PAYLOAD, self.device.banner())

    def _dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == OPEN:
            local_id = self._next_id
            self._next_id += 1
            stream = _Stream(self, local_id, arg0)
            self.streams[local_id] = stream
            service = data.rstrip(b"\0").decode("utf-8", "replace")
            handler = self.device.service(service)
            if handler is None:
                self.forget(local_id)
                self.send(CLSE, 0, arg0)
                return
            self.send(OKAY, local_id, arg0)
            threading.Thread(target=self._run_service, args=(handler, stream), daemon=True).start()
        elif command in (WRTE, OKAY, CLSE):
            stream = self.streams.get(arg1)
            if stream is None:
                return
            if command == WRTE:
                stream.inbox.put(data)
                self.send(OKAY, arg1, arg0)
            elif command == OKAY:
                stream.acked()
            else:
                self.forget(arg1)
                stream.remote_closed()

    def _run_service(self, handler: Callable[[_Connection, _Stream], None], stream: _Stream) -> None:
        try:
            handler(self, stream)
        except (ConnectionError, EOFError, OSError) as e:
            logger.debug("stream %d ended: %s", stream.local_id, e)
        finally:
            try:
                stream.close()
            except OSError:
                pass


def _kill(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


# --------------------------------------------------------------------------- services


def _run_command(conn: _Connection, stream: _Stream, command: str, *, mode: str) -> None:
    """Run ``command`` with /bin/sh in the root; ``mode`` is "shell" (merged), "exec" (stdout) or "v2"."""
    device = conn.device
    proc = subprocess.Popen(
        ["/bin/sh", "-c", device.map_command(command) or "exec /bin/sh -i"],
        cwd=device.root, env=device.env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE if mode == "v2" else (subprocess.STDOUT if mode == "shell" else subprocess.DEVNULL),
        start_new_session=True,
    )
    conn.procs.add(proc)
    send_lock = threading.Lock()

    def emit(kind: int, data: bytes) -> None:
        with send_lock:
            stream.send(struct.pack("<BI", kind, len(data)) + data if mode == "v2" else data)

    def pump(pipe: object, kind: int) -> None:
        fd = pipe.fileno()  # type: ignore[attr-defined]
        while True:
            data = os.read(fd, SYNC_DATA_MAX)
            if not data:
                return
            emit(kind, data)

    def feed() -> None:
        reader = _Reader(stream)
        try:
            while True:
                if mode != "v2":
                    piece = stream.inbox.get()
                    if piece is None:
                        break
                    proc.stdin.write(piece)  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                    continue
                kind, length = struct.unpack("<BI", reader.read(5))
                data = reader.read(length)
                if kind == 0:
                    proc.stdin.write(data)  # type: ignore[union-attr]
                    proc.stdin.flush()  # type: ignore[union-attr]
                elif kind == 4:
                    break
        except (EOFError, OSError, ValueError):
            pass
        finally:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass
        if stream.closed.is_set():  # the client hung up: like adbd, end the command
            _kill(proc)

    pumps = [threading.Thread(target=pump, args=(proc.stdout, 1), daemon=True)]
    if mode == "v2":
        pumps.append(threading.Thread(target=pump, args=(proc.stderr, 2), daemon=True))
    threading.Thread(target=feed, daemon=True).start()
    for t in pumps:
        t.start()
    try:
        for t in pumps:
            t.join()
        code = proc.wait()
    finally:
        _kill(proc)
        conn.procs.discard(proc)
    if mode == "v2":
        emit(3, bytes([code & 0xFF if code >= 0 else 128 - code]))


class _Sync:
    """The ``sync:`` service of one stream (SYNC.TXT): requests are ``id, u32`` headers plus payloads."""

    def __init__(self, conn: _Connection, stream: _Stream) -> None:
        self.device, self.stream, self.reader = conn.device, stream, _Reader(stream)

    def reply(self, ident: bytes, *values: int, data: bytes = b"") -> None:
        self.stream.send(ident + struct.pack(f"<{len(values)}I", *values) + data)

    def fail(self, message: str) -> None:
        raw = message.encode()
        self.reply(b"FAIL", len(raw), data=raw)

    def serve(self) -> None:
        handlers = {b"STAT": self.stat, b"LIST": self.list, b"SEND": self.send, b"RECV": self.recv}
        while True:
            ident, length = struct.unpack("<4sI", self.reader.read(8))
            if ident == b"QUIT":
                return
            if ident not in handlers or length > 4096:
                self.fail(f"unknown sync request {ident!r}")
                return
            handlers[ident](self.reader.read(length).decode("utf-8", "replace"))

    def stat(self, remote: str) -> None:
        local = self.device.map_path(remote)
        try:
            st = os.stat(local) if local else None
        except OSError:
            st = None
        if st is None:
            self.reply(b"STAT", 0, 0, 0)
        else:
            self.reply(b"STAT", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF)

    def list(self, remote: str) -> None:
        local = self.device.map_path(remote)
        entries = sorted(os.scandir(local), key=lambda e: e.name) if local and os.path.isdir(local) else []
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            name = entry.name.encode()
            self.reply(b"DENT", st.st_mode & 0xFFFFFFFF, st.st_size & 0xFFFFFFFF, int(st.st_mtime) & 0xFFFFFFFF,
                       len(name), data=name)
        self.reply(b"DONE", 0, 0, 0, 0)

    def send(self, spec: str) -> None:
        remote, _, mode_text = spec.rpartition(",")
        if not remote:
            remote, mode_text = spec, "33188"
        local = self.device.map_path(remote)
        error = None if local else f"refused: {remote} is outside {DEVICE_ROOT}"
        out = None
        if local:
            try:
                os.makedirs(os.path.dirname(local), exist_ok=True)
                out = open(local, "wb")  # noqa: SIM115 - closed below, on every path
            except OSError as e:
                error = f"cannot write {remote}: {e.strerror}"
        room = self.device.free_bytes()
        written = 0
        try:
            while True:
                ident, value = struct.unpack("<4sI", self.reader.read(8))
                if ident == b"DONE":
                    mtime = value
                    break
                if ident != b"DATA" or value > MAX_PAYLOAD:
                    raise ValueError(f"bad sync packet {ident!r} in SEND")
                data = self.reader.read(value)
                written += len(data)
                if error is None and room is not None and written > room:
                    error = f"write {remote}: No space left on device"
                if error is None and out is not None:
                    out.write(data)
        finally:
            if out is not None:
                out.close()
        if error is not None:
            if out is not None:
                os.unlink(local)  # type: ignore[arg-type]
            self.fail(error)
            return
        os.chmod(local, int(mode_text or "33188") & 0o777)  # type: ignore[arg-type]
        os.utime(local, (mtime, mtime))  # type: ignore[arg-type]
        self.reply(b"OKAY", 0)

    def recv(self, remote: str) -> None:
        local = self.device.map_path(remote)
        if not local or not os.path.isfile(local):
            self.fail(f"cannot read {remote}: {'outside ' + DEVICE_ROOT if not local else 'No such file'}")
            return
        with open(local, "rb") as f:
            while data := f.read(SYNC_DATA_MAX):
                self.reply(b"DATA", len(data), data=data)
        self.reply(b"DONE", 0)


# --------------------------------------------------------------------------- the device


@dataclass
class LoopbackDevice:
    """A running loopback device: ``start()`` listens, ``close()`` stops it and its commands.

    Example:
        >>> with LoopbackDevice(LoopbackConfig(port=0, accept_new_keys=True)) as dev:  # doctest: +SKIP
        ...     print(dev.address)
        127.0.0.1:40123
    """

    config: LoopbackConfig = field(default_factory=LoopbackConfig)

    def __post_init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="mobile_mllm_loopback_")
        self.root = os.path.realpath(self.config.root or os.path.join(self._tmp.name, "data_local_tmp"))
        if shlex.quote(self.root) != self.root:  # it is spliced into quoted device commands
            raise DeviceError(f"loopback root {self.root!r} has characters a shell would interpret; use a plain path")
        os.makedirs(self.root, exist_ok=True)
        self.bin_dir = os.path.join(self._tmp.name, "bin")
        self._keys: list[tuple[int, int]] = []
        self._keys_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[_Connection] = []
        self.port = self.config.port
        self._write_bin()

    # ---- keys
    def known_keys(self) -> list[tuple[int, int]]:
        """Keys accepted so far plus those in the authorized files, read at each handshake (a key made later counts)."""
        keys = []
        for name in self.config.authorized_keys or (str(Path.home() / ".android" / "adbkey.pub"),):
            try:
                text = Path(name).read_text()
            except OSError:
                logger.debug("no public key at %s", name)
                continue
            keys.extend(decode_android_pubkey(line) for line in text.splitlines() if line.strip())
        with self._keys_lock:
            return keys + self._keys

    def accept_key(self, text: str) -> None:
        with self._keys_lock:
            self._keys.append(decode_android_pubkey(text))

    # ---- the "phone"
    def props(self) -> dict[str, str]:
        """getprop's answers: the host's facts, with the ABI of the native runner when there is one."""
        return host_props(self.config.serial, device_abi(self.config.runner))

    def banner(self) -> bytes:
        props = self.props()
        fields = ";".join(f"{k}={props[k]}" for k in ("ro.product.name", "ro.product.model", "ro.product.device"))
        return f"device::{fields};features=shell_v2".encode()

    def _write_bin(self) -> None:
        os.makedirs(self.bin_dir, exist_ok=True)
        props = self.props()
        cases = "".join(f"  {shlex.quote(k)}) echo {shlex.quote(v)} ;;\n" for k, v in props.items())
        listing = "".join(f"echo {shlex.quote(f'[{k}]: [{v}]')}\n" for k, v in props.items())
        scripts = {
            "getprop": f'#!/bin/sh\nif [ $# -eq 0 ]; then\n{listing}exit 0\nfi\ncase "$1" in\n{cases}  *) echo ;;\nesac\n',
            "mobile-mllm-runner": self._runner_script(),
        }
        if self.config.capacity_bytes is not None:
            scripts["df"] = (
                "#!/bin/sh\nused=$(du -sk " + shlex.quote(self.root) + " | cut -f1)\n"
                f"cap={self.config.capacity_bytes // 1024}\n"
                'echo "Filesystem 1K-blocks Used Available Use% Mounted on"\n'
                'echo "loopback $cap $used $((cap - used > 0 ? cap - used : 0)) 0% /data"\n'
            )
        for name, text in scripts.items():
            path = os.path.join(self.bin_dir, name)
            Path(path).write_text(text)
            os.chmod(path, 0o755)

    def _runner_script(self) -> str:
        """The device's ``mobile-mllm-runner``: the host runner, or the native one (built now if out of date)."""
        if self.config.runner is RunnerKind.HOST:
            return (
                f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(Path(__file__).resolve().parents[2]))}${{PYTHONPATH:+:$PYTHONPATH}} "
                f"exec {shlex.quote(sys.executable)} -m mobile_mllm.device.runner \"$@\"\n"
            )
        abi = self.config.runner.value
        logger.info("building the %s native runner for the loopback device (cached after the first time)", abi)
        command = runner_command(abi, build_runner(abi))
        return "#!/bin/sh\nexec " + " ".join(shlex.quote(c) for c in command) + ' "$@"\n'

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PATH=f"{self.bin_dir}:{env.get('PATH', '/usr/bin:/bin')}", HOME=self.root, TMPDIR=self.root)
        return env

    def map_command(self, command: str) -> str:
        """The command with the device's ``/data/local/tmp`` prefix pointing at ``root``."""
        return command.replace(DEVICE_ROOT, self.root)

    def map_path(self, remote: str) -> str | None:
        """The host path of a device path under /data/local/tmp, or None when it is outside."""
        norm = posixpath.normpath(remote)
        if norm != DEVICE_ROOT and not norm.startswith(DEVICE_ROOT + "/"):
            return None
        local = os.path.realpath(os.path.join(self.root, norm[len(DEVICE_ROOT) :].lstrip("/")))
        return local if local == self.root or local.startswith(self.root + os.sep) else None

    def free_bytes(self) -> int | None:
        """Room left on the small disk, or None without ``capacity_bytes``."""
        if self.config.capacity_bytes is None:
            return None
        used = sum(f.stat().st_size for f in Path(self.root).rglob("*") if f.is_file())
        return max(0, self.config.capacity_bytes - used)

    def service(self, name: str) -> Callable[[_Connection, _Stream], None] | None:
        """The handler of an OPENed service, or None (the stream is refused with CLSE)."""
        if name.startswith("shell,v2") or name.startswith("shell,"):
            command = name.split(":", 1)[1] if ":" in name else ""
            return lambda c, s: _run_command(c, s, command, mode="v2" if "v2" in name.split(":", 1)[0] else "shell")
        if name.startswith("shell:"):
            return lambda c, s: _run_command(c, s, name[len("shell:") :], mode="shell")
        if name.startswith("exec:"):
            return lambda c, s: _run_command(c, s, name[len("exec:") :], mode="exec")
        if name.startswith("sync:"):
            return lambda c, s: _Sync(c, s).serve()
        logger.debug("refused service %r", name)
        return None

    # ---- server
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> LoopbackDevice:
        """Listen on 127.0.0.1 and serve clients in threads; returns self."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.config.port))
        except OSError as e:
            raise DeviceError(f"cannot listen on 127.0.0.1:{self.config.port} ({e.strerror}); pick another --port") from e
        sock.listen(8)
        self._sock, self.port = sock, sock.getsockname()[1]
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        logger.info("loopback device %s on %s, /data/local/tmp = %s", self.config.serial, self.address, self.root)
        return self

    def _accept(self) -> None:
        assert self._sock is not None
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Connection(self, client)
            self._conns.append(conn)
            threading.Thread(target=conn.serve, daemon=True).start()

    def serve_forever(self) -> None:
        """Block until interrupted."""
        threading.Event().wait()

    def close(self) -> None:
        """Stop listening, drop every connection (their commands are killed), remove the temporary folder."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        for conn in self._conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._tmp.cleanup()

    def __enter__(self) -> LoopbackDevice:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

