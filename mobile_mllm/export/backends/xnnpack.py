"""XNNPACK (phone CPU): the ``cpu`` target's export recipe (:data:`BACKEND`).

* prepare: copies of the eager ``vision_encoder`` (its transformers attention switched to
  matmul + softmax, :func:`matmul_attention`) and ``token_embedding``, and the ``text_decoder``
  rebuilt from the family's decoder parts over ExecuTorch's KV-cache custom ops
  (``export/decoder.py``);
* quantize: torchao in eager (the precision recipe decides, before lowering);
* shapes: dynamic tile batch, token count and positions (``enable_dynamic_shape``);
* lower: the partitioners per method were chosen by measurement (:func:`partitioners`); ops
  XNNPACK cannot run (the KV-cache custom ops, embedding lookups) stay on ExecuTorch's
  portable/optimized/quantized CPU kernels.

Two edge passes: :func:`remove_identity_expands` (a speed fix: identity copies ``torch.matmul``
leaves would run on the portable kernel) and :func:`decompose_tanh_gelu`, a correctness
workaround: ExecuTorch 1.5's XNNPACK partitioner claims every ``aten.gelu`` and serializes it as
XNNPACK's exact (erf) GELU, ignoring ``approximate="tanh"`` (SigLIP's activation), so the program
silently computed a different function (its size: ``bench/RESULTS.md``, "tanh-GELU under
XNNPACK"). It rewrites tanh-GELU into ops XNNPACK runs exactly as written before partitioning.
"""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.export import onnx_vision
from mobile_mllm.export.backend import ExportBackend, MethodInputs, contract_constants, max_seq_len

if TYPE_CHECKING:
    from torch import fx, nn

    from mobile_mllm.export.config import TargetConfig
    from mobile_mllm.model.adapter import MultimodalModel

__all__ = [
    "BACKEND",
    "check",
    "constant_methods",
    "decompose_tanh_gelu",
    "edge_passes",
    "extra_files",
    "matmul_attention",
    "method_inputs",
    "partitioners",
    "prepare",
    "remove_identity_expands",
]

_GELU_C0 = 2.0 * math.sqrt(2.0 / math.pi)
_GELU_C1 = _GELU_C0 * 0.044715


def check(cfg: TargetConfig) -> None:
    """Nothing to check: XNNPACK ships in the executorch wheel."""
    del cfg


def matmul_attention(module: nn.Module) -> nn.Module:
    """Switch the transformers models inside ``module`` from SDPA to their eager (matmul + softmax) attention, in place.

    Why: ``torch.export`` keeps ``scaled_dot_product_attention``, and ExecuTorch then decomposes it
    through ``aten._safe_softmax``, whose guard for fully masked rows (``eq``/``logical_not``/
    ``any``/``where``/``full_like`` over the ``[B, heads, N, N]`` scores) XNNPACK does not take,
    so those ops ran on portable kernels (their share of a tile: ``bench/RESULTS.md``, "Vision
    encoder vs ONNX Runtime"). The eager formulation is the same function without a mask (the
    vision tower has none) and lowers to XNNPACK's batch matmul and softmax. The decoder is not
    affected: it is rebuilt over ``llama.custom_sdpa``.

    Args:
        module (nn.Module): e.g. a copy of the model's ``vision_encoder``.

    Returns:
        nn.Module: ``module`` itself.
    """
    from transformers import PreTrainedModel

    for sub in module.modules():
        if isinstance(sub, PreTrainedModel) and sub.config._attn_implementation == "sdpa":
            sub.set_attn_implementation("eager")
    return module


def prepare(model: MultimodalModel, cfg: TargetConfig) -> dict[str, nn.Module]:
    """The contract's three methods as export modules (copies: the eager model stays as it was).

    Without ``vision_encoder`` when ``cfg.pte_vision_encoder`` is false (``vision.onnx`` encodes images).

    Args:
        model (MultimodalModel): the loaded float model.
        cfg (TargetConfig): static sizes (the KV cache holds ``max_context_len`` positions).
    """
    import dataclasses

    from mobile_mllm.export.decoder import build_kv_decoder
    from mobile_mllm.model.registry import decoder_parts

    copied = dataclasses.replace(
        model, token_embedding=copy.deepcopy(model.token_embedding), text_decoder=copy.deepcopy(model.text_decoder)
    )
    vision = {}
    if cfg.pte_vision_encoder:  # else images go through vision.onnx only
        vision[contract.VISION_ENCODER] = matmul_attention(copy.deepcopy(model.vision_encoder)).eval()
    return {
        **vision,
        contract.TOKEN_EMBEDDING: copied.token_embedding.eval(),
        contract.TEXT_DECODER: build_kv_decoder(decoder_parts(copied), cfg.max_context_len).eval(),
    }


