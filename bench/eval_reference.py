"""Measure a trained reference model on the held-out generated benchmark (issue 4's targets).

Usage (from the repository root):

    python bench/eval_reference.py builtin:synth-small --workers 16 --per-kind 100 --text-count 200 \
        --json-out out/bench.json --md-out out/bench.md

Asks every question through the toolkit's one predict-and-score path (``mobile_mllm.eval.predict``
answers, ``mobile_mllm.eval.run.row_score`` scores; see ``mobile_mllm.train.evaluate``) and prints
Markdown tables for ``bench/train_reference.md``. MODEL may be an exported program directory: the
same questions then go through the ``.pte`` (``Session`` opens either).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

from mobile_mllm.train.evaluate import BenchConfig, format_markdown, run_reference_bench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory, exported program directory or builtin:NAME")
    parser.add_argument("--seed", type=int, default=BenchConfig.seed)
    parser.add_argument("--per-kind", type=int, default=BenchConfig.per_kind)
    parser.add_argument("--text-count", type=int, default=BenchConfig.text_count)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--md-out", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    cfg = BenchConfig(seed=args.seed, per_kind=args.per_kind, text_count=args.text_count, workers=args.workers)
    report = run_reference_bench(args.model, cfg, on_progress=lambda line: print(line, file=sys.stderr, flush=True))
    text = format_markdown(report) + f"\n({report.seconds:.0f} s with {cfg.workers} worker processes)\n"
    print(text)
    if args.md_out:
        args.md_out.write_text(text, encoding="utf-8")
    if args.json_out:
        args.json_out.write_text(json.dumps(dataclasses.asdict(report), indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
