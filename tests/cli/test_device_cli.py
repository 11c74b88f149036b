"""devices -> push -> profile -> run --serial as real commands, against ``mobile-mllm loopback-device`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("device-cli-img") / "wide.png"
    Image.fromarray((np.random.default_rng(0).random((100, 180, 3)) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def device(adb_user_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """A loopback device started with the CLI on a free port: (serial, env for the client commands)."""
    root = tmp_path_factory.mktemp("device-cli-root")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobile_mllm.cli", "-q", "loopback-device", "--port", "0", "--root", str(root),
         "--serial", "cli-test", "--authorized-keys", str(adb_user_home / "adbkey.pub")],
        stdout=subprocess.PIPE, text=True,
    )
    line = proc.stdout.readline()  # type: ignore[union-attr]
    serial = line.split(" on ")[1].split()[0]
    env = {**os.environ, "ANDROID_USER_HOME": str(adb_user_home), "MOBILE_MLLM_ADB_DEVICES": serial}
    yield serial, env
    proc.terminate()
    proc.wait(timeout=10)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.mark.slow
def test_devices_push_profile_run_on_the_loopback_device(device, tiny_program: Path, image: Path, tmp_path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    serial, env = device
    listed = json.loads(_cli(env, "devices", "--json").stdout)
    assert [(d["serial"], d["state"]) for d in listed] == [(serial, "device")]
    assert listed[0]["cpu_cores"] == os.cpu_count() and listed[0]["free_bytes"] > 0

    pushed = _cli(env, "push", str(tiny_program))  # the only device: no --serial needed
    assert pushed.returncode == 0, pushed.stderr
    assert "model.pte" in pushed.stdout.split("pushed:")[1].splitlines()[0]

    expected = Session.from_dir(tiny_program, generation=GenerationConfig(max_new_tokens=4)).ask("what?", image)
    report = tmp_path / "report"
    prof = _cli(env, "profile", str(tiny_program), "--serial", serial, "--image", str(image), "--prompt", "what?",
                "--runs", "2", "--warmup", "0", "--max-new-tokens", "4", "-o", str(report))
    assert prof.returncode == 0, prof.stderr
    doc = json.loads((report / "profile.json").read_text())
    (program,) = doc["programs"]
    assert [r["text"] for r in program["runs"]] == [expected.text] * 2
    assert program["summary"]["num_image_tokens"]["median"] == expected.stats.num_image_tokens
    assert program["peak_memory_bytes"] >= max(r["peak_rss_bytes"] for r in program["runs"]) * 0.9
    assert doc["device"]["serial"] == serial and doc["settings"]["runs"] == 2
    assert "time to first token (ms)" in prof.stdout and tiny_program.name in prof.stdout
    for chart in ("runs.png", "ttft.png"):
        assert (report / chart).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "0 file(s) to push" in prof.stderr  # already pushed: nothing sent again

    run = _cli(env, "run", str(tiny_program), "--serial", serial, "--image", str(image), "--prompt", "what?",
               "--max-new-tokens", "4")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(expected.text + "\n")
    assert "peak memory" in run.stdout


@pytest.mark.slow
def test_device_errors_are_one_line(device, tiny_program: Path) -> None:
    serial, env = device
    two = {**env, "MOBILE_MLLM_ADB_DEVICES": f"{serial},{serial}"}
    several = _cli(two, "push", str(tiny_program))
    assert several.returncode == 9 and "several devices" in several.stderr and "--serial" in several.stderr
    none = _cli({**env, "MOBILE_MLLM_ADB_DEVICES": ""}, "push", str(tiny_program))
    assert none.returncode == 9 and "no device found" in none.stderr
    bad_image = _cli(env, "-q", "profile", str(tiny_program), "--serial", serial, "--image", "/nonexistent.png",
                     "--prompt", "x", "-o", "/tmp/unused-report")
    assert bad_image.returncode == 3 and "nonexistent.png" in bad_image.stderr and len(bad_image.stderr.strip().splitlines()) == 1
