"""SmolVLM at real sizes with random weights: export time, program size, host speed (issue 20).

For each ``--variants`` (``256m``, ``500m``: the published SmolVLM-256M/500M-Instruct
architectures, ``mobile_mllm.model.smolvlm.synthetic.VARIANTS``) this script writes a
random-weight HF directory (reused when present), exports it with ``mobile-mllm export``
(``--recipe``, ``--no-verify``: verification is what the tiny-model tests prove; here it would
double the time), and times the program through the runtime's own methods:

* encode ms per 512-px tile (``vision_encoder`` at batch 1, median of ``--repeats``);
* prefill tokens/s: ``--prompt-len`` positions in ``prefill_chunk``-position calls;
* decode tokens/s: ``--decode-tokens`` single-position steps after that prefill.

Random weights give the real cost of every op (nothing is data-dependent in these programs).
A script, not library code. Example:

    PYTHONPATH=. .venv/bin/python bench/bench_smolvlm.py --work-dir /tmp/smolvlm_bench --variants 256m
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import loadavg, summary  # noqa: E402  (bench/ is the script dir)

CLI = [sys.executable, "-m", "mobile_mllm.cli", "-q"]


def _export(model_dir: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [*CLI, "export", str(model_dir), "-o", str(out), "--recipe", args.recipe, "--max-context-len",
           str(args.max_context_len), "--no-verify", "--json"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    report = json.loads(done.stdout)
    return {
        "export_wall_s": round(wall, 1),
        "export_time_s": report["export_time_s"],
        "timings_s": report["timings_s"],
        "program_bytes": report["program"]["size_bytes"],
        "delegated": report["delegated"],
        "num_parameters": sum(m["num_parameters"] for m in report["modules"].values()),
    }


def _time(program_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from mobile_mllm import contract
    from mobile_mllm.runtime.pte import PteMethods
    from mobile_mllm.runtime.session import decode_one_token, prefill

    manifest = json.loads((program_dir / contract.MANIFEST_FILE).read_text())
    methods = PteMethods(program_dir / contract.PROGRAM_FILE, tile_batch=int(manifest[contract.M_TILE_BATCH]))
    methods.prefill_chunk = int(manifest[contract.M_PREFILL_CHUNK])
    side = manifest["vision"]["tile_size"]
    tile = torch.rand(1, 3, side, side) * 2 - 1
    encode_ms = []
    for _ in range(args.repeats + 1):  # the first call warms up
        start = time.perf_counter()
        methods.vision_encoder(tile)
        encode_ms.append((time.perf_counter() - start) * 1e3)
    ids = torch.randint(0, 1000, (1, args.prompt_len), generator=torch.Generator().manual_seed(0))
    embeds = torch.cat([methods.token_embedding(ids[:, i:i + methods.prefill_chunk])
                        for i in range(0, args.prompt_len, methods.prefill_chunk)], dim=1)
    prefill_s, decode_s = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        logits = prefill(methods, embeds, 0, methods.prefill_chunk)
        prefill_s.append(time.perf_counter() - start)
        token, pos = int(logits.argmax()), args.prompt_len
        start = time.perf_counter()
        for _ in range(args.decode_tokens):
            token = int(decode_one_token(methods, token, pos).argmax())
            pos += 1
        decode_s.append(time.perf_counter() - start)
    return {
        "encode_ms_per_tile": summary(encode_ms[1:]),
        "prefill_tok_s": summary([args.prompt_len / s for s in prefill_s]),
        "decode_tok_s": summary([args.decode_tokens / s for s in decode_s]),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", type=Path, required=True)
    p.add_argument("--variants", nargs="+", default=["256m", "500m"])
    p.add_argument("--recipe", default="w4")
    p.add_argument("--max-context-len", type=int, default=2048)
    p.add_argument("--prompt-len", type=int, default=256)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    from mobile_mllm.model.smolvlm.synthetic import write_random_smolvlm

    results = {}
    for variant in args.variants:
        model_dir = args.work_dir / variant / "model"
        if not (model_dir / "config.json").exists():
            write_random_smolvlm(model_dir, variant=variant, seed=0)
        out = args.work_dir / variant / args.recipe
        row = {"loadavg_before": loadavg()}
        if not (out / "manifest.json").exists():
            row.update(_export(model_dir, out, args))
        row.update(_time(out, args))
        row["program_bytes_on_disk"] = (out / "model.pte").stat().st_size
        row["loadavg_after"] = loadavg()
        results[variant] = row
        print(json.dumps({variant: row}), flush=True)
    (args.work_dir / f"results_{args.recipe}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
