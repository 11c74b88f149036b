"""What XNNPACK's linear kernels can do on this machine, per weight precision: the ceiling under our programs.

One ``nn.Linear`` of a decoder shape, quantized with torchao's configs as the recipes do (int8
dynamic activations; weights int4 group 32 / group 128 / per channel, int8 per channel; or fp32),
lowered with ExecuTorch's XNNPACK partitioner pair, run through ``executorch.runtime``:

* ``M=128``: a 128-position prefill chunk (a GEMM) -> GOP/s (2*K*N*M / time);
* ``M=1``: a decode step (a GEMV) -> weights processed per second (K*N / time).

A whole program cannot prefill or decode faster than its linears run here, so this tells whether a
gap to a peer (llama.cpp's own AVX2 kernels, ONNX Runtime's) is in our graph or in the kernels.

    .venv/bin/python bench/bench_linear.py --shapes 896x4864 4864x896 --threads 2

Prints one JSON line per (shape, precision). Two more modes, same lowering:

* ``--mode fusion``: a layer's q/k/v projections (896 -> 896 + 128 + 128, with bias) and gate/up
  (896 -> 2 x 4864) as separate 8da4w linears vs one fused linear split after, decode and
  128-position prefill, ``--rounds`` interleaved rounds (was fusing worth building?);
* ``--mode exactness``: one 8da8w linear, the same ``[1, 400, 512]`` input through eager torchao and
  through the lowered program (do int8 rounding flips need a last-bit difference upstream?).

Numbers go to ``bench/RESULTS.md`` by hand.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from measure import loadavg, set_threads  # noqa: E402  (bench/ is the script dir)


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


def _quantized_linear(k: int, n: int, config: Any) -> Any:
    """``nn.Sequential(nn.Linear(k, n))`` quantized with ``config`` (None: fp32)."""
    from torch import nn
    from torchao.quantization import quantize_

    module = nn.Sequential(nn.Linear(k, n, bias=False)).eval()
    if config is not None:
        quantize_(module, config)
    return module


def _lower(module: Any, k: int) -> tuple[Any, ...]:
    """``(method, *what it needs alive)`` of ``module`` (input ``[1, T, k]``, T up to 512) lowered with XNNPACK.

    The loaded method does not own the program bytes or the program.
    """
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )
    from executorch.exir import to_edge_transform_and_lower
    from executorch.runtime import Runtime

    exported = torch.export.export(module, (torch.randn(1, 128, k),),
                                   dynamic_shapes=({1: torch.export.Dim("t", min=1, max=512)},))
    program = to_edge_transform_and_lower(
        exported, partitioner=[XnnpackDynamicallyQuantizedPartitioner(), XnnpackPartitioner()]).to_executorch()
    buffer = program.buffer
    loaded = Runtime.get().load_program(buffer)
    return loaded.load_method("forward"), loaded, buffer


def _fusion(rounds: int, threads: int) -> None:
    """Separate q/k/v and gate/up 8da4w linears vs one fused linear each (split after): one JSON line per case and round."""
    import torch
    from torch import nn
    from torchao.quantization import quantize_

    w4 = _configs()["8da4w g32 (w4 recipe)"]

    class Separate(nn.Module):
        def __init__(self, outs: list[int]) -> None:
            super().__init__()
            self.linears = nn.ModuleList(nn.Linear(896, o) for o in outs)

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(linear(x) for linear in self.linears)

    class Fused(nn.Module):
        def __init__(self, outs: list[int]) -> None:
            super().__init__()
            self.outs, self.linear = outs, nn.Linear(896, sum(outs))

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(torch.split(self.linear(x), self.outs, dim=-1))

    methods = {}
    for case, outs in (("q/k/v", [896, 128, 128]), ("gate/up", [4864, 4864])):
        for kind, cls in (("separate", Separate), ("fused", Fused)):
            module = cls(outs).eval()
            quantize_(module, w4)
            methods[case, kind] = _lower(module, 896)
    for round_ in range(rounds):
        for (case, kind), (method, *_alive) in methods.items():
            decode = _seconds_per_call(method, torch.randn(1, 1, 896), 300)
            prefill = _seconds_per_call(method, torch.randn(1, 128, 896), 20)
            print(json.dumps({"mode": "fusion", "round": round_, "case": case, "kind": kind, "threads": threads,
                              "decode_m1_us": round(decode * 1e6, 1), "prefill_m128_ms": round(prefill * 1e3, 3),
                              "loadavg": loadavg()}), flush=True)


def _exactness() -> None:
    """One 8da8w linear: relative error of the lowered program vs eager torchao on the same input, and rows that differ."""
    import torch

    module = _quantized_linear(512, 512, _configs()["8da8w per-channel (w8 recipe)"])
    x = torch.randn(1, 400, 512) * torch.rand(1, 400, 1) * 3  # rows of different ranges: different int8 scales
    method, *_alive = _lower(module, 512)
    got = method.execute([x])[0][0]
    with torch.no_grad():
        expected = module(x)[0]
    differing = ((got - expected).abs().amax(-1) > 1e-4 * expected.abs().amax()).sum()
    print(json.dumps({"mode": "exactness", "precision": "8da8w per-channel", "shape": [1, 400, 512],
                      "rel_err": float((got - expected).norm() / expected.norm()), "rows_differing": int(differing)}))


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
    parser.add_argument("--mode", choices=["kernels", "fusion", "exactness"], default="kernels",
                        help="kernels: per-precision rates (default); fusion / exactness: see the module docstring")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (--mode fusion)")
    args = parser.parse_args()

    import torch

    torch.manual_seed(0)
    set_threads(args.threads)
    if args.mode == "fusion":
        return _fusion(args.rounds, args.threads)
    if args.mode == "exactness":
        return _exactness()
    for shape in args.shapes:
        k, n = (int(v) for v in shape.split("x"))
        for name, config in _configs().items():
            method, *_alive = _lower(_quantized_linear(k, n, config), k)
            prefill = _seconds_per_call(method, torch.randn(1, 128, k), 20)
            decode = _seconds_per_call(method, torch.randn(1, 1, k), 200)
            print(json.dumps({
                "shape": shape, "precision": name, "threads": args.threads,
                "prefill_m128_ms": round(prefill * 1e3, 3), "prefill_gops": round(2 * k * n * 128 / prefill / 1e9, 1),
                "decode_m1_us": round(decode * 1e6, 1), "decode_gparams_s": round(k * n / decode / 1e9, 2),
                "loadavg": loadavg(),
            }), flush=True)


if __name__ == "__main__":
    main()
