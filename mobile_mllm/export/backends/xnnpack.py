"""XNNPACK (phone CPU): dynamically quantized linears first, then everything else XNNPACK runs.

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
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )

    del method, cfg
    return [XnnpackDynamicallyQuantizedPartitioner(), XnnpackPartitioner()]
