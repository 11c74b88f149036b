"""Run the Android app's BenchmarkActivity over ADB and read its result (``mobile-mllm profile --via app``).

The pattern of ExecuTorch's benchmark app (``extension/benchmark/android``): the host starts the
activity with ``am start -W -S -n org.mobilemllm.app/.BenchmarkActivity`` and string/int extras
(``program_dir``, ``image``, ``prompt``, ``runs``, ``warmup``, ``max_new_tokens``, ``threads``,
``tile_batch``, ``prefill_chunk``, ``result``), every value quoted for the device's shell. The app
runs the program (android_app/app) and writes ``files/<result>`` in its private storage, atomically
(temporary name, then rename), as one JSON object: the runner contract's stats records
(android_app/RUNNER.md, "The stats line") under ``records``, or ``error`` with the contract's
exit code. The host polls for that file through ``run-as`` (the app is debuggable), samples the
app's memory from ``/proc/PID/status`` meanwhile, and hands back the same :class:`RunResult` the
runner path gives, so profiling reports both the same way.
Deliberately not here: pushing (push.py), summaries and charts (profile.py).
"""

from __future__ import annotations

import enum
import json
import logging
import shlex
import time
from typing import Any

from mobile_mllm.device.run import RunnerConfig, RunResult, parse_memory, peak_memory_bytes
from mobile_mllm.errors import RunnerError

logger = logging.getLogger(__name__)

__all__ = ["APP_PACKAGE", "BENCHMARK_ACTIVITY", "RESULT_FORMAT", "Via", "benchmark_command", "read_result",
           "run_app_benchmark"]

APP_PACKAGE = "org.mobilemllm.app"
"""The app's applicationId (android_app/app/chat/build.gradle.kts)."""
BENCHMARK_ACTIVITY = f"{APP_PACKAGE}/.BenchmarkActivity"
RESULT_FORMAT = "mobile-mllm-app-benchmark"
"""The ``format`` of the app's result file (version 1)."""
_POLL_S = 0.25
_EXIT_MEANING = {2: "bad arguments", 3: "the image cannot be loaded", 5: "the prompt does not fit the context",
                 6: "the program or manifest violates the runner contract"}


class Via(str, enum.Enum):
    """What runs the program on the device."""

    RUNNER = "runner"  # the runner binary of android_app/RUNNER.md (native, or the host runner on a loopback device)
    APP = "app"  # the Android app's BenchmarkActivity (org.pytorch:executorch-android)


def benchmark_command(program_dir: str, image: str | None, prompt: str, cfg: RunnerConfig, result_name: str) -> str:
    """The ``am start`` command line that starts one benchmark, every value quoted for the device's shell.

    Example:
        >>> cmd = benchmark_command("/data/local/tmp/mobile_mllm/w4", None, "What colour?", RunnerConfig(runs=3), "r.json")
        >>> cmd.split(" --")[0]
        'am start -W -S -n org.mobilemllm.app/.BenchmarkActivity'
        >>> cmd.split(" --")[1:5]
        ['es program_dir /data/local/tmp/mobile_mllm/w4', "es prompt 'What colour?'", 'es result r.json', 'ei runs 3']
    """
    args = ["am", "start", "-W", "-S", "-n", BENCHMARK_ACTIVITY, "--es", "program_dir", program_dir,
            "--es", "prompt", prompt, "--es", "result", result_name]
    if image is not None:
        args += ["--es", "image", image]
    ints = {"runs": cfg.runs, "warmup": cfg.warmup, "max_new_tokens": cfg.max_new_tokens, "threads": cfg.threads,
            "tile_batch": cfg.tile_batch, "prefill_chunk": cfg.prefill_chunk}
    for key, value in ints.items():
        if value is not None:
            args += ["--ei", key, str(value)]
    return " ".join(shlex.quote(a) for a in args)


def read_result(text: str, serial: str) -> tuple[dict[str, Any], ...]:
    """The stats records of a result file's text.

    Raises:
        RunnerError: the app reported an error (with the contract's exit code and its meaning),
            or the file is not a version-1 result.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunnerError(f"the app's result on {serial} is not JSON ({e}); is the installed app this toolkit's version?") from e
    if not isinstance(doc, dict) or doc.get("format") != RESULT_FORMAT or doc.get("version") != 1:
        raise RunnerError(f"the app's result on {serial} is not a {RESULT_FORMAT} version 1 file; reinstall the app "
                          "built from android_app/app")
    error = doc.get("error")
    if error:
        code = int(error.get("exit_code", 1))
        raise RunnerError(f"the app on {serial} failed with exit code {code} ({_EXIT_MEANING.get(code, 'crashed')}): "
                          f"{error.get('error_type', '?')}: {error.get('error', '?')}")
    records = doc.get("records")
    if not isinstance(records, list) or not records:
        raise RunnerError(f"the app's result on {serial} holds no stats records")
    return tuple(records)


def run_app_benchmark(device: Any, program_dir: str, image: str | None, prompt: str, cfg: RunnerConfig) -> RunResult:
    """Start BenchmarkActivity on ``program_dir`` (already pushed), wait for its result, sample its memory.

    Raises:
        RunnerError: the app is not installed, reported an error, or wrote no result within
            ``cfg.timeout_s`` (it is then force-stopped).
        DeviceError: the connection was lost.
    """
    name = f"benchmark-{time.time_ns()}.json"
    pkg = shlex.quote(APP_PACKAGE)
    result = shlex.quote(f"files/{name}")
    started = device.run(benchmark_command(program_dir, image, prompt, cfg, name))
    out = started.stdout + started.stderr
    if started.exit_code != 0 or "Error" in out:
        raise RunnerError(f"could not start {BENCHMARK_ACTIVITY} on {device.serial}: {out.strip()[-300:]}; install the app "
                          "(android_app/README.md: ./gradlew :chat:installDebug)")
    logger.info("started %s on %s: %d warmup + %d runs", BENCHMARK_ACTIVITY, device.serial, cfg.warmup, cfg.runs)
    deadline = time.monotonic() + cfg.timeout_s
    samples: list[dict[str, int]] = []
    while True:
        read = device.run(f"run-as {pkg} cat {result}")
        if read.exit_code == 0 and read.stdout.strip():
            break
        mem = device.run(f"pid=$(pidof {pkg}) && grep -E '^(VmHWM|VmRSS|VmSwap):' /proc/$pid/status | tr -s ' \\n' '  '")
        samples += parse_memory(mem.stdout)
        if time.monotonic() > deadline:
            device.run(f"am force-stop {pkg}")
            raise RunnerError(f"the app on {device.serial} wrote no result within {cfg.timeout_s:.0f} s and was stopped; "
                              "raise the timeout or lower --max-new-tokens/--runs")
        time.sleep(_POLL_S)
    device.run(f"run-as {pkg} rm -f {result}")
    records = read_result(read.stdout, device.serial)
    return RunResult(records, tuple(samples), peak_memory_bytes(samples), "", 0, f"app:{APP_PACKAGE}")
