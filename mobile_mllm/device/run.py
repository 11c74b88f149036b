"""Run the runner of ``android_app/RUNNER.md`` on a device: stream its text, parse its stats, watch its memory.

The device-side command starts the runner in the background, records its PID, samples its
``/proc/PID/status`` (VmHWM, VmRSS, VmSwap) every 0.1 s while it lives and waits for it; the
host reads the streamed stdout (answer text and ``PyTorchObserver`` lines) and stderr over one
shell,v2 stream. Every user value is quoted with :func:`shlex.quote`. A runner that outlives
the timeout is killed on the device (by its PID, over a new connection) and reported.
Deliberately not here: pushing (push.py), statistics over runs and charts (profile.py).
"""

from __future__ import annotations

import json
import logging
import posixpath
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mobile_mllm import contract
from mobile_mllm.contract import STATS_LINE_PREFIX
from mobile_mllm.errors import ContractError, DeviceError, RunnerError

logger = logging.getLogger(__name__)

__all__ = ["RunnerConfig", "RunResult", "check_runner_images", "find_runner", "parse_memory", "parse_stats_line", "peak_memory_bytes", "push_input", "answer_on_device", "check_image", "runner_argv", "run_on_device"]

HOST_RUNNER = "mobile-mllm-runner"
"""The runner's name on the device's PATH when no native runner was pushed (the loopback device has it)."""
_PID_FILE, _MEM_FILE = ".runner.pid", ".runner.mem"
_CONTRACT_CODES = {2: "bad arguments", 3: "the image cannot be loaded", 5: "the prompt does not fit the context",
                   6: "the program or manifest violates the runner contract"}


@dataclass(frozen=True)
class RunnerConfig:
    """Runner settings (android_app/RUNNER.md); None means the manifest's value."""

    max_new_tokens: int = 128
    """Most answer tokens per run."""
    tile_batch: int | None = None
    """Tiles per vision_encoder call (None: the manifest's)."""
    prefill_chunk: int | None = None
    """Positions per prefill call (None: the manifest's)."""
    threads: int = 0
    """Runner worker threads (0: the runtime's default)."""
    runs: int = 1
    """Measured runs."""
    warmup: int = 0
    """Runs before the measured ones."""
    timeout_s: float = 600.0
    """Seconds the runner may take before it is killed on the device."""


@dataclass(frozen=True)
class RunResult:
    """One runner invocation: its stats records, the sampled memory, stderr's last lines, the exit code."""

    records: tuple[dict[str, Any], ...]
    memory_samples: tuple[dict[str, int], ...]
    peak_memory_bytes: int
    stderr_tail: str
    exit_code: int
    runner: str


def runner_argv(runner: str, program_dir: str, image: str | None, prompt: str, cfg: RunnerConfig,
                etdump: str | None = None) -> str:
    """The runner's command line, every value quoted for the device's shell."""
    args = [runner, "--program-dir", program_dir, "--prompt", prompt, "--max-new-tokens", str(cfg.max_new_tokens),
            "--threads", str(cfg.threads), "--runs", str(cfg.runs), "--warmup", str(cfg.warmup)]
    if image is not None:
        args += ["--image", image]
    for flag, value in (("--tile-batch", cfg.tile_batch), ("--prefill-chunk", cfg.prefill_chunk), ("--etdump", etdump)):
        if value is not None:
            args += [flag, str(value)]
    return " ".join(shlex.quote(a) for a in args)


def find_runner(device: Any, remote_dir: str, abi: str = "") -> str:
    """The runner to call: ``runner-<abi>`` pushed into ``remote_dir``, else ``mobile-mllm-runner`` on the PATH.

    Raises:
        RunnerError: none found, or the pushed one is not executable.
    """
    native = posixpath.join(remote_dir, f"runner-{abi}") if abi else ""
    q = shlex.quote(native)
    if native and device.run(f"[ -f {q} ]").exit_code == 0:
        if device.run(f"[ -x {q} ] || chmod 755 {q}").exit_code != 0:
            raise RunnerError(f"the runner {native} on {device.serial} is not executable and chmod failed")
        return native
    path = device.run(f"command -v {HOST_RUNNER}").stdout.strip()
    if not path:
        raise RunnerError(f"no runner on {device.serial}: neither {native or 'runner-<abi>'} nor {HOST_RUNNER} on the "
                          "PATH; build the native runner (android_app/) into the export folder and push again")
    return HOST_RUNNER


