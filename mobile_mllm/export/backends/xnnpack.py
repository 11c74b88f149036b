"""XNNPACK (phone CPU): which partitioners each method gets, and the edge passes run before them.

Precision is the recipe's decision, made before lowering; the partitioners per method were
chosen by measurement (:func:`partitioners`). Ops XNNPACK cannot run (the KV-cache custom ops,
embedding lookups) stay on ExecuTorch's portable/optimized/quantized CPU kernels.

Two edge passes: :func:`remove_identity_expands` (a speed fix: identity copies ``torch.matmul``
leaves would run on the portable kernel) and :func:`decompose_tanh_gelu`, a correctness
workaround: ExecuTorch 1.5's XNNPACK partitioner claims every ``aten.gelu`` and serializes it as
XNNPACK's exact (erf) GELU, ignoring ``approximate="tanh"`` (SigLIP's activation), so the program
silently computed a different function (up to 5e-4 absolute per activation; through int8 dynamic
activations that flipped enough roundings to put the tiny vision tower 7e-3 away from the eager
model). It rewrites tanh-GELU into ops XNNPACK runs exactly as written before partitioning.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import fx

    from mobile_mllm.export.program import TargetConfig

__all__ = ["check", "decompose_tanh_gelu", "edge_passes", "partitioners", "remove_identity_expands"]

_GELU_C0 = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_C1 = _GELU_C0 * 0.044715


def check(cfg: TargetConfig) -> None:
    """Nothing to check: XNNPACK ships in the executorch wheel."""
    del cfg


def partitioners(method: str, cfg: TargetConfig) -> list[Any]:
    """XNNPACK partitioners for ``method``, chosen by measurement (``bench/RESULTS.md``).

    * ``text_decoder``: ExecuTorch's pair (dynamically quantized linears first, then the rest).
      One ``XnnpackPartitioner`` (2 delegates per layer instead of ~10) decoded slower on this
      host (0.71-0.96x: the same QD8 GEMMs took longer inside the big delegates).
    * ``vision_encoder``: one ``XnnpackPartitioner`` (it takes the 8da8w linears too): the mid
      tower ran at the same speed as with the pair (255/279 vs 267/271 ms per tile at batch 1/4,
      3 interleaved rounds, within noise) and lowered faster (171 vs 235 s, one export each; no
      measurable change on tiny's small tower), since each partitioner costs ExecuTorch a
      re-decomposition of the method.
    * ``token_embedding``: none. XNNPACK has no embedding-lookup kernel, so the lookup (after
      quant fusion an int8 ``embedding_byte``, or an fp32 ``embedding``) runs on ExecuTorch's
      kernels either way; asking the partitioners cost two more re-decompositions for the same
      graph (6.2 s vs 0.9 s on tiny).

    Args:
        method (str): the program method being lowered.
        cfg (TargetConfig): target settings (unused by XNNPACK; kept for the common signature).
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )

    from mobile_mllm import contract

    del cfg
    if method == contract.TOKEN_EMBEDDING:
        return []
    if method == contract.VISION_ENCODER:
        return [XnnpackPartitioner()]
    return [XnnpackDynamicallyQuantizedPartitioner(), XnnpackPartitioner()]


def edge_passes(method: str, cfg: TargetConfig) -> list[Any]:
    """Graph passes to run on ``method``'s edge program before partitioning.

    Args:
        method (str): the program method being lowered.
        cfg (TargetConfig): target settings (unused; kept for the common signature).
    """
    del method, cfg
    return [decompose_tanh_gelu, remove_identity_expands]


