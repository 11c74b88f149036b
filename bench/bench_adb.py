"""The ADB path on the loopback device: push throughput (ours vs Debian's ``adb push``), profile vs host ``run``.

Modes (one JSON object on stdout each):

    push     one file of ``--mb`` MB pushed once by our client (push.push_file: temporary name, size and
             SHA-256 verified on the device, rename), once by our client's bare sync transfer (AdbDevice.push,
             no checks: what ``adb push`` does) and once by ``adb push``, to the same loopback device
    profile  ``mobile-mllm profile`` of a program on the loopback device next to ``mobile-mllm run --json`` of
             the same program on the host, same image, prompt and token budget: the figures side by side

Example:
    .venv/bin/python bench/bench_adb.py push --mb 200
    .venv/bin/python bench/bench_adb.py profile /tmp/w4 --runs 3 --max-new-tokens 32

Both devices and clients share this machine's cores with the loopback server (Python) and, for
``profile``, the runner; numbers go to ``bench/RESULTS.md`` by hand with the command.
This is a script, not library code.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from mobile_mllm.device.adb import AdbDevice, load_signer  # noqa: E402
from mobile_mllm.device.loopback import LoopbackConfig, LoopbackDevice  # noqa: E402


def _device(tmp: Path) -> LoopbackDevice:
    """A loopback device trusting our key (ANDROID_USER_HOME) and adb's key (HOME/.android)."""
    os.environ["ANDROID_USER_HOME"] = str(tmp / "ours")
    load_signer()
    keys = (str(tmp / "ours" / "adbkey.pub"), str(tmp / "adbhome" / ".android" / "adbkey.pub"))  # read at each handshake
    return LoopbackDevice(LoopbackConfig(port=0, root=str(tmp / "root"), authorized_keys=keys)).start()


def push(args: argparse.Namespace) -> dict[str, Any]:
    from mobile_mllm.device.push import push_file, sha256_file

    with tempfile.TemporaryDirectory(prefix="bench_adb_") as name:
        tmp = Path(name)
        src = tmp / "blob.bin"
        with open(src, "wb") as f:
            for _ in range(args.mb):
                f.write(os.urandom(1 << 20))
        digest = sha256_file(src)
        dev = _device(tmp)
        (tmp / "adbhome").mkdir(exist_ok=True)
        env = {**os.environ, "HOME": str(tmp / "adbhome"), "ANDROID_ADB_SERVER_PORT": str(args.adb_port)}
        adb = shutil.which("adb")
        out: dict[str, Any] = {"mb": args.mb, "loadavg": [round(v, 2) for v in os.getloadavg()]}
        try:
            with AdbDevice(dev.address, timeout_s=120) as client:
                start = time.perf_counter()
                push_file(client, src, "/data/local/tmp/ours.bin", digest=digest)
                out["ours_s"] = round(time.perf_counter() - start, 2)
                start = time.perf_counter()
                client.push(src, "/data/local/tmp/ours_raw.bin")  # the sync transfer alone, no checks
                out["ours_transfer_only_s"] = round(time.perf_counter() - start, 2)
            out["ours_verified"] = sha256_file(tmp / "root" / "ours.bin") == digest
            if adb:
                subprocess.run([adb, "start-server"], env=env, capture_output=True, check=True, timeout=60)
                connect = subprocess.run([adb, "connect", dev.address], env=env, capture_output=True, text=True, timeout=60)
                if "connected" not in connect.stdout:
                    raise SystemExit(f"adb connect failed: {connect.stdout} {connect.stderr}")
                start = time.perf_counter()
                subprocess.run([adb, "-s", dev.address, "push", str(src), "/data/local/tmp/adb.bin"], env=env,
                               capture_output=True, check=True, timeout=600)
                out["adb_s"] = round(time.perf_counter() - start, 2)
                out["adb_verified"] = sha256_file(tmp / "root" / "adb.bin") == digest
                out["ours_vs_adb_throughput"] = round(out["adb_s"] / out["ours_s"], 3)
                out["ours_transfer_only_vs_adb"] = round(out["adb_s"] / out["ours_transfer_only_s"], 3)
        finally:
            if adb:
                subprocess.run([adb, "kill-server"], env=env, capture_output=True, timeout=30)
            dev.close()
        out["ours_mb_s"] = round(args.mb / out["ours_s"], 1)
        if "adb_s" in out:
            out["adb_mb_s"] = round(args.mb / out["adb_s"], 1)
        return out


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mobile_mllm.cli", *argv], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=3600, check=True)


def profile(args: argparse.Namespace) -> dict[str, Any]:
    figures = ("model_load_ms", "num_image_tokens", "image_encode_ms", "time_to_first_token_ms", "prefill_tok_s",
               "decode_tok_s", "num_generated_tokens", "peak_rss_bytes")
    with tempfile.TemporaryDirectory(prefix="bench_adb_") as name:
        tmp = Path(name)
        dev = _device(tmp)
        env = {**os.environ, "MOBILE_MLLM_ADB_DEVICES": dev.address}
        try:
            _cli("-q", "profile", args.program, "--image", args.image, "--prompt", args.prompt, "--runs", str(args.runs),
                 "--warmup", "1", "--max-new-tokens", str(args.max_new_tokens), "-o", str(tmp / "report"), env=env)
        finally:
            dev.close()
        doc = json.loads((tmp / "report" / "profile.json").read_text())
    device_runs = doc["programs"][0]["runs"]
    host_runs = []
    for _ in range(args.runs):
        proc = _cli("-q", "run", args.program, "--image", args.image, "--prompt", args.prompt, "--max-new-tokens",
                    str(args.max_new_tokens), "--json")
        host_runs.append(json.loads(proc.stdout)["turns"][0]["stats"])

    def median(runs: list[dict[str, Any]], key: str) -> float:
        values = sorted(float(r[key]) for r in runs)
        return values[len(values) // 2]

    return {
        "program": args.program, "runs": args.runs, "max_new_tokens": args.max_new_tokens,
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "device_median": {k: round(median(device_runs, k), 1) for k in figures},
        "host_median": {k: round(median(host_runs, k), 1) for k in figures},
        "device_peak_memory_sampled_mib": round(doc["programs"][0]["peak_memory_bytes"] / 2**20),
        "same_text": len({r["text"] for r in device_runs}) == 1,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("push")
    s.add_argument("--mb", type=int, default=200)
    s.add_argument("--adb-port", type=int, default=15137, help="private adb server port")
    s = sub.add_parser("profile")
    s.add_argument("program")
    s.add_argument("--image", required=True)
    s.add_argument("--prompt", default="What is in the picture?")
    s.add_argument("--runs", type=int, default=3)
    s.add_argument("--max-new-tokens", type=int, default=32)
    args = p.parse_args()
    print(json.dumps({"push": push, "profile": profile}[args.mode](args)))


if __name__ == "__main__":
    main()
