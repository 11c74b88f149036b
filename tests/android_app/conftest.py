"""Fixtures of the native-runner tests: the runner built once per test run (and kept between runs).

The build goes to ``$MOBILE_MLLM_NATIVE_BUILD`` or ``~/.cache/mobile-mllm/native-runner/<abi>-<key>``
(key: this checkout's path), so a second run on the same machine only relinks what changed:
CMake's own incremental build decides. A cold x86-64 build takes about 15 s on two cores.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_SH = REPO / "android_app" / "runner" / "build.sh"


def build_dir(abi: str) -> Path:
    """Where ``abi``'s build of this checkout lives between test runs."""
    root = os.environ.get("MOBILE_MLLM_NATIVE_BUILD")
    base = Path(root) if root else Path.home() / ".cache" / "mobile-mllm" / "native-runner"
    key = hashlib.sha256(str(REPO).encode()).hexdigest()[:12]
    return base / f"{abi}-{key}"


def build_runner(abi: str) -> Path:
    """Build (or bring up to date) the runner for ``abi``; skip when the toolchain is missing."""
    missing = [t for t in ("g++", "cmake") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: the native runner cannot be built here")
    if not Path("/usr/include/stb/stb_image.h").is_file():
        pytest.skip("stb_image.h not installed (Debian libstb-dev): the native runner cannot be built here")
    out = build_dir(abi)
    start = time.monotonic()
    proc = subprocess.run(["bash", str(BUILD_SH), abi, str(out)], capture_output=True, text=True, timeout=1800)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, f"build failed ({elapsed:.1f} s):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    print(f"native runner {abi} build: {elapsed:.1f} s")
    binary = out / "mobile_mllm_runner"
    assert binary.is_file()
    return binary


@pytest.fixture(scope="session")
def runner_bin() -> Path:
    """The x86-64 runner binary, built from this checkout."""
    return build_runner("x86_64")
