"""The native runner of ``android_app/runner`` on this machine: built by its ``build.sh``, run natively or emulated.

The loopback device can serve it as the device's ``mobile-mllm-runner`` (``mobile-mllm
loopback-device --runner x86_64|arm64``), so ``push``/``run``/``profile`` drive the C++ runner over
ExecuTorch's C++ runtime instead of the Python one. An arm64 build on a host that is not arm64 runs
under ``qemu-aarch64-static -L SYSROOT`` through ``android_app/runner/arm64.sh run`` (the one place
that knows the sysroot), which executes ExecuTorch's real arm64 kernels here: correct results,
meaningless times. Builds are cached per checkout (CMake's incremental build decides what to redo).
"""

from __future__ import annotations

import enum
import hashlib
import logging
import os
import platform
import subprocess
import time
from pathlib import Path

from mobile_mllm.errors import MissingDependencyError, RunnerError

logger = logging.getLogger(__name__)

__all__ = ["RUNNER_DIR", "RunnerKind", "build_dir", "build_runner", "device_abi", "runner_command"]

RUNNER_DIR = Path(__file__).resolve().parents[2] / "android_app" / "runner"
"""The runner's sources, build.sh and arm64.sh (a source checkout's android_app/runner)."""


class RunnerKind(str, enum.Enum):
    """What answers as the device's runner: the Python host runner, or the native runner of an ABI."""

    HOST = "host"
    X86_64 = "x86_64"
    ARM64 = "arm64"


_ANDROID_ABI = {RunnerKind.X86_64: "x86_64", RunnerKind.ARM64: "arm64-v8a"}
_HOST_ABI = {"x86_64": RunnerKind.X86_64, "aarch64": RunnerKind.ARM64, "arm64": RunnerKind.ARM64}


def device_abi(kind: RunnerKind) -> str | None:
    """The Android ABI name a device with this native runner reports (None for the host runner)."""
    return _ANDROID_ABI.get(RunnerKind(kind))


def build_dir(abi: str) -> Path:
    """Where ``abi``'s build of this checkout lives between runs.

    ``$MOBILE_MLLM_NATIVE_BUILD`` or ``~/.cache/mobile-mllm/native-runner``, then ``<abi>-<key>`` with
    the key a hash of this checkout's path, so two checkouts never share (and fight over) a build.
    """
    root = os.environ.get("MOBILE_MLLM_NATIVE_BUILD")
    base = Path(root) if root else Path.home() / ".cache" / "mobile-mllm" / "native-runner"
    key = hashlib.sha256(str(RUNNER_DIR.parents[1]).encode()).hexdigest()[:12]
    return base / f"{abi}-{key}"


def build_runner(abi: str, out: Path | None = None, *, timeout_s: float = 1800) -> Path:
    """Build (or bring up to date) the runner for ``abi`` with ``build.sh``; the binary's path.

    A cold x86-64 build takes seconds; a cold arm64 one about a minute on two cores, plus a one-off
    download of the executorch aarch64 wheel (17 MB) into ``~/.cache/mobile-mllm/arm64``.

    Raises:
        MissingDependencyError: a tool, the sysroot or the wheel is missing (build.sh exits 2 and
            names the Debian package to install), or this is not a source checkout.
        RunnerError: the build itself failed (the compiler's last lines).
    """
    script = RUNNER_DIR / "build.sh"
    if not script.is_file():
        raise MissingDependencyError(f"{script} not found: the native runner builds from a source checkout of "
                                     "mobile-mllm (android_app/runner), not from an installed package")
    out = out or build_dir(abi)
    start = time.monotonic()
    proc = subprocess.run(["bash", str(script), abi, str(out)], capture_output=True, text=True, timeout=timeout_s)
    if proc.returncode == 2:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise MissingDependencyError(f"cannot build the {abi} native runner: {tail}")
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RunnerError(f"building the {abi} native runner into {out} failed (exit {proc.returncode}):\n{tail}")
    logger.info("native runner %s up to date in %.1f s: %s", abi, time.monotonic() - start, out)
    return out / "mobile_mllm_runner"


def runner_command(abi: str, binary: Path) -> list[str]:
    """The argv prefix that runs ``binary`` here: itself, or ``arm64.sh run`` (qemu) for arm64 on another ISA.

    Raises:
        MissingDependencyError: the binary's ISA is not this host's and cannot be emulated here.
    """
    kind = RunnerKind(abi)
    if _HOST_ABI.get(platform.machine()) == kind:
        return [str(binary)]
    if kind is RunnerKind.ARM64:
        return ["bash", str(RUNNER_DIR / "arm64.sh"), "run", str(binary)]
    raise MissingDependencyError(f"a {abi} runner cannot run on this {platform.machine()} host (only arm64 is emulated)")
