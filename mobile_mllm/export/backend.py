"""The seam between the export stage driver and a target: :class:`ExportBackend`, one recipe per target.

:func:`~mobile_mllm.export.program.export_program` runs the same stages for every target
(load -> prepare -> quantize -> export -> lower -> serialize -> verify -> write) and asks the
backend for everything target-specific. A backend is a frozen dataclass of plain functions
(no inheritance; a test defines one in a few dozen lines), registered by name in
``backends/__init__.py::BACKENDS``:

* ``prepare(model, cfg) -> {method: module}``: the modules the program's methods are exported
  from, in method order. Their names are the program's methods: XNNPACK returns the contract's
  three (the decoder rebuilt from the family's parts over ExecuTorch's KV-cache custom ops); a
  static-shape NPU may return a 128-token prompt method and a 1-token generate method with the
  KV cache as explicit inputs and outputs.
* ``method_inputs(model, cfg) -> {method: MethodInputs}``: example inputs and dynamic shapes
  (``None`` everywhere for a static-shape target).
* ``quantize(modules, quant, inputs) -> (modules, QuantReport)``: torchao ``quantize_`` in
  place (the default, :func:`torchao_quantize`), or a PT2E flow (export for training, a
  quantizer's ``prepare_pt2e``, calibration on ``inputs``, ``convert_pt2e``) returning the
  converted graph modules.
* ``partitioners(method, cfg)`` and ``edge_passes(method, cfg)``: lowering, per method.
* ``constant_methods(model, cfg) -> {name: value}``: the program's metadata (names and meanings
  in ``contract.py``); the manifest's ``max_seq_len``/``max_context_len`` are read from it.
* ``manifest_additions(model, cfg) -> {key: value}``: extra manifest keys (each must be in the
  manifest schema, ``manifest_schema.py``, which the writer validates against).
* ``extra_files(model, modules, cfg) -> {file name: writer(path)}``: files beside ``model.pte``
  (e.g. an ONNX vision model); the driver writes them to temporary names and renames them with
  the rest, so a failed export leaves nothing half-written.
* ``check(cfg)``: raise before any slow stage when the target cannot work here (a missing SDK).
* ``to_executorch(edge)``: memory planning and emission (default :func:`to_executorch_program`).
* ``export(job, verifier=, on_progress=) -> ExportResult``: optional; a target whose products
  are not one ``model.pte`` (MediaTek's static-shape shards and their host simulation) runs its
  own stages, and the driver hands the whole job to it right after ``check``.

Deliberately not here: which targets exist (``backends/``), the stages themselves
(``program.py``), precision rules (``quant/``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract

if TYPE_CHECKING:
    from torch import nn

    from mobile_mllm.export.config import TargetConfig
    from mobile_mllm.model.adapter import MultimodalModel
    from mobile_mllm.quant.recipe import QuantConfig
    from mobile_mllm.quant.report import QuantReport

__all__ = [
    "ExportBackend",
    "MethodInputs",
    "contract_constants",
    "max_seq_len",
    "to_executorch_program",
    "torchao_quantize",
]


@dataclass(frozen=True)
class MethodInputs:
    """Example inputs of one method and their dynamic dimensions (``torch.export``'s ``dynamic_shapes``).

    Examples should avoid size 1 in a dynamic dimension, which ``torch.export`` specialises.
    """

    args: tuple[Any, ...]
    dynamic_shapes: tuple[Any, ...] | None = None


def _no_check(cfg: TargetConfig) -> None:
    del cfg


def _no_passes(method: str, cfg: TargetConfig) -> list[Any]:
    del method, cfg
    return []


def _no_additions(model: MultimodalModel, cfg: TargetConfig) -> dict[str, Any]:
    del model, cfg
    return {}


def _no_files(
    model: MultimodalModel, modules: Mapping[str, nn.Module], cfg: TargetConfig
) -> dict[str, Callable[[Path], None]]:
    del model, modules, cfg
    return {}


def torchao_quantize(
    modules: dict[str, nn.Module], quant: QuantConfig, inputs: Mapping[str, MethodInputs]
) -> tuple[dict[str, nn.Module], QuantReport]:
    """Quantize the contract methods in place with torchao, by the precision recipe (``quant/``).

    Args:
        modules (dict[str, nn.Module]): method name -> float module (changed in place).
        quant (QuantConfig): the precision recipe's settings.
        inputs (Mapping[str, MethodInputs]): unused (torchao's schemes need no calibration).

    Returns:
        tuple: the same modules, and the per-layer report.
    """
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import build_recipe

    del inputs
    recipe = build_recipe(
        quant,
        vision_method=contract.VISION_ENCODER,
        decoder_method=contract.TEXT_DECODER,
        embedding_method=contract.TOKEN_EMBEDDING,
    )
    return modules, quantize_modules(modules, recipe)


def max_seq_len(model: MultimodalModel, cfg: TargetConfig) -> int:
    """The most positions one ``text_decoder`` call takes: a prefill chunk or one tile's image tokens.

    ExecuTorch's ``get_max_seq_len`` (see ``contract.py``); the stock runner prefills a whole
    image's run of embeddings per call, our runtime one chunk or one tile.
    """
    return max(cfg.prefill_chunk, model.vision.tokens_per_tile)


def contract_constants(model: MultimodalModel, cfg: TargetConfig, *, dynamic_shape: bool) -> dict[str, Any]:
    """The constant methods of a program with the contract's three methods and a KV cache inside.

    Args:
        model (MultimodalModel): the loaded model (ids, vocabulary).
        cfg (TargetConfig): the static sizes.
        dynamic_shape (bool): whether ``text_decoder`` takes any length up to ``get_max_seq_len``
            (``enable_dynamic_shape``) rather than exactly that many positions.
    """
    constants: dict[str, Any] = {
        contract.GET_MAX_SEQ_LEN: max_seq_len(model, cfg),
        contract.GET_MAX_CONTEXT_LEN: cfg.max_context_len,
        contract.GET_EOS_IDS: list(model.eos_ids),
        contract.GET_VOCAB_SIZE: model.vocab_size,
        contract.USE_KV_CACHE: True,
        contract.ENABLE_DYNAMIC_SHAPE: dynamic_shape,
    }
    if model.bos_id is not None:
        constants[contract.GET_BOS_ID] = model.bos_id
    return constants


def to_executorch_program(edge: Any) -> Any:
    """Memory-plan and serialize a lowered program (``.write_to_file`` on the result writes the ``.pte``).

    Dynamic shapes are planned for their upper bounds; graph inputs are not allocated by the
    program (the caller's tensors are used), and quantize/dequantize pairs are fused and
    constants folded.
    """
    import warnings

    from executorch.exir import ExecutorchBackendConfig
    from executorch.exir.passes import MemoryPlanningPass
    from executorch.exir.passes.sym_shape_eval_pass import ConstraintBasedSymShapeEvalPass

    with warnings.catch_warnings():
        # The KV cache is the only mutated buffer and starts empty by design (the runtime writes
        # each position before reading it), so the emitter's notice that mutated buffers are
        # serialized without their initial values says nothing to the user.
        warnings.filterwarnings("ignore", message="Mutation on a buffer in the model is detected")
        return edge.to_executorch(
            ExecutorchBackendConfig(
                extract_delegate_segments=True,
                do_quant_fusion_and_const_prop=True,
                memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False),
                sym_shape_eval_pass=ConstraintBasedSymShapeEvalPass(),
            )
        )


@dataclass(frozen=True)
class ExportBackend:
    """One target's whole export recipe (see the module docstring for each function's contract).

    Attributes:
        name (str): the target name (``--target``).
        prepare (Callable): ``(model, cfg) -> {method: nn.Module}``, in method order.
        method_inputs (Callable): ``(model, cfg) -> {method: MethodInputs}``.
        partitioners (Callable): ``(method, cfg) -> list`` of ExecuTorch partitioners.
        constant_methods (Callable): ``(model, cfg) -> {name: value}``.
        quantize (Callable): ``(modules, quant, inputs) -> (modules, QuantReport)``. Default torchao.
        edge_passes (Callable): ``(method, cfg) -> list`` of graph passes before partitioning. Default none.
        manifest_additions (Callable): ``(model, cfg) -> {key: value}``. Default none.
        extra_files (Callable): ``(model, modules, cfg) -> {file name: writer(path)}``. Default none.
        check (Callable): ``(cfg) -> None``, raising when the target cannot work here. Default no check.
        to_executorch (Callable): ``(edge program manager) -> ExecutorchProgramManager``. Default
            :func:`to_executorch_program`.
        export (Callable | None): ``(job, verifier=, on_progress=) -> ExportResult``, the whole
            export of a target that does not make one ``model.pte``. Default None: the driver's stages.
    """

    name: str
    prepare: Callable[[MultimodalModel, TargetConfig], dict[str, nn.Module]]
    method_inputs: Callable[[MultimodalModel, TargetConfig], dict[str, MethodInputs]]
    partitioners: Callable[[str, TargetConfig], list[Any]]
    constant_methods: Callable[[MultimodalModel, TargetConfig], dict[str, Any]]
    quantize: Callable[..., tuple[dict[str, nn.Module], QuantReport]] = torchao_quantize
    edge_passes: Callable[[str, TargetConfig], list[Any]] = _no_passes
    manifest_additions: Callable[[MultimodalModel, TargetConfig], dict[str, Any]] = _no_additions
    extra_files: Callable[..., dict[str, Callable[[Path], None]]] = _no_files
    check: Callable[[TargetConfig], None] = _no_check
    to_executorch: Callable[[Any], Any] = field(default=to_executorch_program)
    export: Callable[..., Any] | None = None
