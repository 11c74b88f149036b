"""InternVL3-1B at its real size (random weights): export time, program size and host speed.

Nothing is downloaded: the model directory is written from the published ``config.json``
values (``mobile_mllm.model.internvl.builders.internvl3_1b``: InternViT-300M-448px +
Qwen2.5-0.5B) with random weights (bf16 on disk), plus the tokenizer, chat template and image
processor files the family's tests write (``tests/mobile_mllm/model/internvl/internvl_models.py``;
a small tokenizer: speed does not depend on the vocabulary's strings). Steps, each skipped when
its output already exists under ``--work-dir``:

1. ``model/``: the random-weight InternVL3-1B-hf directory;
2. ``w4/``: ``mobile-mllm export model -o w4 --recipe w4`` (wall time measured here);
3. speed of ``w4/model.pte`` on this host, through ``bench_export.py``'s worker (a fresh
   process): ``vision_encoder`` ms per call at tile batch 1 and 4 (448-px tiles), chunked
   prefill of ``--prompt-len`` positions in ``--chunk``-position calls, and decode steps.

Example:
    .venv/bin/python bench/bench_internvl.py --work-dir /tmp/internvl_bench --json-out /tmp/internvl_bench/result.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import loadavg, run_json  # noqa: E402  (bench/ is the script dir)

REPO = Path(__file__).resolve().parent.parent
TEST_HELPERS = REPO / "tests" / "mobile_mllm" / "model" / "internvl"


def write_model(out: Path, seed: int) -> dict[str, Any]:
    """Step 1: a random-weight InternVL3-1B-hf directory (HF's own init, seeded), stored in bf16."""
    import torch
    from transformers import InternVLForConditionalGeneration

    sys.path.insert(0, str(TEST_HELPERS))
    from internvl_models import write_processor_files  # noqa: PLC0415  (the tests' processor files)

    from mobile_mllm.model.internvl.builders import internvl3_1b

    start = time.perf_counter()
    tokenizer = write_processor_files(out, tile_px=448, max_patches=12, tokens_per_tile=256)
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(internvl3_1b(image_token_id=tokenizer.context_image_token_id)).eval()
    params = sum(p.numel() for p in model.parameters())
    model.to(torch.bfloat16).save_pretrained(out)
    return {"num_parameters": params, "write_s": round(time.perf_counter() - start, 1)}


def export(model: Path, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Step 2: the CLI export, timed as a user sees it (wall clock, verification included)."""
    cmd = [sys.executable, "-m", "mobile_mllm.cli", "export", str(model), "-o", str(out), "--recipe", args.recipe,
           "--max-context-len", str(args.max_context_len), "--prefill-chunk", str(args.chunk),
           "--tile-batch", "4", "--json"]
    cmd += ["--verify-tokens", str(args.verify_tokens)] if args.verify_tokens > 0 else ["--no-verify"]
    load = loadavg()
    start = time.perf_counter()
    log = out.parent / f"{out.name}_export.log"  # the export's progress lines, readable while it runs
    with log.open("w") as stderr:
        proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"export failed ({proc.returncode}): see {log}")
    report = json.loads(proc.stdout)
    (out / "bench_export_report.json").write_text(json.dumps(report, indent=1))
    return {"command": " ".join(cmd[1:]), "wall_s": round(wall, 1), "loadavg_start": load, "loadavg_end": loadavg()}


def write_inputs(program: Path, prompt_len: int) -> Path:
    """Random normalised 448-px tiles and prompt embeddings of the decoder's width, seeded."""
    import torch

    from mobile_mllm import contract
    from mobile_mllm.export.manifest import read_manifest

    manifest = read_manifest(program)
    size, hidden = int(manifest[contract.M_VISION]["tile_size"]), int(manifest[contract.M_HIDDEN_SIZE])
    gen = torch.Generator().manual_seed(0)
    path = program / "bench_inputs.pt"
    torch.save({"tiles": torch.rand(4, 3, size, size, generator=gen) * 2 - 1,
                "embeds": torch.randn(1, prompt_len, hidden, generator=gen) * 0.02}, path)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="/tmp/internvl_bench", help="model, program and results (created, reused)")
    p.add_argument("--recipe", default="w4", help="export precision preset (default: w4)")
    p.add_argument("--max-context-len", type=int, default=2048)
    p.add_argument("--chunk", type=int, default=128, help="prefill chunk (default: 128)")
    p.add_argument("--prompt-len", type=int, default=512, help="prefill positions timed (default: 512)")
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--verify-tokens", type=int, default=4, help="greedy tokens verified at export; 0: --no-verify")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json-out", default=None)
    args = p.parse_args()
    work = Path(args.work_dir)
    model, program = work / "model", work / args.recipe
    result: dict[str, Any] = {"loadavg_start": loadavg()}
    if not (model / "config.json").is_file():
        result["model"] = write_model(model, args.seed)
    if not (program / "model.pte").is_file():
        result["export"] = export(model, program, args)
    report = json.loads((program / "bench_export_report.json").read_text())
    result["program_bytes"] = (program / "model.pte").stat().st_size
    result["export_time_s"] = report.get("export_time_s")
    result["export_stage_s"] = report.get("timings_s")
    result["delegated"] = report.get("delegated")
    result["verification_greedy"] = (report.get("verification") or {}).get("greedy")
    inputs = write_inputs(program, args.prompt_len)
    raw = run_json(REPO / "bench" / "bench_export.py", [
        "worker", "--backend", "pte", "--path", str(program), "--inputs", str(inputs), "--threads", str(args.threads),
        "--repeats", str(args.repeats), "--chunk", str(args.chunk), "--decode-tokens", str(args.decode_tokens),
        "--max-context-len", str(args.max_context_len),
    ])
    ms = raw["raw_ms"]
    med = {k: sorted(v)[len(v) // 2] for k, v in ms.items()}
    result["speed"] = {
        "vision_ms_per_tile_b1": round(med["vision_b1_ms"], 1),
        "vision_ms_per_tile_b4": round(med["vision_b4_ms"] / 4, 1) if "vision_b4_ms" in med else None,
        "prefill_tok_s": round(args.prompt_len / med["prefill_chunked_ms"] * 1e3, 1),
        "decode_tok_s": round(args.decode_tokens / med["decode_ms"] * 1e3, 2),
        "peak_rss_bytes": raw["peak_rss_bytes"], "load_s": raw["load_s"], "raw_ms": ms,
    }
    result["loadavg_end"] = loadavg()
    text = json.dumps(result, indent=1)
    if args.json_out:
        Path(args.json_out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
