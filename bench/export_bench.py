"""Eager fp32 vs .pte fp32 vs .pte w4, side by side on the same inputs (speed, memory, size, roofline).

Usage (export the programs first, with a prefill chunk large enough for the one-shot case):

    mobile-mllm init-model --preset tiny -o /tmp/b/tiny
    mobile-mllm export /tmp/b/tiny -o /tmp/b/tiny_fp32 --recipe fp32 --prefill-chunk 512 --max-context 1024 --no-verify
    mobile-mllm export /tmp/b/tiny -o /tmp/b/tiny_w4 --recipe w4 --prefill-chunk 512 --max-context 1024 --no-verify
    python bench/export_bench.py /tmp/b/tiny /tmp/b/tiny_fp32 /tmp/b/tiny_w4 --prompt-tokens 512

Each backend runs in its own subprocess so peak RSS is its own. Numbers go to stdout as one
JSON object (plus a markdown table); they are never asserted in tests.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def _timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def measure(kind: str, path: str, model_dir: str, prompt_tokens: int, decode_tokens: int, repeat: int) -> dict:
    """Run inside the child: open one backend and time its methods."""
    import torch

    torch.manual_seed(0)
    if kind == "eager":
        from mobile_mllm.model import load_model
        from mobile_mllm.runtime.eager import EagerMethods

        model = load_model(model_dir, max_seq_len=prompt_tokens + decode_tokens + 8)
        m = EagerMethods(model, tile_batch=4, prefill_chunk=prompt_tokens)
        size, hidden, tile = model.vision.tile_size, model.hidden_size, model.vision.tile_size
    else:
        from mobile_mllm.export.manifest import read_manifest
        from mobile_mllm.runtime.pte import PteMethods

        manifest = read_manifest(path)
        m = PteMethods(Path(path) / "model.pte", tile_batch=int(manifest["tile_batch"]))
        hidden, tile = int(manifest["hidden_size"]), int(manifest["vision"]["tile_size"])
        size = tile
    out: dict = {"backend": kind, "path": path}
    for batch in (1, 4):
        tiles = torch.randn(batch, 3, size, size).clamp(-1, 1)
        out[f"vision_ms_per_tile_b{batch}"] = 1000 * _timeit(lambda: m.vision_encoder(tiles), repeat) / batch
    embeds = torch.randn(1, prompt_tokens, hidden) * 0.05

    def prefill(chunk: int) -> None:
        for i in range(0, prompt_tokens, chunk):
            m.text_decoder(embeds[:, i : i + chunk], torch.tensor([i]))

    out["prefill_tok_s_chunk128"] = prompt_tokens / _timeit(lambda: prefill(128), max(1, repeat // 2))
    out["prefill_tok_s_oneshot"] = prompt_tokens / _timeit(lambda: prefill(prompt_tokens), max(1, repeat // 2))
    token = torch.tensor([[1]])

    def decode() -> None:
        for j in range(decode_tokens):
            m.text_decoder(m.token_embedding(token), torch.tensor([prompt_tokens + j]))

    out["decode_tok_s"] = decode_tokens / _timeit(decode, 1)
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def memory_bandwidth_gb_s(size_mb: int = 512) -> float:
    """Measured copy bandwidth (read + write bytes / s) of a large numpy array, best of 5."""
    import numpy as np

    a = np.ones(size_mb * 2**20 // 8)
    b = np.empty_like(a)
    best = min(_timeit(lambda: np.copyto(b, a), 1) for _ in range(5))
    return 2 * a.nbytes / best / 1e9


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("fp32_dir")
    p.add_argument("w4_dir")
    p.add_argument("--prompt-tokens", type=int, default=512)
    p.add_argument("--decode-tokens", type=int, default=32)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--child", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        print(json.dumps(measure(a.child[0], a.child[1], a.model_dir, a.prompt_tokens, a.decode_tokens, a.repeat)))
        return 0
    rows = []
    for kind, path in (("eager", a.model_dir), ("pte_fp32", a.fp32_dir), ("pte_w4", a.w4_dir)):
        cmd = [sys.executable, __file__, a.model_dir, a.fp32_dir, a.w4_dir, "--prompt-tokens", str(a.prompt_tokens),
               "--decode-tokens", str(a.decode_tokens), "--repeat", str(a.repeat), "--child", kind, path]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        row = json.loads(res.stdout.strip().splitlines()[-1])
        row["backend"] = kind
        if kind != "eager":
            report = json.loads((Path(path) / "export_report.json").read_text())
            row["file_mib"] = report["program"]["size_bytes"] / 2**20
            row["decoder_weight_bytes"] = report["modules"]["text_decoder"]["weight_bytes"]
        else:
            row["file_mib"] = sum(f.stat().st_size for f in Path(path).glob("*.safetensors")) / 2**20
        rows.append(row)
    bw = memory_bandwidth_gb_s()
    fp32_bytes = next(r for r in rows if r["backend"] == "pte_fp32")["decoder_weight_bytes"]
    for r in rows:
        weight_bytes = r.get("decoder_weight_bytes", fp32_bytes)
        r["roofline_tok_s"] = bw * 1e9 / weight_bytes
        r["decode_fraction_of_roofline"] = r["decode_tok_s"] / r["roofline_tok_s"]
    print(json.dumps({"memory_bandwidth_gb_s": bw, "rows": rows}, indent=1))
    keys = ["vision_ms_per_tile_b1", "vision_ms_per_tile_b4", "prefill_tok_s_chunk128", "prefill_tok_s_oneshot",
            "decode_tok_s", "roofline_tok_s", "decode_fraction_of_roofline", "peak_rss_mib", "file_mib"]
    print("| metric | " + " | ".join(r["backend"] for r in rows) + " |")
    print("|---" * (len(rows) + 1) + "|")
    for k in keys:
        print(f"| {k} | " + " | ".join(f"{r[k]:.3g}" for r in rows) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
