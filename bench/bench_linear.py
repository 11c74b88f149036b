"""What XNNPACK's linear kernels can do on this machine, per weight precision: the ceiling under our programs.

One ``nn.Linear`` of a decoder shape, quantized with torchao's configs as the recipes do (int8
dynamic activations; weights int4 group 32 / group 128 / per channel, int8 per channel; or fp32),
lowered with ExecuTorch's XNNPACK partitioner pair, run through ``executorch.runtime``:

* ``M=128``: a 128-position prefill chunk (a GEMM) -> GOP/s (2*K*N*M / time);
* ``M=1``: a decode step (a GEMV) -> weights processed per second (K*N / time).

A whole program cannot prefill or decode faster than its linears run here, so this tells whether a
gap to a peer (llama.cpp's own AVX2 kernels, ONNX Runtime's) is in our graph or in the kernels.

    .venv/bin/python bench/bench_linear.py --shapes 896x4864 4864x896 --threads 2

Prints one JSON line per (shape, precision). Numbers go to ``bench/RESULTS.md`` by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any


def _configs() -> dict[str, Any]:
    import torch
    from torchao.quantization import Int8DynamicActivationIntxWeightConfig
    from torchao.quantization.granularity import PerAxis, PerGroup

    def dyn(dtype: Any, granularity: Any) -> Any:
        return Int8DynamicActivationIntxWeightConfig(weight_dtype=dtype, weight_granularity=granularity)

    return {
        "fp32": None,
        "8da4w g32 (w4 recipe)": dyn(torch.int4, PerGroup(32)),
        "8da4w g128": dyn(torch.int4, PerGroup(128)),
        "8da4w per-channel": dyn(torch.int4, PerAxis(0)),
        "8da8w per-channel (w8 recipe)": dyn(torch.int8, PerAxis(0)),
    }


def _method(k: int, n: int, config: Any) -> tuple[Any, ...]:
    """``(method, *what it needs alive)``: the loaded method does not own the program bytes or the program."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime
    from torch import nn
    from torchao.quantization import quantize_

    module = nn.Sequential(nn.Linear(k, n, bias=False)).eval()
    if config is not None:
        quantize_(module, config)
    exported = torch.export.export(module, (torch.randn(1, 128, k),),
                                   dynamic_shapes=({1: torch.export.Dim("t", min=1, max=512)},))
    program = to_edge_transform_and_lower(
        exported, partitioner=[XnnpackDynamicallyQuantizedPartitioner(), XnnpackPartitioner()]).to_executorch()
    buffer = program.buffer
    loaded = Runtime.get().load_program(buffer)
    return loaded.load_method("forward"), loaded, buffer


def _seconds_per_call(method: Any, x: Any, reps: int) -> float:
    for _ in range(3):
        method.execute([x])
    start = time.perf_counter()
    for _ in range(reps):
        method.execute([x])
    return (time.perf_counter() - start) / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["896x4864", "4864x896", "896x896"],
                        help="KxN (in x out features) of the linears (default: the mid decoder's MLP and attention)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import torch
    from executorch.extension.pybindings import portable_lib

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    portable_lib._unsafe_reset_threadpool(args.threads)
    for shape in args.shapes:
        k, n = (int(v) for v in shape.split("x"))
        for name, config in _configs().items():
            method, *_alive = _method(k, n, config)
            prefill = _seconds_per_call(method, torch.randn(1, 128, k), 20)
            decode = _seconds_per_call(method, torch.randn(1, 1, k), 200)
            print(json.dumps({
                "shape": shape, "precision": name, "threads": args.threads,
                "prefill_m128_ms": round(prefill * 1e3, 3), "prefill_gops": round(2 * k * n * 128 / prefill / 1e9, 1),
                "decode_m1_us": round(decode * 1e6, 1), "decode_gparams_s": round(k * n / decode / 1e9, 2),
                "loadavg": [round(x, 2) for x in os.getloadavg()],
            }), flush=True)


if __name__ == "__main__":
    main()