def decompose_tanh_gelu(gm: fx.GraphModule) -> Any:
    """Rewrite every edge ``gelu(x, approximate="tanh")`` as ``x * sigmoid(x * (c0 + c1 * x**2))``.

    That is the tanh form exactly (``0.5 * (1 + tanh(z)) == sigmoid(2 z)``) in five elementwise
    ops XNNPACK delegates (mul, add and sigmoid, with the constants as lifted tensors), instead of
    the ``gelu`` node XNNPACK would run as erf-GELU. Measured on a ``[576, 2048]`` activation:
    2.6e-8 relative to PyTorch's tanh-GELU (erf-GELU: 2.0e-4), 14 ms instead of 9 ms for
    XNNPACK's erf-GELU on two busy cores (the cheapest exact form tried: the literal tanh formula
    took 16-18 ms, leaving the node to the portable kernel 41-47 ms). Exact-GELU nodes are left
    alone.

    Args:
        gm (fx.GraphModule): an edge-dialect graph module (its nodes carry ``meta["val"]``).

    Returns:
        PassResult: the module, and whether anything changed.
    """
    from executorch.exir.dialects._ops import ops as exir_ops

    aten = exir_ops.edge.aten
    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != aten.gelu.default:
            continue
        approximate = node.kwargs.get("approximate", node.args[1] if len(node.args) > 1 else "none")
        if approximate != "tanh":
            continue
        x = node.args[0]
        with gm.graph.inserting_before(node):
            c0, c1 = _constant(gm, _GELU_C0), _constant(gm, _GELU_C1)
            poly = _like(gm, node, aten.add.Tensor, _like(gm, node, aten.mul.Tensor, _like(gm, node, aten.mul.Tensor, x, x), c1), c0)
            out = _like(gm, node, aten.mul.Tensor, x, _like(gm, node, aten.sigmoid.default, _like(gm, node, aten.mul.Tensor, poly, x)))
        node.replace_all_uses_with(out)
        gm.graph.erase_node(node)
        changed = True
    return _finish(gm, changed)


def remove_identity_expands(gm: fx.GraphModule) -> Any:
    """Drop ``expand_copy`` nodes whose output shape is their input's shape (a copy that changes nothing).

    ``torch.matmul`` of two 4-D tensors (the vision tower's attention scores and weighted values)
    decomposes into ``expand`` to the broadcast batch shape, ``view`` and ``bmm``; when the batch
    dimensions already agree the expand is an identity, but XNNPACK does not take ``expand_copy``
    and the portable kernel copied the tensor anyway: 96 copies, ~20 ms of a 314 ms mid-preset
    tile. Shapes are compared symbolically (the tile batch is dynamic), so an expand that only
    *may* be an identity is kept.

    Args:
        gm (fx.GraphModule): an edge-dialect graph module (its nodes carry ``meta["val"]``).

    Returns:
        PassResult: the module, and whether anything changed.
    """
    from executorch.exir.dialects._ops import ops as exir_ops
    from torch.fx.experimental.symbolic_shapes import statically_known_true

    changed = False
    for node in list(gm.graph.nodes):
        if node.op != "call_function" or node.target != exir_ops.edge.aten.expand_copy.default:
            continue
        source = node.args[0]
        before, after = source.meta["val"].shape, node.meta["val"].shape
        if len(before) == len(after) and all(statically_known_true(a == b) for a, b in zip(before, after)):
            node.replace_all_uses_with(source)
            gm.graph.erase_node(node)
            changed = True
    return _finish(gm, changed)


def _constant(gm: fx.GraphModule, value: float) -> fx.Node:
    """A ``get_attr`` node for a float32 ``[1]`` buffer holding ``value`` (ExecuTorch lifts it to a constant)."""
    import torch

    name = "_xnnpack_const_" + format(value, ".17g").replace(".", "p").replace("-", "m").replace("+", "")
    if not hasattr(gm, name):
        gm.register_buffer(name, torch.tensor([value], dtype=torch.float32))
    node = gm.graph.get_attr(name)
    node.meta["val"] = getattr(gm, name)
    return node


def _like(gm: fx.GraphModule, template: fx.Node, op: Any, *args: Any) -> fx.Node:
    """A new ``op(*args)`` node with ``template``'s meta (elementwise: same shape and dtype as the node it replaces)."""
    node = gm.graph.call_function(op, args)
    node.meta = dict(template.meta)
    return node


def _finish(gm: fx.GraphModule, changed: bool) -> Any:
    from torch.fx.passes.infra.pass_base import PassResult

    if changed:
        gm.graph.lint()
        gm.recompile()
    return PassResult(gm, changed)
