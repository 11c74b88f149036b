"""Model directory -> one ExecuTorch ``.pte`` with the multimodal runner contract's methods.

Stages (each reported through ``on_progress`` and named in any :class:`ExportError`): load the
eager model; prepare the export modules (copies of the eager ``vision_encoder`` and
``token_embedding``, and :class:`~mobile_mllm.export.decoder.KVCacheDecoder` over a copy of the
decoder's weights); quantize them with the recipe; ``torch.export`` each method with its
dynamic dimension (tile batch, token count); lower with the target's partitioners; serialize;
optionally verify (a callable the caller passes in, so this module needs nothing from
``runtime``); write ``model.pte``, ``tokenizer.json``, ``manifest.json`` and
``export_report.json`` to temporary names and rename them only when everything succeeded.

Deliberately not here: precision rules (``quant/``), backend specifics (``backends/``), the
manifest's schema (``manifest.py``), loading a program (``runtime/pte.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError, ExportError, MobileMLLMError
from mobile_mllm.quant.recipe import QuantConfig

if TYPE_CHECKING:
    from torch import nn

    from mobile_mllm.model.adapter import MultimodalModel
    from mobile_mllm.quant.report import QuantReport

logger = logging.getLogger(__name__)

__all__ = [
    "ExportArtifacts",
    "ExportJob",
    "ExportResult",
    "STAGES",
    "Target",
    "TargetConfig",
    "export_program",
    "lower_methods",
    "lower_one_method",
    "matmul_attention",
    "to_executorch_program",
]

STAGES: tuple[str, ...] = ("load", "prepare", "quantize", "export", "lower", "serialize", "verify", "write")
"""The stages ``on_progress`` reports, in order."""


class Target(str, enum.Enum):
    """Where the program runs (a key of ``backends.BACKENDS``)."""

    CPU = "cpu"
    MEDIATEK = "mediatek"


@dataclass(frozen=True)
class TargetConfig:
    """Static sizes and the backend of the program (the ``[target]`` table of an export recipe)."""

    target: Target = Target.CPU
    """Backend: cpu (XNNPACK) or mediatek (needs the NeuroPilot SDK)."""
    max_context: int = 2048
    """KV-cache positions (prompt, image tokens and answers together)."""
    prefill_chunk: int = 128
    """Positions per text_decoder call while prefilling (the program also accepts one tile's tokens at once)."""
    tile_batch: int = 4
    """Largest number of tiles per vision_encoder call."""
    max_tiles: int | None = None
    """Largest number of local tiles per image written to the manifest (None: the model's)."""

    def __post_init__(self) -> None:
        for name in ("max_context", "prefill_chunk", "tile_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"target.{name} must be >= 1, got {getattr(self, name)}")
        if self.prefill_chunk > self.max_context:
            raise ConfigError(
                f"target.prefill_chunk ({self.prefill_chunk}) must not exceed target.max_context ({self.max_context})"
            )
        if self.max_tiles is not None and self.max_tiles < 1:
            raise ConfigError(f"target.max_tiles must be >= 1, got {self.max_tiles}")


@dataclass(frozen=True)
class ExportJob:
    """One export: which model, which precision, which target, where to."""

    model: str = ""
    """Model directory (or builtin:NAME)."""
    output: str = ""
    """Output directory (created; existing program files in it are replaced on success)."""
    quant: QuantConfig = field(default_factory=QuantConfig)
    """Precision recipe."""
    target: TargetConfig = field(default_factory=TargetConfig)
    """Backend and static sizes."""
    verify: bool = True
    """Load the program on the host and compare it with the eager model."""
    verify_tokens: int = 16
    """Greedy tokens compared with the float model during verification."""
    seed: int = 0
    """Seed of the random verification inputs."""

    def __post_init__(self) -> None:
        if self.verify_tokens < 1:
            raise ConfigError(f"verify_tokens must be >= 1, got {self.verify_tokens}")


@dataclass
class ExportArtifacts:
    """What a verifier gets: the program on disk and the eager models it must match."""

    directory: Path
    """Directory holding the (temporary-named) program, tokenizer and manifest."""
    program_file: Path
    manifest: dict[str, Any]
    model: MultimodalModel
    """The float eager model."""
    quantized: dict[str, nn.Module]
    """Method name -> the quantized eager module that was exported."""
    job: ExportJob


@dataclass(frozen=True)
class ExportResult:
    """Paths of what was written, plus the report (also in ``export_report.json``)."""

    output: Path
    program: Path
    manifest: Path
    report: dict[str, Any]


ProgressFn = Callable[[str, str], None]
"""``on_progress(stage, detail)``: called when a stage starts."""


class _Stage:
    """Context that reports a stage and wraps any failure into an ExportError naming it."""

    def __init__(self, stage: str, module: str, on_progress: ProgressFn | None, timings: dict[str, float]) -> None:
        self.stage, self.module, self.on_progress, self.timings = stage, module, on_progress, timings

    def __enter__(self) -> _Stage:
        if self.on_progress is not None:
            self.on_progress(self.stage, self.module)
        logger.info("%s %s", self.stage, self.module)
        self.start = time.perf_counter()
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: Any) -> bool:
        key = f"{self.stage}:{self.module}" if self.module else self.stage
        self.timings[key] = round(time.perf_counter() - self.start, 3)
        if exc is None or isinstance(exc, MobileMLLMError) or not isinstance(exc, Exception):
            return False
        raise ExportError(f"stage {self.stage}, module {self.module or '-'}: {type(exc).__name__}: {exc}") from exc


def matmul_attention(module: nn.Module) -> nn.Module:
    """Switch the transformers models inside ``module`` from SDPA to their eager (matmul + softmax) attention, in place.

    Why: ``torch.export`` keeps ``scaled_dot_product_attention``, and ExecuTorch then decomposes it
    through ``aten._safe_softmax``, whose guard for fully masked rows (``eq``/``logical_not``/
    ``any``/``where``/``full_like`` over the ``[B, heads, N, N]`` scores) XNNPACK does not take:
    those ops ran on portable kernels and were ~60 % of a mid-preset tile (``bench/RESULTS.md``,
    "Vision encoder vs ONNX Runtime"). The eager formulation is the same function without a mask
    (the vision tower has none) and lowers to XNNPACK's batch matmul and softmax. The decoder is
    not affected: its export replaces attention with ``llama.custom_sdpa``.

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


def _modules_for_export(model: MultimodalModel, max_context: int) -> dict[str, nn.Module]:
    from mobile_mllm.export.decoder import build_kv_decoder

    decoder = build_kv_decoder(copy.deepcopy(model.text_decoder), max_context)
    return {
        contract.VISION_ENCODER: matmul_attention(copy.deepcopy(model.vision_encoder)).eval(),
        contract.TOKEN_EMBEDDING: copy.deepcopy(model.token_embedding).eval(),
        contract.TEXT_DECODER: decoder.eval(),
    }


def _example_inputs(model: MultimodalModel, cfg: TargetConfig) -> dict[str, tuple[tuple[Any, ...], Any]]:
    """Example inputs and dynamic shapes per method (examples avoid size 1, which export specialises)."""
    import torch
    from torch.export import Dim

    size = model.vision.tile_size
    max_chunk = max(cfg.prefill_chunk, model.vision.tokens_per_tile)
    tiles = torch.zeros(min(2, cfg.tile_batch), 3, size, size)
    tile_dim = {0: Dim("tiles", min=1, max=cfg.tile_batch)} if cfg.tile_batch > 1 else None  # batch 1: static
    tokens = torch.zeros(1, 2, dtype=torch.long)
    embeds = torch.zeros(1, 2, model.hidden_size)
    return {
        contract.VISION_ENCODER: ((tiles,), (tile_dim,)),
        contract.TOKEN_EMBEDDING: ((tokens,), ({1: Dim("tokens", min=1, max=cfg.max_context)},)),
        contract.TEXT_DECODER: (
            (embeds, torch.tensor([0], dtype=torch.long)),
            ({1: Dim("positions", min=1, max=max_chunk)}, None),
        ),
    }


def _constant_methods(model: MultimodalModel, cfg: TargetConfig, max_chunk: int) -> dict[str, Any]:
    """The runner's metadata: ``get_max_seq_len`` is the longest text_decoder call, as ExecuTorch's llama export sets it."""
    constants: dict[str, Any] = {
        contract.GET_MAX_SEQ_LEN: max_chunk,
        contract.GET_MAX_CONTEXT_LEN: cfg.max_context,
        contract.GET_EOS_IDS: list(model.eos_ids),
        contract.GET_VOCAB_SIZE: model.vocab_size,
        contract.USE_KV_CACHE: True,
        contract.ENABLE_DYNAMIC_SHAPE: True,
    }
    if model.bos_id is not None:
        constants[contract.GET_BOS_ID] = model.bos_id
    return constants


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _module_sizes(modules: dict[str, nn.Module], report: QuantReport) -> dict[str, dict[str, int]]:
    """Per method: parameters and bytes of weights as stored (quantized layers at their bit width)."""
    from torch import nn

    from mobile_mllm.quant.report import layer_name

    sizes: dict[str, dict[str, int]] = {}
    quantized = {layer.name: layer.weight_bytes for layer in report.layers}
    for method, module in modules.items():
        num_params, stored = 0, 0
        for path, sub in module.named_modules():
            for pname, p in sub.named_parameters(recurse=False):
                num_params += p.numel()
                name = layer_name(method, path)
                if pname == "weight" and isinstance(sub, (nn.Linear, nn.Embedding)) and name in quantized:
                    stored += quantized[name]
                else:
                    stored += p.numel() * 4
        sizes[method] = {"num_parameters": num_params, "weight_bytes": stored}
    return sizes


def export_program(
    job: ExportJob,
    *,
    verifier: Callable[[ExportArtifacts], dict[str, Any]] | None = None,
    on_progress: ProgressFn | None = None,
) -> ExportResult:
    """Export a model directory to ``job.output`` (program, tokenizer, manifest, report).

    Args:
        job (ExportJob): the resolved settings.
        verifier (Callable | None): called with the artifacts after serialization when
            ``job.verify``; returns the verification section of the report and raises
            :class:`~mobile_mllm.errors.VerificationError` on a failed check (nothing is written
            then). Default None: no verification (``runtime.parity.verify_export`` is the usual one).
        on_progress (ProgressFn | None): ``(stage, module)`` when each stage starts.

    Returns:
        ExportResult: paths and the report.

    Raises:
        ExportError: naming the stage and the module (``VerificationError`` for a failed check).
        UnsupportedModelError: the model directory cannot be handled (unknown family, missing
            tokenizer, unsupported decoder layers).
        ConfigError: invalid settings.
    """
    import torch

    from mobile_mllm.config import to_dict
    from mobile_mllm.export.backends import get_backend
    from mobile_mllm.export.manifest import build_manifest
    from mobile_mllm.model import load_model
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import build_recipe

    if not job.model:
        raise ConfigError("export: no model directory given")
    if not job.output:
        raise ConfigError("export: no output directory given (-o OUT)")
    cfg = job.target
    backend = get_backend(cfg.target.value)
    backend.check(cfg)
    out = Path(job.output)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    torch.manual_seed(job.seed)

    with _Stage("load", job.model, on_progress, timings):
        model = load_model(job.model, dtype=torch.float32, max_seq_len=cfg.max_context)
    if cfg.max_tiles is not None:
        model.vision = dataclasses.replace(model.vision, max_tiles=cfg.max_tiles)
    max_chunk = max(cfg.prefill_chunk, model.vision.tokens_per_tile)

    with _Stage("prepare", contract.TEXT_DECODER, on_progress, timings):
        modules = _modules_for_export(model, cfg.max_context)

    with _Stage("quantize", "all", on_progress, timings):
        recipe = build_recipe(
            job.quant,
            vision_method=contract.VISION_ENCODER,
            decoder_method=contract.TEXT_DECODER,
            embedding_method=contract.TOKEN_EMBEDDING,
        )
        report = quantize_modules(modules, recipe)
    unexpected = report.unexpected_fp32()
    if unexpected:
        names = ", ".join(layer.name for layer in unexpected[:5])
        raise ExportError(
            f"stage quantize, module {unexpected[0].method}: {len(unexpected)} layer(s) left in fp32 "
            f"although the recipe asked for quantization: {names}"
        )
    for fb in report.fallbacks():
        logger.info("fallback %s: %s", fb.name, fb.reason)

    exported = {}
    for method in contract.MODEL_METHODS:
        with _Stage("export", method, on_progress, timings):
            exported[method] = _export_method(model, method, modules[method], cfg)

    with _Stage("lower", ", ".join(contract.MODEL_METHODS), on_progress, timings):
        edge = _lower_with_backend(exported, backend, cfg, _constant_methods(model, cfg, max_chunk))
        delegated = _delegation_counts(edge, list(exported))
    with _Stage("serialize", "", on_progress, timings):
        program = to_executorch_program(edge)
        out.mkdir(parents=True, exist_ok=True)
        tmp = {name: out / f".{name}.partial" for name in (contract.PROGRAM_FILE, contract.TOKENIZER_FILE,
                                                            contract.MANIFEST_FILE, contract.EXPORT_REPORT_FILE)}
        with tmp[contract.PROGRAM_FILE].open("wb") as fh:
            program.write_to_file(fh)
        model.tokenizer.save(str(tmp[contract.TOKENIZER_FILE]))
        size = tmp[contract.PROGRAM_FILE].stat().st_size
        program_info = {
            "file": contract.PROGRAM_FILE,
            "size_bytes": size,
            "sha256": _sha256(tmp[contract.PROGRAM_FILE]),
            "methods": list(contract.MODEL_METHODS),
            "constant_methods": _constant_methods(model, cfg, max_chunk),
        }
        manifest = build_manifest(
            model=model,
            job=job,
            max_chunk=max_chunk,
            precision={
                "modules": report.module_precision(),
                "by_method": report.by_method(),
                "group_size": recipe.group_size,
            },
            program=program_info,
        )
        tmp[contract.MANIFEST_FILE].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    sizes = _module_sizes(modules, report)
    num_params = sum(s["num_parameters"] for s in sizes.values())
    full_report: dict[str, Any] = {
        "job": to_dict(job),
        "program": program_info,
        "bytes_per_parameter": round(size / max(num_params, 1), 4),
        "modules": sizes,
        "delegated": delegated,
        "quantization": report.to_dict(),
        "timings_s": timings,
    }
    try:
        if job.verify and verifier is not None:
            artifacts = ExportArtifacts(
                directory=out, program_file=tmp[contract.PROGRAM_FILE], manifest=manifest, model=model,
                quantized=modules, job=job,
            )
            with _Stage("verify", "all", on_progress, timings):
                full_report["verification"] = verifier(artifacts)
        else:
            full_report["verification"] = None
        full_report["export_time_s"] = round(time.perf_counter() - t_start, 3)
        full_report["timings_s"] = timings
        with _Stage("write", str(out), on_progress, timings):
            tmp[contract.EXPORT_REPORT_FILE].write_text(json.dumps(full_report, indent=2) + "\n", encoding="utf-8")
            for name in (contract.PROGRAM_FILE, contract.TOKENIZER_FILE, contract.EXPORT_REPORT_FILE,
                         contract.MANIFEST_FILE):
                os.replace(tmp[name], out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    logger.info(
        "wrote %s: %.2f MB, %.3f bytes/parameter, %.1f s",
        out / contract.PROGRAM_FILE, size / 1e6, full_report["bytes_per_parameter"], full_report["export_time_s"],
    )
    return ExportResult(
        output=out, program=out / contract.PROGRAM_FILE, manifest=out / contract.MANIFEST_FILE, report=full_report
    )


def lower_methods(
    exported: dict[str, Any],
    partitioners: dict[str, list[Any]],
    constant_methods: dict[str, Any],
    *,
    edge_passes: dict[str, list[Any]] | None = None,
) -> Any:
    """Lower ``torch.export``-ed methods with their partitioners into one edge program manager.

    Public so that ``bench/`` lowers exactly as :func:`export_program` does (one method alone
    when iterating on speed).

    Args:
        exported (dict[str, Any]): method name -> ``ExportedProgram``.
        partitioners (dict[str, list[Any]]): method name -> the backend's partitioners.
        constant_methods (dict[str, Any]): metadata methods (name -> value).
        edge_passes (dict[str, list[Any]] | None): method name -> the backend's graph passes, run
            on the edge program before partitioning (``backend.edge_passes``). Default None: none.

    Returns:
        Any: ExecuTorch's ``EdgeProgramManager``.
    """
    from executorch.exir import EdgeCompileConfig, to_edge_transform_and_lower

    return to_edge_transform_and_lower(
        exported,
        transform_passes=edge_passes if edge_passes and any(edge_passes.values()) else None,
        partitioner=partitioners,
        constant_methods=constant_methods,
        compile_config=EdgeCompileConfig(_check_ir_validity=False),
    )


def lower_one_method(
    model: MultimodalModel, method: str, module: nn.Module, cfg: TargetConfig, *, partitioners: list[Any] | None = None
) -> Any:
    """``torch.export`` one (already quantized) method and lower it exactly as :func:`export_program` does.

    For ``bench/``: iterating on one method's speed without paying for the other methods' lowering.

    Args:
        model (MultimodalModel): the loaded model (example inputs and dynamic shapes come from it).
        method (str): a name of ``contract.MODEL_METHODS``.
        module (nn.Module): that method's module (e.g. quantized by ``quant.apply.quantize_modules``).
        cfg (TargetConfig): target, tile batch, context and chunk.
        partitioners (list[Any] | None): override of the backend's partitioners (experiments).
            Default None: the backend's.

    Returns:
        Any: ExecuTorch's ``EdgeProgramManager`` with the one method (``to_executorch_program`` serializes it).
    """
    from mobile_mllm.export.backends import get_backend

    exported = {method: _export_method(model, method, module, cfg)}
    return _lower_with_backend(exported, get_backend(cfg.target.value), cfg, {}, partitioners=partitioners)


def _export_method(model: MultimodalModel, method: str, module: nn.Module, cfg: TargetConfig) -> Any:
    """``torch.export`` of one method on its example inputs, with its dynamic dimensions."""
    import torch

    args, dynamic = _example_inputs(model, cfg)[method]
    with torch.no_grad():
        return torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)


def _lower_with_backend(
    exported: dict[str, Any], backend: Any, cfg: TargetConfig, constant_methods: dict[str, Any], *,
    partitioners: list[Any] | None = None,
) -> Any:
    """:func:`lower_methods` with the backend's partitioners (or ``partitioners`` for every method) and edge passes."""
    return lower_methods(
        exported,
        {m: partitioners if partitioners is not None else backend.partitioners(m, cfg) for m in exported},
        constant_methods,
        edge_passes={m: backend.edge_passes(m, cfg) for m in exported},
    )


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


def _delegation_counts(edge: Any, methods: list[str]) -> dict[str, dict[str, int]]:
    """Per method: delegate calls and the ops left outside any delegate (what runs on portable kernels)."""
    out: dict[str, dict[str, int]] = {}
    for method in methods:
        gm = edge.exported_program(method).graph_module
        delegates = sum(1 for n in gm.graph.nodes if n.op == "call_function" and "executorch_call_delegate" in str(n.target))
        others = sum(
            1 for n in gm.graph.nodes
            if n.op == "call_function" and "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target)
        )
        out[method] = {"delegate_calls": delegates, "non_delegated_ops": others}
        logger.info("%s: %d delegate calls, %d ops outside delegates", method, delegates, others)
    return out
