"""Greedy answers of the native runner vs the host runner on the synthetic benchmarks (issue 17).

Both runners take the same batch file (``--requests``: the questions of ``eval/synth_*.tsv`` with
VLMEvalKit's prompts, images written out as the files they were) and their ``PyTorchObserver``
lines are compared per question: answer text, stop reason, prompt / image-token / tile counts.

Usage (from a checkout root, after ``android_app/runner/build.sh x86_64 BUILD``):
    python bench/native_parity.py PROGRAM_DIR BUILD/mobile_mllm_runner [--runner-prefix "qemu-aarch64-static -L SYSROOT"]
        [--limit N] [--max-new-tokens 16]
Prints a JSON summary (counts, the differing questions, wall times of both batch runs).
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEYS = ("text", "stop_reason", "num_prompt_tokens", "num_image_tokens", "num_tiles", "grid", "error_type")


def requests(folder: Path, limit: int | None) -> list[dict]:
    from mobile_mllm.eval.data import load_benchmark
    from mobile_mllm.eval.prompts import build_mcq_prompt, build_vqa_prompt, build_yn_prompt

    out = []
    for tsv in sorted(Path("eval").glob("synth_*.tsv")):
        for s in load_benchmark(tsv).samples:
            if s.options:
                q = build_mcq_prompt(s.question, s.options, s.hint)
            elif "yn" in tsv.stem:
                q = build_yn_prompt(s.question)
            else:
                q = build_vqa_prompt(s.question)
            data = base64.b64decode(s.images[0])
            ext = ".png" if data.startswith(b"\x89PNG") else ".jpg"
            image = folder / f"{tsv.stem}_{s.index}{ext}"
            image.write_bytes(data)
            out.append({"id": f"{tsv.stem}:{s.index}", "image": str(image), "prompt": q})
    return out[:limit] if limit else out


def run(cmd: list[str], program: str, reqs: Path, max_new: int) -> tuple[dict[str, dict], float]:
    start = time.monotonic()
    proc = subprocess.run([*cmd, "--program-dir", program, "--requests", str(reqs), "--max-new-tokens", str(max_new)],
                          capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    records = [json.loads(line.split("PyTorchObserver ", 1)[1]) for line in proc.stdout.splitlines()
               if "PyTorchObserver " in line]
    return {r["id"]: r for r in records}, elapsed


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("program")
    p.add_argument("native")
    p.add_argument("--runner-prefix", default="", help="e.g. 'qemu-aarch64-static -L SYSROOT' for an arm64 build")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--max-new-tokens", type=int, default=16)
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        reqs = requests(Path(tmp), a.limit)
        path = Path(tmp) / "requests.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in reqs))
        host, host_s = run([sys.executable, "-m", "mobile_mllm.device.runner"], a.program, path, a.max_new_tokens)
        native, native_s = run([*shlex.split(a.runner_prefix), a.native], a.program, path, a.max_new_tokens)
    differ = [{"id": i, "host": {k: host[i].get(k) for k in KEYS}, "native": {k: native.get(i, {}).get(k) for k in KEYS}}
              for i in host if {k: host[i].get(k) for k in KEYS} != {k: native.get(i, {}).get(k) for k in KEYS}]
    print(json.dumps({"program": a.program, "questions": len(reqs), "identical": len(reqs) - len(differ),
                      "host_batch_s": round(host_s, 1), "native_batch_s": round(native_s, 1), "differ": differ},
                     indent=1))


if __name__ == "__main__":
    main()
