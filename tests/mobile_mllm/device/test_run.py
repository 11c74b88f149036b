"""run.py against the loopback device with stand-in runners (scripts): quoting, memory, crash, hang, missing."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest

from mobile_mllm.device.adb import AdbDevice
from mobile_mllm.device.run import RunnerConfig, find_runner, parse_memory, peak_memory_bytes, run_on_device, runner_argv
from mobile_mllm.errors import RunnerError

WORK = "/data/local/tmp/w"


def _install(loopback, name: str, body: str, mode: int = 0o755) -> str:
    """Put an executable script in the device's work folder; its device path."""
    folder = Path(loopback.root) / "w"
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(body)
    os.chmod(folder / name, mode)
    return f"{WORK}/{name}"


ECHO_ARGS = f"#!{sys.executable}\nimport json, sys\nprint('PyTorchObserver ' + json.dumps({{'argv': sys.argv[1:]}}))\n"


def test_user_text_reaches_the_runner_verbatim_never_the_shell(loopback) -> None:
    _install(loopback, "runner-x86_64", ECHO_ARGS)
    prompt = "it's \"$(touch pwned)\"; `touch pwned2` && rm -rf / | *"
    with AdbDevice(loopback.address) as dev:
        runner = find_runner(dev, WORK, "x86_64")
        result = run_on_device(dev, WORK, runner_argv(runner, WORK, f"{WORK}/a b.png", prompt, RunnerConfig()),
                               timeout_s=30)
    argv = result.records[0]["argv"]
    assert argv[argv.index("--prompt") + 1] == prompt
    assert argv[argv.index("--image") + 1] == f"{loopback.root}/w/a b.png"  # the loopback maps /data/local/tmp
    assert not list(Path(loopback.root).rglob("pwned*"))


def test_streamed_text_and_stats_lines_are_told_apart(loopback) -> None:
    body = "#!/bin/sh\nprintf 'hello '\nprintf 'world\\n'\necho 'PyTorchObserver {\"run\": 0, \"text\": \"hello world\"}'\n"
    runner = _install(loopback, "talk.sh", body)
    pieces: list[str] = []
    with AdbDevice(loopback.address) as dev:
        result = run_on_device(dev, WORK, runner, timeout_s=30, on_text=pieces.append)
    assert "".join(pieces) == "hello world\n"
    assert result.records == ({"run": 0, "text": "hello world"},)


def test_memory_is_sampled_from_proc_while_the_runner_lives(loopback) -> None:
    body = (f"#!{sys.executable}\nimport time\nblock = bytearray(96 * 2**20)\nblock[::4096] = b'x' * len(block[::4096])\n"
            "time.sleep(0.8)\nprint('PyTorchObserver {}')\n")
    runner = _install(loopback, "hog.py", body)
    with AdbDevice(loopback.address) as dev:
        result = run_on_device(dev, WORK, runner, timeout_s=30)
    assert len(result.memory_samples) >= 2
    assert result.peak_memory_bytes >= 96 * 2**20  # it touched 96 MiB; /proc saw at least that


def test_crash_reports_exit_code_and_last_stderr_lines(loopback) -> None:
    runner = _install(loopback, "crash.sh", "#!/bin/sh\necho 'loading model' >&2\necho 'fatal: bad op 42' >&2\nexit 134\n")
    with AdbDevice(loopback.address) as dev, pytest.raises(RunnerError, match=r"exit code 134 .*fatal: bad op 42"):
        run_on_device(dev, WORK, runner, timeout_s=30)


def test_contract_exit_code_is_explained(loopback) -> None:
    runner = _install(loopback, "noimg.sh", "#!/bin/sh\necho 'cannot open image' >&2\nexit 3\n")
    with AdbDevice(loopback.address) as dev, pytest.raises(RunnerError, match="image cannot be loaded"):
        run_on_device(dev, WORK, runner, timeout_s=30)


def test_hanging_runner_is_killed_on_the_device_at_the_timeout(loopback) -> None:
    runner = _install(loopback, "hang.sh", "#!/bin/sh\nexec sleep 600\n")
    with AdbDevice(loopback.address, timeout_s=5) as dev, pytest.raises(RunnerError, match="did not finish within 2 s and was killed"):
        run_on_device(dev, WORK, runner, timeout_s=2)
    pid = int((Path(loopback.root) / "w" / ".runner.pid").read_text())
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"runner pid {pid} still alive")


def test_missing_and_not_executable_runners(loopback) -> None:
    plain = _install(loopback, "plain.sh", "#!/bin/sh\necho hi\n", mode=0o644)
    with AdbDevice(loopback.address) as dev:
        with pytest.raises(RunnerError, match="is missing"):
            run_on_device(dev, WORK, f"{WORK}/nope", timeout_s=30)
        with pytest.raises(RunnerError, match="not executable"):
            run_on_device(dev, WORK, plain, timeout_s=30)
        with pytest.raises(RunnerError, match="printed no PyTorchObserver line"):
            run_on_device(dev, WORK, "echo hi", timeout_s=30)


def test_peak_is_max_of_hwm_and_rss_plus_swap() -> None:
    samples = parse_memory("VmHWM: 100 kB VmRSS: 90 kB VmSwap: 30 kB\nVmHWM: 110 kB VmRSS: 50 kB VmSwap: 0 kB\n")
    assert peak_memory_bytes(samples) == 120 * 1024
    assert json.loads(json.dumps(samples))[1]["VmHWM"] == 110 * 1024


def test_connection_lost_mid_run_is_one_clear_line(loopback, fault_proxy) -> None:
    from mobile_mllm.errors import DeviceError

    runner = _install(loopback, "chatty.sh", "#!/bin/sh\nwhile true; do echo 'token token token token'; done\n")
    proxy = fault_proxy(loopback.port, drop_reply_after_bytes=200_000)
    with AdbDevice(proxy.serial, timeout_s=5) as dev, pytest.raises(DeviceError, match="connection to .* lost") as info:
        run_on_device(dev, WORK, runner, timeout_s=60)
    assert "\n" not in str(info.value) and not isinstance(info.value, RunnerError)
