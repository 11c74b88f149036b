"""ExecuTorch's ``llama.custom_sdpa`` against PyTorch's own SDPA on the same static KV cache: the attention under our decoder.

Our ``text_decoder`` attends with ``llama.custom_sdpa`` over a ``[1, max_context_len, kv_heads,
head_dim]`` cache (the op issue 3 prescribes, and what optimum-executorch uses too); this times that
kernel (through its AOT library, the same C++ code the program runs) and
``F.scaled_dot_product_attention(..., enable_gqa=True)`` on the cache sliced to the positions in
use, at the mid decoder's shapes: one decode query after ``--decode-start`` positions, and a
``--chunk``-query prefill chunk at ``--chunk-start``. Prints one JSON line per case (ms per layer-call).

    .venv/bin/python bench/bench_sdpa.py --threads 2

Numbers go to ``bench/RESULTS.md`` by hand.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, Callable

from measure import loadavg, set_threads  # noqa: E402  (bench/ is the script dir)


def _ms_per_call(fn: Callable[[], Any], reps: int) -> float:
    for _ in range(5):
        fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heads", type=int, default=14, help="query heads (mid: 14)")
    parser.add_argument("--kv-heads", type=int, default=2, help="key/value heads (mid: 2)")
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--max-context-len", type=int, default=1024, help="cache positions")
    parser.add_argument("--decode-start", type=int, default=540)
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--chunk-start", type=int, default=256)
    args = parser.parse_args()

    import torch
    from executorch.extension.llm.custom_ops import custom_ops  # noqa: F401  (registers llama.custom_sdpa)

    torch.manual_seed(0)
    set_threads(args.threads)
    k_cache = torch.randn(1, args.max_context_len, args.kv_heads, args.head_dim)
    v_cache = torch.randn(1, args.max_context_len, args.kv_heads, args.head_dim)
    with torch.inference_mode():
        for case, length, start, reps in (("decode", 1, args.decode_start, 200), ("prefill chunk", args.chunk, args.chunk_start, 20)):
            q = torch.randn(1, length, args.heads, args.head_dim)
            used = start + length
            k, v = k_cache[:, :used].transpose(1, 2), v_cache[:, :used].transpose(1, 2)
            mask = torch.ones(length, used, dtype=torch.bool).tril(diagonal=start)
            custom = _ms_per_call(lambda: torch.ops.llama.custom_sdpa(q, k_cache, v_cache, start, None, 0, True), reps)
            reference = _ms_per_call(lambda: torch.nn.functional.scaled_dot_product_attention(
                q.transpose(1, 2), k, v, attn_mask=mask, enable_gqa=True), reps)
            print(json.dumps({"case": case, "queries": length, "start_pos": start, "threads": args.threads,
                              "custom_sdpa_ms": round(custom, 3), "torch_sdpa_ms": round(reference, 3),
                              "ratio": round(custom / reference, 2), "loadavg": loadavg()}),
                  flush=True)


if __name__ == "__main__":
    main()