def check_runner_images(runner: str, out: Path, image: Path | str | None) -> None:
    """Refuse to send an image to a runner that runs only ``model.pte`` when the program has no ``vision_encoder``.

    A program exported with ``--no-pte-vision-encoder`` encodes images with ``vision.onnx``, which
    the host runner opens (``runtime/onnx_vision.py``) but the native runner, like ExecuTorch's
    stock runner, does not: better a message before the run than a missing-method failure on the phone.

    Raises:
        ContractError: ``image`` is given, ``runner`` is not the host runner, and the manifest's program lacks it.
    """
    from mobile_mllm.export.manifest import read_manifest
    from mobile_mllm.runtime.onnx_vision import pte_has_vision_encoder

    if image is None or runner == HOST_RUNNER or pte_has_vision_encoder(read_manifest(out)):
        return
    raise ContractError(
        f"{out / contract.PROGRAM_FILE} has no {contract.VISION_ENCODER} (exported with --no-pte-vision-encoder; "
        f"its images are encoded by {contract.VISION_ONNX_FILE}), but the runner {runner} runs only model.pte; "
        "re-export with --pte-vision-encoder to ask it about images, or ask without an image"
    )


def _script(work_dir: str, argv: str) -> str:
    """The device-side command: run in the background, note the PID, sample memory while it lives, wait."""
    return (
        f"cd {shlex.quote(work_dir)} || exit 97; {argv} & pid=$!; echo $pid > {_PID_FILE}; "
        f"while kill -0 $pid 2>/dev/null; do grep -E '^(VmHWM|VmRSS|VmSwap):' /proc/$pid/status 2>/dev/null "
        f"| tr -s ' \\n' '  '; echo; sleep 0.1; done > {_MEM_FILE} & wait $pid"
    )


def parse_memory(text: str) -> list[dict[str, int]]:
    """Samples from lines like ``VmHWM: 1200 kB VmRSS: 1100 kB VmSwap: 0 kB`` (values in bytes).

    Example:
        >>> parse_memory("VmHWM: 10 kB VmRSS: 8 kB VmSwap: 4 kB\\n\\n")
        [{'VmHWM': 10240, 'VmRSS': 8192, 'VmSwap': 4096}]
    """
    samples = []
    for line in text.splitlines():
        words = line.split()
        sample = {words[i].rstrip(":"): int(words[i + 1]) * 1024 for i in range(0, len(words) - 1, 3)
                  if words[i + 1].isdigit()}
        if sample:
            samples.append(sample)
    return samples


def peak_memory_bytes(samples: list[dict[str, int]]) -> int:
    """max(VmHWM, VmRSS + VmSwap) over the samples (design/device.md's peak)."""
    return max((max(s.get("VmHWM", 0), s.get("VmRSS", 0) + s.get("VmSwap", 0)) for s in samples), default=0)


def parse_stats_line(line: str) -> dict[str, Any] | None:
    """The JSON of a ``PyTorchObserver {json}`` line, or None for any other line."""
    at = line.find(STATS_LINE_PREFIX)
    if at < 0:
        return None
    try:
        return json.loads(line[at + len(STATS_LINE_PREFIX) :])
    except json.JSONDecodeError:
        logger.warning("unreadable stats line: %s", line[:200])
        return None


