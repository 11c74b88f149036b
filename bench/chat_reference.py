"""The chat benchmark of the reference model (plain questions, follow-ups, descriptions; train.chat_eval).

    python bench/chat_reference.py builtin:synth-small --seed 5000 --count 100 [--workers 15] [--json-out F] [--md-out F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


def main() -> int:
    from mobile_mllm.train.chat_eval import evaluate_chat, format_chat_markdown

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="model directory or builtin:NAME")
    parser.add_argument("--seed", type=int, default=5000)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--workers", type=int, default=1, help="processes (one thread each)")
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--md-out", type=Path, default=None)
    args = parser.parse_args()
    start = time.monotonic()
    records = evaluate_chat(args.model, seed=args.seed, count=args.count, workers=args.workers)
    text = format_chat_markdown(records) + f"\n({time.monotonic() - start:.0f} s, {args.workers} process(es))\n"
    print(text)
    if args.md_out:
        args.md_out.write_text(text, encoding="utf-8")
    if args.json_out:
        args.json_out.write_text(json.dumps([dataclasses.asdict(r) for r in records], indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
