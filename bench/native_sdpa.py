"""Two builds of the native runner on one program, alternating: prefill speed and attention time.

Why: the runner's own ``llama::custom_sdpa`` / ``update_cache`` kernels (android_app/runner/src/
llm_kernels.cpp) are registered without ETDump names, so a profile shows them only as the time of
the ``OPERATOR_CALL`` frames that no named leaf event (``native_call_*``: the portable and optimized
operators) accounts for. This runs the builds A B A B ... on the same image and prompt, each run with
``--etdump``, and reports per run the runner's own prefill tok/s (its ``PyTorchObserver`` line) and
that unnamed operator time (attention + cache writes, all methods of the run).

Usage (from a checkout root):
    python bench/native_sdpa.py PROGRAM_DIR IMAGE BUILD_A/mobile_mllm_runner BUILD_B/mobile_mllm_runner \
        [--rounds 2] [--prompt "What is in the picture?"] [--max-new-tokens 8]
Prints one JSON line per run, then the per-build medians.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

from mobile_mllm.runtime.etdump import aggregate_events


def unnamed_operator_ms(etdump: Path) -> dict[str, float]:
    """Operator-call time, the named operators' share of it, and the rest (our kernels)."""
    rows = {r["event"]: r["total_ms"] for r in aggregate_events(etdump)}
    operator = rows.get("OPERATOR_CALL", 0.0)
    named = sum(ms for name, ms in rows.items() if name.startswith("native_call_"))
    return {"operator_ms": operator, "named_operator_ms": named, "llm_kernels_ms": operator - named}


def run_once(runner: Path, args: argparse.Namespace, etdump: Path) -> dict[str, float]:
    """One runner invocation: its observer numbers and the ETDump split."""
    proc = subprocess.run([str(runner), "--program-dir", args.program_dir, "--image", args.image, "--prompt",
                           args.prompt, "--max-new-tokens", str(args.max_new_tokens), "--no-stream",
                           "--etdump", str(etdump)], capture_output=True, text=True, check=True)
    observed = [json.loads(line.split(" ", 1)[1]) for line in proc.stdout.splitlines()
                if line.startswith("PyTorchObserver ")][-1]
    keys = ("num_prompt_tokens", "prefill_ms", "prefill_tok_s", "image_encode_ms", "decode_tok_s")
    return {**{k: observed[k] for k in keys}, **unnamed_operator_ms(etdump)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("program_dir")
    parser.add_argument("image")
    parser.add_argument("runners", nargs=2, type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--prompt", default="What is in the picture?")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {str(r): [] for r in args.runners}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for runner in args.runners:
                row = run_once(runner, args, Path(tmp) / "run.etdump")
                results[str(runner)].append(row)
                print(json.dumps({"round": round_, "runner": str(runner), **row}), flush=True)
    for runner, rows in results.items():
        print(json.dumps({"runner": runner, "median": {k: statistics.median(r[k] for r in rows) for k in rows[0]}}))


if __name__ == "__main__":
    main()
