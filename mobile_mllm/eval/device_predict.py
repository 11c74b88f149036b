"""Answer benchmark questions on phones over ADB, through the runner contract's batch mode.

``--backend device``: the program folder is pushed once per device, each question's image once
per device (named by its content hash, so an image already there is skipped, also across runs),
and questions go to the runner in batches (``runner --program-dir DIR --requests FILE.jsonl``,
``android_app/RUNNER.md``): the program is loaded once per batch, and every request answers with
one ``PyTorchObserver {json}`` line holding the text and the same stats the host records.
Each batch's answers are yielded when the batch returns, so ``run.py`` appends them to the same
prediction file as the host backends; a device lost mid-run raises ``DeviceError`` after the
answers of the finished batches are saved, and the next run resumes from there.

With ``serial = "all"`` the questions are sharded over every connected device (one thread per
device; a batch goes to whichever device is free).

Deliberately not here: ADB itself (``mobile_mllm.device``: connections, pushes with hash checks,
the runner's command line), what is asked and where answers go (``run.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import posixpath
import queue
import shlex
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from mobile_mllm import contract
from mobile_mllm.errors import DeviceError, RunnerError
from mobile_mllm.eval.predict import Prediction, Request, sample_stats

logger = logging.getLogger(__name__)

__all__ = ["AdbLink", "DeviceLink", "DeviceSpec", "open_links", "parse_batch_output", "predict_devices", "predict_on_links"]

ALL_DEVICES = "all"


@dataclass(frozen=True)
class DeviceSpec:
    """What the device backend needs (picklable: a Ray actor on another node rebuilds its links from it)."""

    program_dir: str
    """The exported program folder on this machine."""
    serial: str = ""
    """A device serial, ``all`` for every connected device, or empty for the only one."""
    max_new_tokens: int = 32
    batch: int = 16
    """Questions per runner invocation."""
    remote_root: str = "/data/local/tmp/mobile_mllm"


class DeviceLink(Protocol):
    """The ADB operations the device backend uses (``mobile_mllm.device`` provides them)."""

    serial: str

    def push_program(self, program_dir: Path) -> str:
        """Push the program folder (skipped when the copy there matches); return its folder on the device."""
        ...

    def push_file(self, local: Path, remote: str) -> None:
        """Push one file (a size/hash-checked copy)."""
        ...

    def list_dir(self, remote: str) -> set[str]:
        """Names in a folder on the device (empty when it does not exist)."""
        ...

    def run_runner(self, program_remote: str, args: Sequence[str]) -> tuple[int, str, str]:
        """Run the runner in ``program_remote`` with ``args``; return (exit code, stdout, stderr)."""
        ...


def parse_batch_output(stdout: str, ids: Sequence[str]) -> list[Prediction]:
    """The predictions in a batch run's stdout: one ``PyTorchObserver {json}`` line per request.

    Raises:
        RunnerError: a line is not JSON, names an unknown id, or a request has no line (the runner
            died mid-batch: the message says which request it was on).

    Example:
        >>> out = 'PyTorchObserver {"id": "7", "text": "Yes", "num_tiles": 3, "grid": [1, 2]}\\n'
        >>> parse_batch_output(out, ["7"])[0].stats
        {'num_tiles': 3, 'grid': [1, 2]}
    """
    found: dict[str, Prediction] = {}
    for line in stdout.splitlines():
        at = line.find(contract.STATS_LINE_PREFIX)
        if at < 0:
            continue
        try:
            record = json.loads(line[at + len(contract.STATS_LINE_PREFIX):])
        except ValueError as e:
            raise RunnerError(f"runner printed a stats line that is not JSON ({e}): {line[:200]}") from e
        key = str(record.get("id"))
        if key not in ids:
            raise RunnerError(f"runner answered request id {key!r}, which was not in the batch")
        if "error" in record:
            found[key] = Prediction(key, "", error=str(record["error"]), error_type=str(record.get("error_type")))
        else:
            found[key] = Prediction(key, str(record.get("text", "")).strip(), sample_stats(record))
    missing = [k for k in ids if k not in found]
    if missing:
        raise RunnerError(f"runner gave no stats line for {len(missing)} of {len(ids)} requests (first: id {missing[0]}); "
                          "it probably crashed on that request")
    return [found[k] for k in ids]


def _image_bytes(request: Request) -> tuple[bytes, str] | None:
    """The encoded image of a request and a file suffix, or None (text-only question)."""
    image = request.image
    if image is None:
        return None
    if isinstance(image, str):
        data = base64.b64decode(image)
    elif hasattr(image, "load") and not hasattr(image, "size"):
        from mobile_mllm.eval.synthetic import encode_png

        data = base64.b64decode(encode_png(image.load()))
    elif isinstance(image, bytes):
        data = image
    else:  # a PIL image
        from mobile_mllm.eval.synthetic import encode_png

        data = base64.b64decode(encode_png(image))
    suffix = ".jpg" if data[:3] == b"\xff\xd8\xff" else ".png"
    return data, suffix


def _run_batch(link: DeviceLink, program_remote: str, images_remote: str, present: set[str],
               batch: Sequence[Request], spec: DeviceSpec, scratch: Path) -> list[Prediction]:
    lines = []
    for request in batch:
        payload = _image_bytes(request)
        remote_image = None
        if payload is not None:
            data, suffix = payload
            name = hashlib.sha256(data).hexdigest()[:32] + suffix
            remote_image = f"{images_remote}/{name}"
            if name not in present:  # pushed once per device, ever: the name is the content's hash
                local = scratch / name
                local.write_bytes(data)
                link.push_file(local, remote_image)
                present.add(name)
        # relative to the runner's folder (it runs there): no device path inside a file the host must map
        image_arg = posixpath.relpath(remote_image, program_remote) if remote_image else None
        # styled false: eval's prompts carry their own instruction (no second styling by the model's template)
        lines.append(json.dumps({"id": request.key, "image": image_arg, "prompt": request.prompt, "styled": False}))
    requests_file = scratch / "requests.jsonl"
    requests_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    remote_requests = f"{spec.remote_root}/eval_requests_{link.serial.replace(':', '_')}.jsonl"
    link.push_file(requests_file, remote_requests)
    args = ["--program-dir", program_remote, "--requests", remote_requests,
            "--max-new-tokens", str(spec.max_new_tokens), "--no-stream"]
    code, stdout, stderr = link.run_runner(program_remote, args)
    if code != 0:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        raise RunnerError(f"runner on {link.serial} exited with {code} on a batch of {len(batch)}: {tail}")
    return parse_batch_output(stdout, [r.key for r in batch])


def predict_on_links(requests: Sequence[Request], links: Sequence[DeviceLink], spec: DeviceSpec) -> Iterator[Prediction]:
    """Answer ``requests`` in batches on ``links`` (one thread per device), yielding each batch's answers.

    Raises:
        DeviceError: a device failed (answers of finished batches were yielded before).
    """
    items = list(requests)
    if not items:
        return
    batches: queue.Queue[list[Request]] = queue.Queue()
    for i in range(0, len(items), spec.batch):
        batches.put(items[i : i + spec.batch])
    results: queue.Queue[list[Prediction] | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def work(link: DeviceLink) -> None:
        try:
            program_remote = link.push_program(Path(spec.program_dir))
            images_remote = f"{spec.remote_root}/images"
            present = link.list_dir(images_remote)
            with tempfile.TemporaryDirectory(prefix="mobile_mllm_eval_") as tmp:
                while not stop.is_set():
                    try:
                        batch = batches.get_nowait()
                    except queue.Empty:
                        break
                    results.put(_run_batch(link, program_remote, images_remote, present, batch, spec, Path(tmp)))
        except BaseException as e:  # noqa: BLE001 (handed to the consumer thread, which re-raises it)
            results.put(e)
        finally:
            results.put(None)

    threads = [threading.Thread(target=work, args=(link,), daemon=True, name=f"eval-{link.serial}") for link in links]
    for t in threads:
        t.start()
    finished = 0
    try:
        while finished < len(threads):
            item = results.get()
            if item is None:
                finished += 1
            elif isinstance(item, BaseException):
                stop.set()
                if isinstance(item, DeviceError):
                    raise item
                raise DeviceError(f"device backend failed: {type(item).__name__}: {item}") from item
            else:
                yield from item
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)


class AdbLink:
    """:class:`DeviceLink` over one ADB connection (``mobile_mllm.device``: hash-checked pushes, the runner lookup).

    Args:
        serial (str | None): the device (None: the one connected device).
        timeout_s (float): longest a batch may run on the device. Default 1800.
    """

    def __init__(self, serial: str | None, *, timeout_s: float = 1800.0) -> None:
        from mobile_mllm.device.discover import open_device

        self.device = open_device(serial)
        self.serial = self.device.serial
        self.timeout_s = timeout_s
        self.abi = self.device.getprop("ro.product.cpu.abi")
        self._runner = ""

    def push_program(self, program_dir: Path) -> str:
        from mobile_mllm.device.push import push_program
        from mobile_mllm.device.run import find_runner

        result = push_program(self.device, program_dir, abi=self.abi)
        logger.info("%s: program in %s (%d file(s) pushed, %d already there)", self.serial, result.remote_dir,
                    len(result.pushed), len(result.skipped))
        self._runner = find_runner(self.device, result.remote_dir, self.abi)
        return result.remote_dir

    def push_file(self, local: Path, remote: str) -> None:
        from mobile_mllm.device.push import push_file

        push_file(self.device, local, remote)

    def list_dir(self, remote: str) -> set[str]:
        q = shlex.quote(remote)
        return set(self.device.check(f"mkdir -p {q} && ls {q}").split())

    def run_runner(self, program_remote: str, args: Sequence[str]) -> tuple[int, str, str]:
        argv = " ".join(shlex.quote(a) for a in (self._runner, *args))
        r = self.device.run(f"cd {shlex.quote(program_remote)} && {argv}", timeout_s=self.timeout_s)
        return r.exit_code, r.stdout, r.stderr


def open_links(serial: str) -> list[DeviceLink]:
    """Links to the device named by ``serial`` (``all``: every connected device; empty: the only one).

    Raises:
        DeviceNotFoundError: no device (or, without a serial, several).
    """
    from mobile_mllm.device.discover import list_devices

    if serial == ALL_DEVICES:
        devices = list_devices()
        ready = [d.serial for d in devices if d.state == "device"]
        for d in devices:
            if d.state != "device":
                logger.warning("device %s is %s and gets no questions: %s", d.serial, d.state, d.error)
        if not ready:
            from mobile_mllm.errors import DeviceNotFoundError

            raise DeviceNotFoundError("--serial all: no ready device; connect a phone (USB debugging on) or set "
                                      "$MOBILE_MLLM_ADB_DEVICES to HOST:PORT,…")
        return [AdbLink(s) for s in ready]
    return [AdbLink(serial or None)]


def predict_devices(requests: Sequence[Request], spec: DeviceSpec) -> Iterator[Prediction]:
    """Answer ``requests`` on the device(s) ``spec.serial`` names; see :func:`predict_on_links`."""
    items = list(requests)
    if not items:
        return
    links = open_links(spec.serial)
    logger.info("device backend: %d question(s) on %s, batches of %d", len(items), ", ".join(l.serial for l in links), spec.batch)
    yield from predict_on_links(items, links, spec)

