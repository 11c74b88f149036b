"""The host side of ``profile --via app`` (device/app.py) against the loopback device with a stand-in app.

Tests the ADB command sequence only: the stand-in (fake_app.py) records ``am``'s arguments and
writes a result file; no Android app runs here (android_app/README.md says what has run where).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import pytest

from fake_app import am_calls, install_fake_app

from mobile_mllm.device.adb import AdbDevice
from mobile_mllm.device.app import BENCHMARK_ACTIVITY, RESULT_FORMAT, benchmark_command, run_app_benchmark
from mobile_mllm.device.profile import ProfileConfig, profile_program
from mobile_mllm.device.run import RunnerConfig
from mobile_mllm.errors import RunnerError

REMOTE = "/data/local/tmp/mobile_mllm/tiny"
PROMPT = "it's \"$(touch pwned)\"; `touch pwned2` | *"


def _record(run: int, ttft: float) -> dict:
    return {"run": run, "text": "purple", "stop_reason": "eos", "time_to_first_token_ms": ttft, "decode_tok_s": 20.0 + run,
            "num_tiles": 7, "num_image_tokens": 112, "model_load_ms": 900.0, "image_encode_ms": 40.0, "prefill_ms": 60.0}


def test_command_line_carries_every_extra_as_one_word() -> None:
    cmd = benchmark_command(REMOTE, f"{REMOTE}/inputs/a b.png", PROMPT, RunnerConfig(runs=3, warmup=1, tile_batch=2), "r.json")
    argv = shlex.split(cmd)
    assert argv[:6] == ["am", "start", "-W", "-S", "-n", BENCHMARK_ACTIVITY]
    pairs = {(argv[i], argv[i + 1]): argv[i + 2] for i in range(6, len(argv), 3)}
    assert pairs == {("--es", "program_dir"): REMOTE, ("--es", "prompt"): PROMPT, ("--es", "result"): "r.json",
                     ("--es", "image"): f"{REMOTE}/inputs/a b.png", ("--ei", "runs"): "3", ("--ei", "warmup"): "1",
                     ("--ei", "max_new_tokens"): "128", ("--ei", "threads"): "0", ("--ei", "tile_batch"): "2"}


def test_profile_via_app_starts_the_activity_waits_and_reads_the_result(loopback, tmp_path: Path) -> None:
    records = [_record(0, 210.0), _record(1, 190.0)]
    root = install_fake_app(loopback, "canned", {"format": RESULT_FORMAT, "version": 1, "records": records, "error": None})
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "model.pte").write_bytes(b"x" * 1000)
    image = tmp_path / "photo.png"
    image.write_bytes(b"\x89PNG fake")  # pushed as bytes; the stand-in app never opens it
    with AdbDevice(loopback.address) as dev:
        dev.check(f"mkdir -p {REMOTE}")
        prof = profile_program(dev, out, image, PROMPT, ProfileConfig(via="app", runs=2, warmup=1), remote_dir=REMOTE)
    assert prof.runs == tuple(records)
    assert prof.summary["time_to_first_token_ms"] == {"min": 190.0, "median": 200.0, "max": 210.0}
    assert prof.runner == "app:org.mobilemllm.app" and prof.file_bytes == {"model.pte": 1000}
    assert prof.peak_memory_bytes > 0 and prof.memory_samples >= 1  # the stand-in's real /proc/PID/status
    (call,) = am_calls(root)
    extras = {call[i + 1]: call[i + 2] for i in range(len(call)) if call[i] in ("--es", "--ei")}
    remote_root = f"{loopback.root}/mobile_mllm/tiny"  # the loopback maps /data/local/tmp
    assert extras["program_dir"] == remote_root and extras["prompt"] == PROMPT
    assert extras["image"].startswith(f"{remote_root}/inputs/") and extras["image"].endswith(".png")
    assert (extras["runs"], extras["warmup"], extras["max_new_tokens"]) == ("2", "1", "128")
    assert Path(extras["image"]).read_bytes() == image.read_bytes()  # pushed before the start
    assert list((root / "app_data" / "files").iterdir()) == []  # the result was removed after reading
    assert not list(Path(loopback.root).rglob("pwned*"))


def test_an_error_the_app_reports_is_one_runner_error(loopback) -> None:
    install_fake_app(loopback, "canned", {"format": RESULT_FORMAT, "version": 1, "records": [],
                                          "error": {"error": "cannot decode photo.heic", "error_type": "ImageError", "exit_code": 3}})
    with AdbDevice(loopback.address) as dev, pytest.raises(RunnerError, match=r"exit code 3 \(the image cannot be loaded\).*photo.heic"):
        run_app_benchmark(dev, REMOTE, None, "what?", RunnerConfig())


def test_missing_app_says_how_to_install_it(loopback) -> None:
    install_fake_app(loopback, None)
    with AdbDevice(loopback.address) as dev, pytest.raises(RunnerError, match="installDebug"):
        run_app_benchmark(dev, REMOTE, None, "what?", RunnerConfig())


def test_a_hung_app_is_stopped_after_the_timeout(loopback) -> None:
    root = install_fake_app(loopback, "silent")
    with AdbDevice(loopback.address) as dev, pytest.raises(RunnerError, match="no result within 2 s"):
        run_app_benchmark(dev, REMOTE, None, "what?", RunnerConfig(timeout_s=2))
    assert am_calls(root)[-1] == ["force-stop", "org.mobilemllm.app"]


def test_a_result_of_another_format_is_refused(loopback) -> None:
    install_fake_app(loopback, "canned", {"records": [_record(0, 1.0)]})
    with AdbDevice(loopback.address) as dev, pytest.raises(RunnerError, match="reinstall the app"):
        run_app_benchmark(dev, REMOTE, None, "what?", RunnerConfig())


@pytest.mark.slow
def test_cli_profile_via_app_reports_what_the_runner_path_reports(loopback, adb_user_home: Path, tiny_program: Path,
                                                                   tmp_path: Path) -> None:
    """``mobile-mllm profile --via app`` as a real command; the stand-in app runs the host runner with the extras it got."""
    import os
    import subprocess

    import numpy as np
    from PIL import Image

    root = install_fake_app(loopback, "runner")
    image = tmp_path / "wide.png"
    Image.fromarray((np.random.default_rng(0).random((100, 180, 3)) * 255).astype(np.uint8)).save(image)
    env = {**os.environ, "ANDROID_USER_HOME": str(adb_user_home), "MOBILE_MLLM_ADB_DEVICES": loopback.address}
    docs = {}
    for via in ("runner", "app"):
        report = tmp_path / via
        proc = subprocess.run(
            [sys.executable, "-m", "mobile_mllm.cli", "profile", str(tiny_program), "--image", str(image), "--prompt", "what?",
             "--runs", "2", "--warmup", "1", "--max-new-tokens", "4", "--via", via, "-o", str(report)],
            capture_output=True, text=True, timeout=600, env=env,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "time to first token (ms)" in proc.stdout
        docs[via] = json.loads((report / "profile.json").read_text())["programs"][0]
    assert docs["app"]["runner"] == "app:org.mobilemllm.app" and docs["runner"]["runner"] == "mobile-mllm-runner"
    for key in ("text", "num_tiles", "num_image_tokens", "num_prompt_tokens", "num_generated_tokens", "stop_reason"):
        assert [r[key] for r in docs["app"]["runs"]] == [r[key] for r in docs["runner"]["runs"]], key
    (call,) = am_calls(root)
    assert call[call.index("--ei") :].count("--ei") == 4  # runs, warmup, max_new_tokens, threads
    assert docs["app"]["peak_memory_bytes"] > 0


def test_etdump_with_the_app_is_refused_before_any_device_is_contacted(tmp_path: Path) -> None:
    from mobile_mllm.device.profile import profile_programs
    from mobile_mllm.errors import ConfigError

    with pytest.raises(ConfigError, match="--etdump needs --via runner"):
        profile_programs("127.0.0.1:1", [tmp_path], None, "q", ProfileConfig(via="app"), tmp_path / "r", etdump=True)
