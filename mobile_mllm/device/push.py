"""Push an exported program folder to a device, so that a push either fully happened or did not count.

Each file goes to a temporary name, is checked (size and SHA-256 computed on the device) and
only then renamed into place; a file already there with the same size and hash is skipped; a
dropped transfer is retried on a new connection; a device without room for the files is
refused before the first byte. Progress goes through a callback (the CLI draws tqdm).
Deliberately not here: the connection (adb.py), running (run.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_mllm import contract
from mobile_mllm.device.discover import WORK_DIR, parse_df_available
from mobile_mllm.errors import ContractError, DeviceError, TransferError
from mobile_mllm.runtime.onnx_vision import vision_program_file

logger = logging.getLogger(__name__)

__all__ = ["PushResult", "default_remote_dir", "program_files", "push_file", "push_program", "sha256_file"]

Progress = Callable[[str, int, int], None]
"""``on_progress(file_name, bytes_done, bytes_total)`` over the whole push."""


@dataclass(frozen=True)
class PushResult:
    """What a push did: the folder on the device, files sent, files already there."""

    remote_dir: str
    pushed: tuple[str, ...]
    skipped: tuple[str, ...]
    bytes_sent: int


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def default_remote_dir(out: Path) -> str:
    """``/data/local/tmp/mobile_mllm/<folder name>``."""
    return posixpath.join(WORK_DIR, out.resolve().name)


def program_files(out: Path, abi: str = "") -> list[Path]:
    """The files of an export folder a device needs: program, manifest, tokenizer, the manifest's image
    encoder beside the program (``vision.onnx``, with ``vision_engine`` onnxruntime), and ``runner-<abi>`` if present.

    Raises:
        ContractError: ``out`` is not an export folder (checked before any device is contacted).
    """
    names = [contract.PROGRAM_FILE, contract.MANIFEST_FILE, contract.TOKENIZER_FILE]
    engine_file = vision_program_file(_manifest_or_empty(out))
    names += [engine_file] if engine_file is not None else []
    missing = [n for n in names if not (out / n).is_file()]
    if missing:
        raise ContractError(f"{out} is not an exported program folder (missing {', '.join(missing)}); "
                            "make one with mobile-mllm export")
    runner = out / f"runner-{abi}"
    return [out / n for n in names] + ([runner] if abi and runner.is_file() else [])


def _manifest_or_empty(out: Path) -> dict[str, Any]:
    """The folder's manifest as plain JSON, or {} when missing or unreadable (the missing-files check names it)."""
    try:
        data = json.loads((out / contract.MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remote_digest(device: Any, remote: str) -> tuple[int, str] | None:
    """(size, sha256) of a device file, or None when it does not exist."""
    q = shlex.quote(remote)
    r = device.run(f"[ -f {q} ] && wc -c < {q} && sha256sum {q}")
    lines = r.stdout.split()
    if r.exit_code != 0 or len(lines) < 2 or not lines[0].isdigit():
        return None
    return int(lines[0]), lines[1]


def _free_bytes(device: Any, remote_dir: str) -> int:
    q = shlex.quote(remote_dir)
    return parse_df_available(device.check(f"mkdir -p {q} && df -k {q}"))


def push_file(
    device: Any, local: Path, remote: str, *, retries: int = 2, on_bytes: Callable[[int], None] | None = None,
    digest: str | None = None,
) -> bool:
    """Copy ``local`` to ``remote`` via a temporary name, checked before the rename; False if already there.

    Args:
        device: an :class:`~mobile_mllm.device.adb.AdbDevice`.
        local (Path): the file.
        remote (str): its path on the device.
        retries (int): new attempts after a dropped or corrupted transfer. Default 2.
        on_bytes (Callable[[int], None] | None): called with each chunk's byte count.
        digest (str | None): ``local``'s SHA-256 when already known.

    Raises:
        TransferError: every attempt failed; ``remote`` was not created or changed.
    """
    size, digest = local.stat().st_size, digest or sha256_file(local)
    if remote_digest(device, remote) == (size, digest):
        logger.info("%s: already on %s (same size and SHA-256), skipped", local.name, device.serial)
        return False
    tmp = f"{remote}.part"
    last: Exception | None = None
    for attempt in range(1 + retries):
        try:
            if attempt:
                device.reconnect()
            device.push(local, tmp, on_bytes)
            got = remote_digest(device, tmp)
            if got != (size, digest):
                raise TransferError(f"{remote} arrived as {got} instead of ({size}, {digest[:12]}...)")
            device.check(f"mv -f {shlex.quote(tmp)} {shlex.quote(remote)}")
            return True
        except TransferError as e:
            if "No space left" in str(e) or "refused" in str(e):
                _remove(device, tmp)
                raise
            last = e
        except DeviceError as e:
            last = e
        logger.warning("push of %s to %s failed (attempt %d of %d): %s", local.name, device.serial,
                       attempt + 1, retries + 1, last)
    _remove(device, tmp)
    raise TransferError(f"push of {local} to {device.serial}:{remote} failed after {retries + 1} attempt(s): {last}; "
                        "nothing was replaced on the device") from last


def _remove(device: Any, remote: str) -> None:
    try:
        device.reconnect()
        device.run(f"rm -f {shlex.quote(remote)}")
    except DeviceError as e:
        logger.warning("could not remove the partial file %s: %s", remote, e)


def push_program(
    device: Any, out: Path, *, remote_dir: str | None = None, abi: str = "", retries: int = 2,
    on_progress: Progress | None = None,
) -> PushResult:
    """Push an export folder (see :func:`program_files`) to ``remote_dir``; skip what is already there.

    Raises:
        TransferError: not an export folder, not enough room on the device, or a file failed every retry.
    """
    remote_dir = remote_dir or default_remote_dir(out)
    files = program_files(out, abi)
    digests = {f: sha256_file(f) for f in files}
    todo = [f for f in files if remote_digest(device, posixpath.join(remote_dir, f.name)) != (f.stat().st_size, digests[f])]
    need = sum(f.stat().st_size for f in todo)
    logger.info("%s -> %s:%s: %d file(s) to push (%.1f MB), %d already there (same size and SHA-256)",
                out, device.serial, remote_dir, len(todo), need / 1e6, len(files) - len(todo))
    free = _free_bytes(device, remote_dir) if todo else 0
    if need > free:
        raise TransferError(
            f"{device.serial} has {free / 1e6:.1f} MB free in {remote_dir} but the push needs {need / 1e6:.1f} MB; "
            f"free space on the device (e.g. adb shell rm -r {WORK_DIR}/OLD) and retry"
        )
    done = [0]
    for f in todo:
        def on_bytes(n: int, name: str = f.name) -> None:
            done[0] += n
            if on_progress is not None:
                on_progress(name, done[0], need)

        push_file(device, f, posixpath.join(remote_dir, f.name), retries=retries, on_bytes=on_bytes, digest=digests[f])
    skipped = tuple(f.name for f in files if f not in todo)
    return PushResult(remote_dir, tuple(f.name for f in todo), skipped, need)
