"""XNNPACK (phone CPU): one partitioner claims every precision, so op chains lower as one delegate.

Methods are lowered the same way; what differs between them is precision, which the recipe
decides before lowering. Ops XNNPACK cannot run (the KV-cache custom ops, embedding lookups)
stay on ExecuTorch's portable/optimized/quantized CPU kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mobile_mllm.export.program import TargetConfig

__all__ = ["check", "partitioners"]


def check(cfg: TargetConfig) -> None:
    """Nothing to check: XNNPACK ships in the executorch wheel."""
    del cfg


def partitioners(method: str, cfg: TargetConfig) -> list[Any]:
    """XNNPACK partitioners for ``method`` (the same list for every method on this target).

    Args:
        method (str): the program method being lowered.
        cfg (TargetConfig): target settings (unused by XNNPACK; kept for the common signature).
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

    del method, cfg
    # One partitioner for all precisions (fp32, static and dynamic int8), not ExecuTorch's usual
    # [XnnpackDynamicallyQuantizedPartitioner(), XnnpackPartitioner()]: partitions of different
    # partitioners never merge, so that pair cut each decoder layer into ~8 delegate calls (dq
    # linears apart from the fp32 ops between them), each re-entering XNNPACK and waking its
    # threadpool. Same kernels either way; bench/bench_decoder.py and bench/RESULTS.md measure it.
    return [XnnpackPartitioner()]
