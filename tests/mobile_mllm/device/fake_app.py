"""A stand-in for the Android app on the loopback device: ``am``, ``run-as`` and ``pidof`` scripts.

This tests the HOST side of ``mobile-mllm profile --via app`` only (the ``am start`` command
line, waiting, ``run-as`` reads, memory sampling, error handling); no Android app runs here.
``am`` records its arguments (``am_calls.jsonl`` in the device root), then a detached worker
plays BenchmarkActivity, as the mode file says:

- ``canned``: after a pause, writes ``canned.json`` (the test's result document) atomically;
- ``silent``: writes nothing (a hung app);
- ``runner``: runs the host runner (``mobile-mllm-runner``, the runner contract) with the extras
  translated to its flags and writes its ``PyTorchObserver`` records as the app's result file.

``run-as org.mobilemllm.app CMD`` runs CMD in the fake app's private folder; ``pidof`` prints the
worker's pid so the host samples a real ``/proc/PID/status``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

AM = r'''#!PYTHON
import json, os, subprocess, sys, time
root = os.environ["HOME"]
args = sys.argv[1:]
with open(os.path.join(root, "am_calls.jsonl"), "a") as f:
    f.write(json.dumps(args) + "\n")
if args[:1] == ["force-stop"]:  # kills the app, as on a phone
    try:
        os.kill(int(open(os.path.join(root, "app_pid")).read()), 9)
    except (OSError, ValueError):
        pass
    sys.exit(0)
if args[:1] == ["--worker"]:
    extras = json.loads(args[1])
    with open(os.path.join(root, "app_pid"), "w") as f:
        f.write(str(os.getpid()))
    mode = open(os.path.join(root, "fake_app_mode")).read().strip()
    files = os.path.join(root, "app_data", "files")
    os.makedirs(files, exist_ok=True)
    if mode == "silent":
        time.sleep(600)
    if mode == "canned":
        time.sleep(1.5)  # long enough for the host to sample the stand-in's memory a few times
        doc = open(os.path.join(root, "canned.json")).read()
    else:
        flags = {"program_dir": "--program-dir", "image": "--image", "prompt": "--prompt", "runs": "--runs",
                 "warmup": "--warmup", "max_new_tokens": "--max-new-tokens", "threads": "--threads",
                 "tile_batch": "--tile-batch", "prefill_chunk": "--prefill-chunk"}
        argv = ["mobile-mllm-runner", "--no-stream"]
        for key, flag in flags.items():
            if key in extras:
                argv += [flag, str(extras[key])]
        proc = subprocess.run(argv, capture_output=True, text=True)
        records = [json.loads(l.split("PyTorchObserver ", 1)[1]) for l in proc.stdout.splitlines() if "PyTorchObserver " in l]
        error = None if proc.returncode == 0 else {"error": proc.stderr.strip()[-300:], "error_type": "RunnerError",
                                                   "exit_code": proc.returncode}
        doc = json.dumps({"format": "mobile-mllm-app-benchmark", "version": 1, "records": records, "error": error})
    tmp = os.path.join(files, "." + extras["result"] + ".tmp")
    with open(tmp, "w") as f:
        f.write(doc)
    os.replace(tmp, os.path.join(files, extras["result"]))
    sys.exit(0)
if "-n" not in args or args[args.index("-n") + 1] != "org.mobilemllm.app/.BenchmarkActivity" or \
        not os.path.exists(os.path.join(root, "fake_app_mode")):
    print("Error: Activity class {org.mobilemllm.app/org.mobilemllm.app.BenchmarkActivity} does not exist.")
    sys.exit(1)
extras, i = {}, 0
while i < len(args):
    if args[i] in ("--es", "--ei"):
        extras[args[i + 1]] = args[i + 2] if args[i] == "--es" else int(args[i + 2])
        i += 3
    else:
        i += 1
subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(extras)], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print("Starting: Intent { cmp=org.mobilemllm.app/.BenchmarkActivity (has extras) }")
'''

RUN_AS = '''#!/bin/sh
[ "$1" = org.mobilemllm.app ] || { echo "run-as: unknown package: $1" >&2; exit 1; }
shift
mkdir -p "$HOME/app_data" && cd "$HOME/app_data" && exec "$@"
'''

PIDOF = '''#!/bin/sh
[ "$1" = org.mobilemllm.app ] && [ -f "$HOME/app_pid" ] && kill -0 "$(cat "$HOME/app_pid")" 2>/dev/null \\
  && cat "$HOME/app_pid" && exit 0
exit 1
'''


def install_fake_app(device, mode: str | None, canned: dict | None = None) -> Path:
    """Put the fake ``am``/``run-as``/``pidof`` on the loopback device's PATH; ``mode`` None = app not installed."""
    root = Path(device.root)
    for name, body in (("am", AM.replace("#!PYTHON", f"#!{sys.executable}")), ("run-as", RUN_AS), ("pidof", PIDOF)):
        path = Path(device.bin_dir) / name
        path.write_text(body)
        os.chmod(path, 0o755)
    if mode is not None:
        (root / "fake_app_mode").write_text(mode)
    if canned is not None:
        (root / "canned.json").write_text(json.dumps(canned))
    return root


def am_calls(root: Path) -> list[list[str]]:
    """Every ``am`` invocation so far (the worker's own re-invocations left out)."""
    path = root / "am_calls.jsonl"
    calls = [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []
    return [c for c in calls if c[:1] != ["--worker"]]
