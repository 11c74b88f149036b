"""``mobile-mllm loopback-device --runner arm64``: the device path end to end on ExecuTorch's arm64 kernels.

The loopback device runs as the CLI starts it; Debian's real ``adb`` client (an independent
implementation of the protocol) checks the ABI it reports, pushes the tiny program and runs the
device's ``mobile-mllm-runner`` (the arm64 native runner under qemu); then ``mobile-mllm profile``
and ``mobile-mllm run --serial`` drive it through the toolkit's own ADB path. The answers must equal
``Session.ask`` on the host (the Python runtime; fp32, so one by one).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("adb") is None, reason="Debian's adb is not installed (apt-get install adb)"),
]

REPO = Path(__file__).resolve().parents[2]
QUESTION = "What colour is the star?"


@pytest.fixture(scope="module")
def arm64_device(arm64_runner: list[str], adb, adb_user_home: Path,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """``mobile-mllm loopback-device --runner arm64`` (its runner already built by ``arm64_runner``): serial, env.

    It trusts the toolkit's test key and the key of the private adb client (``adb``, tests/conftest.py).
    """
    root = tmp_path_factory.mktemp("arm64-device-root")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobile_mllm.cli", "-q", "loopback-device", "--port", "0", "--root", str(root),
         "--serial", "arm64-test", "--runner", "arm64", "--authorized-keys", str(adb_user_home / "adbkey.pub"),
         str(adb.home / ".android" / "adbkey.pub")],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
    )
    line = proc.stdout.readline()  # type: ignore[union-attr]
    assert " on " in line, f"loopback-device did not start: {line!r}"
    serial = line.split(" on ")[1].split()[0]
    env = {**os.environ, "ANDROID_USER_HOME": str(adb_user_home), "MOBILE_MLLM_ADB_DEVICES": serial}
    yield serial, env
    proc.terminate()
    proc.wait(timeout=10)


def test_arm64_loopback_device_answers_like_the_host(arm64_device, adb, tiny_program: Path, tmp_path: Path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    serial, env = arm64_device
    image = REPO / "demo" / "sample.png"
    expected = Session.from_dir(tiny_program, generation=GenerationConfig(max_new_tokens=6)).ask(QUESTION, image)

    connected = adb("connect", serial)
    assert f"connected to {serial}" in connected.stdout, connected.stdout + connected.stderr
    try:
        assert adb("-s", serial, "shell", "getprop", "ro.product.cpu.abi").stdout.strip() == "arm64-v8a"
        remote = "/data/local/tmp/mobile_mllm/adb_pushed"
        assert adb("-s", serial, "push", f"{tiny_program}/.", remote).returncode == 0
        assert adb("-s", serial, "push", str(image), f"{remote}/sample.png").returncode == 0
        shell = adb("-s", serial, "shell", f"cd {remote} && mobile-mllm-runner --program-dir . --image sample.png "
                                           f"--prompt '{QUESTION}' --max-new-tokens 6", timeout=300)
        assert shell.returncode == 0, shell.stderr[-2000:]
        stats = json.loads(shell.stdout.split("PyTorchObserver ", 1)[1])
        assert stats["text"] == expected.text and stats["extra"]["runner"].endswith("arm64")
    finally:
        adb("disconnect", serial)

    report = tmp_path / "report"
    prof = subprocess.run([sys.executable, "-m", "mobile_mllm.cli", "profile", str(tiny_program), "--serial", serial,
                           "--image", str(image), "--prompt", QUESTION, "--runs", "1", "--max-new-tokens", "6",
                           "-o", str(report)], capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert prof.returncode == 0, prof.stderr[-3000:]
    doc = json.loads((report / "profile.json").read_text())
    (program,) = doc["programs"]
    assert [r["text"] for r in program["runs"]] == [expected.text]
    assert doc["device"]["abi"] == "arm64-v8a"
    assert program["summary"]["num_image_tokens"]["median"] == expected.stats.num_image_tokens

    run = subprocess.run([sys.executable, "-m", "mobile_mllm.cli", "run", str(tiny_program), "--serial", serial,
                          "--image", str(image), "--prompt", QUESTION, "--max-new-tokens", "6"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.startswith(expected.text + "\n")