def run_on_device(
    device: Any, work_dir: str, argv: str, *, timeout_s: float, on_text: Callable[[str], None] | None = None,
) -> RunResult:
    """Run ``argv`` (from :func:`runner_argv`) in ``work_dir``; stream the answer text; collect stats and memory.

    Raises:
        RunnerError: the runner crashed (exit code and the last stderr lines), timed out (killed on
            the device), or printed no stats line.
        DeviceError: the connection was lost.
    """
    deadline = time.monotonic() + timeout_s
    records: list[dict[str, Any]] = []
    pending, stderr, code = "", "", -1
    try:
        for kind, data in device.stream(_script(work_dir, argv), timeout_s=timeout_s):
            if kind == 1:
                pending += data.decode("utf-8", "replace")
                *lines, pending = pending.split("\n")
                for line in lines:
                    record = parse_stats_line(line)
                    if record is not None:
                        records.append(record)
                    elif on_text is not None:
                        on_text(line + "\n")
                if on_text is not None and pending and STATS_LINE_PREFIX[: len(pending)] != pending[: len(STATS_LINE_PREFIX)]:
                    on_text(pending)
                    pending = ""
            elif kind == 2:
                stderr = (stderr + data.decode("utf-8", "replace"))[-8000:]
            elif kind == 3:
                code = int(data)
            if time.monotonic() > deadline:
                raise TimeoutError
    except (TimeoutError, DeviceError) as e:
        if isinstance(e, DeviceError) and time.monotonic() < deadline:
            raise
        pid = _kill_runner(device, work_dir)
        raise RunnerError(f"the runner on {device.serial} did not finish within {timeout_s:.0f} s and was killed "
                          f"(pid {pid}); raise the timeout or lower --max-new-tokens/--runs") from e
    tail = " | ".join(stderr.strip().splitlines()[-5:])  # one line for the error message
    samples = parse_memory(device.run(f"cat {shlex.quote(posixpath.join(work_dir, _MEM_FILE))}").stdout)
    if code in (126, 127):
        raise RunnerError(f"the runner on {device.serial} is {'not executable' if code == 126 else 'missing'}: {tail}")
    if code != 0:
        meaning = _CONTRACT_CODES.get(code, "crashed" if code != 97 else f"cannot enter {work_dir} (push first)")
        raise RunnerError(f"the runner on {device.serial} failed with exit code {code} ({meaning}); "
                          f"last stderr lines: {tail or '(none)'}")
    if not records:
        raise RunnerError(f"the runner on {device.serial} printed no {STATS_LINE_PREFIX.strip()} line; stderr: {tail}")
    return RunResult(tuple(records), tuple(samples), peak_memory_bytes(samples), tail, code, argv.split()[0])


def _kill_runner(device: Any, work_dir: str) -> str:
    """Kill the runner (by the PID it recorded) over a new connection; its PID, or "?"."""
    try:
        device.reconnect()
        pid_file = shlex.quote(posixpath.join(work_dir, _PID_FILE))
        pid = device.run(f"cat {pid_file}").stdout.strip()
        if pid.isdigit():
            device.run(f"kill -9 {pid}")
            return pid
    except DeviceError as e:
        logger.warning("could not kill the runner on %s: %s", device.serial, e)
    return "?"


def check_image(image: Path | None) -> None:
    """Fail before connecting when the image to send does not exist."""
    if image is not None and not image.is_file():
        from mobile_mllm.errors import ImageError

        raise ImageError(f"image file not found: {image} (check the path)")


def push_input(device: Any, image: Path, remote_dir: str) -> str:
    """Push the image into ``remote_dir/inputs/`` under its hash (skipped when already there); its remote path."""
    from mobile_mllm.device.push import push_file, sha256_file

    digest = sha256_file(image)
    remote = posixpath.join(remote_dir, "inputs", digest[:16] + image.suffix.lower())
    device.check(f"mkdir -p {shlex.quote(posixpath.dirname(remote))}")
    push_file(device, image, remote, digest=digest)
    return remote



def answer_on_device(
    serial: str | None, out: Path, image: Path | None, prompt: str, cfg: RunnerConfig, *,
    remote_dir: str | None = None, on_text: Callable[[str], None] | None = None,
    on_progress: Callable[[str, int, int], None] | None = None,
) -> RunResult:
    """``mobile-mllm run --serial``: push the program if needed, then answer on the device, streaming the text."""
    from mobile_mllm.device.discover import describe, open_device
    from mobile_mllm.device.push import program_files, push_program

    check_image(image)
    program_files(out)  # a wrong folder fails before any device is contacted
    with open_device(serial) as device:
        abi = describe(device, device.serial).abi
        pushed = push_program(device, out, remote_dir=remote_dir, abi=abi, on_progress=on_progress)
        image_remote = push_input(device, image, pushed.remote_dir) if image is not None else None
        runner = find_runner(device, pushed.remote_dir, abi)
        check_runner_images(runner, out, image)
        argv = runner_argv(runner, pushed.remote_dir, image_remote, prompt, cfg)
        return run_on_device(device, pushed.remote_dir, argv, timeout_s=cfg.timeout_s, on_text=on_text)
