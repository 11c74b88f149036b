"""Fixtures of the native-runner tests: the runner built once per test run (and kept between runs).

The build goes to ``$MOBILE_MLLM_NATIVE_BUILD`` or ``~/.cache/mobile-mllm/native-runner/<abi>-<key>``
(key: this checkout's path), so a second run on the same machine only relinks what changed:
CMake's own incremental build decides (``mobile_mllm.device.native``). A cold x86-64 build takes about
15 s on two cores; a cold arm64 one (Debian's aarch64 cross g++) about a minute, plus a one-off download
of the executorch aarch64 wheel into ``~/.cache/mobile-mllm/arm64`` (android_app/runner/arm64.sh).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from mobile_mllm.device import native

REPO = Path(__file__).resolve().parents[2]


def build_runner(abi: str) -> Path:
    """Build (or bring up to date) the runner for ``abi``; skip when the toolchain is missing."""
    missing = [t for t in ("g++", "cmake") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: the native runner cannot be built here")
    if not Path("/usr/include/stb/stb_image.h").is_file():
        pytest.skip("stb_image.h not installed (Debian libstb-dev): the native runner cannot be built here")
    if abi == "arm64":  # the cross toolchain, qemu and the sysroot (arm64.sh names the Debian packages)
        check = subprocess.run(["bash", str(native.RUNNER_DIR / "arm64.sh"), "check"], capture_output=True, text=True)
        if check.returncode != 0:
            pytest.skip(check.stderr.strip())
    start = time.monotonic()
    binary = native.build_runner(abi)
    print(f"native runner {abi} build: {time.monotonic() - start:.1f} s")
    assert binary.is_file()
    return binary


@pytest.fixture(scope="session")
def runner_bin() -> Path:
    """The x86-64 runner binary, built from this checkout."""
    return build_runner("x86_64")


@pytest.fixture(scope="session")
def arm64_runner() -> list[str]:
    """The argv prefix running the arm64 runner, built from this checkout, here (under qemu-aarch64-static)."""
    return native.runner_command("arm64", build_runner("arm64"))