def method_inputs(model: MultimodalModel, cfg: TargetConfig) -> dict[str, MethodInputs]:
    """Example inputs with dynamic tile batch, token count and positions (size-1 examples would be specialised)."""
    import torch
    from torch.export import Dim

    size = model.vision.tile_size
    tiles = torch.zeros(min(2, cfg.tile_batch), 3, size, size)
    tile_dim = {0: Dim("tiles", min=1, max=cfg.tile_batch)} if cfg.tile_batch > 1 else None  # batch 1: static
    tokens = torch.zeros(1, 2, dtype=torch.long)
    embeds = torch.zeros(1, 2, model.hidden_size)
    return {
        contract.VISION_ENCODER: MethodInputs((tiles,), (tile_dim,)),
        contract.TOKEN_EMBEDDING: MethodInputs((tokens,), ({1: Dim("tokens", min=1, max=cfg.max_context_len)},)),
        contract.TEXT_DECODER: MethodInputs(
            (embeds, torch.tensor([0], dtype=torch.long)),
            ({1: Dim("positions", min=1, max=max_seq_len(model, cfg))}, None),
        ),
    }


def constant_methods(model: MultimodalModel, cfg: TargetConfig) -> dict[str, Any]:
    """The contract's constants, with ``enable_dynamic_shape`` (``text_decoder`` takes 1 to ``get_max_seq_len`` positions)."""
    return contract_constants(model, cfg, dynamic_shape=True)


def partitioners(method: str, cfg: TargetConfig) -> list[Any]:
    """XNNPACK partitioners for ``method``, chosen by measurement (numbers: ``bench/RESULTS.md``, "Partitioners per method").

    * ``text_decoder``: ExecuTorch's pair (dynamically quantized linears first, then the rest);
      one ``XnnpackPartitioner`` (fewer, bigger delegates) decoded slower.
    * ``vision_encoder``: one ``XnnpackPartitioner`` (it takes the 8da8w linears too): the same
      speed as the pair and faster lowering, since each partitioner costs ExecuTorch a
      re-decomposition of the method.
    * ``token_embedding``: none. XNNPACK has no embedding-lookup kernel, so the lookup (after
      quant fusion an int8 ``embedding_byte``, or an fp32 ``embedding``) runs on ExecuTorch's
      kernels either way; asking the partitioners only costs lowering time.

    Args:
        method (str): the program method being lowered.
        cfg (TargetConfig): target settings (unused by XNNPACK; kept for the common signature).
    """
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import (
        XnnpackDynamicallyQuantizedPartitioner,
        XnnpackPartitioner,
    )

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
    the ``gelu`` node XNNPACK would run as erf-GELU; the cheapest exact form of those measured
    (error and cost: ``bench/RESULTS.md``, "tanh-GELU under XNNPACK"). Exact-GELU nodes are left
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
    and the portable kernel copied the tensor anyway (its cost: ``bench/RESULTS.md``, "Vision
    encoder vs ONNX Runtime"). Shapes are compared symbolically (the tile batch is dynamic), so an expand that only
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


def extra_files(model: MultimodalModel, modules: dict[str, nn.Module], cfg: TargetConfig) -> dict[str, Any]:
    """``vision.onnx`` beside the program when ``cfg.vision_engine`` is onnxruntime (``export/onnx_vision.py``)."""
    del modules  # made from a fresh copy of the float tower: these are quantized in place by now
    return onnx_vision.vision_files(model, cfg, prepare=matmul_attention)


BACKEND = ExportBackend(
    name="cpu",
    prepare=prepare,
    method_inputs=method_inputs,
    partitioners=partitioners,
    constant_methods=constant_methods,
    edge_passes=edge_passes,
    check=check,
    manifest_additions=onnx_vision.manifest_additions,
    extra_files=extra_files,
)
"""The ``cpu`` target: XNNPACK with torchao quantization and dynamic shapes (and ``vision.onnx`` on request)."""
