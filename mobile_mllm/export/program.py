"""Model directory -> one ExecuTorch ``.pte`` (+ tokenizer, manifest, report): the stage driver.

:func:`export_program` runs the same stages for every target, each reported through
``on_progress`` and named in any :class:`ExportError`: load the eager model; prepare the export
modules, quantize them, ``torch.export`` each method, lower with the partitioners and edge
passes, serialize (all five by the target's :class:`~mobile_mllm.export.backend.ExportBackend`,
looked up by name in ``backends/``); optionally verify (a callable the caller passes in, so
this module needs nothing from ``runtime``); write ``model.pte``, ``tokenizer.json``,
``manifest.json``, ``export_report.json`` and the backend's extra files to temporary names and
rename them only when everything succeeded.

Deliberately not here: anything one target does differently (``backend.py``, ``backends/``),
precision rules (``quant/``), the manifest's schema (``manifest.py``), loading a program
(``runtime/pte.py``).
"""

from __future__ import annotations

import dataclasses
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
from mobile_mllm.export.backend import to_executorch_program
from mobile_mllm.export.config import ExportJob, Target, TargetConfig

if TYPE_CHECKING:
    from torch import nn

    from mobile_mllm.export.backend import ExportBackend, MethodInputs
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
    "to_executorch_program",
]

STAGES: tuple[str, ...] = ("load", "prepare", "quantize", "export", "lower", "serialize", "verify", "write")
"""The stages ``on_progress`` reports, in order (``write``: the report and the atomic renames)."""


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
    extra_files: dict[str, Path] = field(default_factory=dict)
    """The backend's extra files (final name -> temporary path), e.g. ``vision.onnx``."""


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


def _check_quantized(report: QuantReport) -> None:
    """Refuse a program in which the recipe's quantization silently did not happen."""
    unexpected = report.unexpected_fp32()
    if unexpected:
        names = ", ".join(layer.name for layer in unexpected[:5])
        raise ExportError(
            f"stage quantize, module {unexpected[0].method}: {len(unexpected)} layer(s) left in fp32 "
            f"although the recipe asked for quantization: {names}"
        )
    for fb in report.fallbacks():
        logger.info("fallback %s: %s", fb.name, fb.reason)


def _load(job: ExportJob) -> MultimodalModel:
    """The float eager model, with the job's grid limits (``vision.config.with_grid_limits``) and grid policy applied."""
    import torch

    from mobile_mllm.model import load_model
    from mobile_mllm.vision.config import with_grid_limits

    cfg = job.target
    model = load_model(job.model, dtype=torch.float32, max_context_len=cfg.max_context_len)
    model.vision = with_grid_limits(model.vision, max_tiles=cfg.max_tiles, max_side=cfg.max_side)
    if cfg.grid_policy is not None:
        model.vision = dataclasses.replace(model.vision, policy=cfg.grid_policy)
    return model


def _serialize(
    program: Any,
    tmp: dict[str, Path],
    extra: dict[str, Callable[[Path], None]],
    *,
    model: MultimodalModel,
    job: ExportJob,
    methods: list[str],
    constants: dict[str, Any],
    precision: dict[str, Any],
    additions: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Write the program, tokenizer, the backend's extra files and the manifest to their temporary names.

    Returns:
        tuple: the manifest's ``program`` section, and the manifest.
    """
    from mobile_mllm.export.manifest import build_manifest

    with tmp[contract.PROGRAM_FILE].open("wb") as fh:
        program.write_to_file(fh)
    model.tokenizer.save(str(tmp[contract.TOKENIZER_FILE]))
    for name, write in extra.items():
        write(tmp[name])
    program_info = {
        contract.M_PROGRAM_FILE: contract.PROGRAM_FILE,
        contract.M_PROGRAM_SIZE_BYTES: tmp[contract.PROGRAM_FILE].stat().st_size,
        contract.M_PROGRAM_SHA256: _sha256(tmp[contract.PROGRAM_FILE]),
        contract.M_PROGRAM_METHODS: methods,
        contract.M_PROGRAM_CONSTANT_METHODS: constants,
    }
    manifest = build_manifest(
        model=model, job=job, constants=constants, precision=precision, program=program_info, additions=additions
    )
    tmp[contract.MANIFEST_FILE].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return program_info, manifest


def export_program(
    job: ExportJob,
    *,
    verifier: Callable[[ExportArtifacts], dict[str, Any]] | None = None,
    on_progress: ProgressFn | None = None,
    backend: ExportBackend | None = None,
) -> ExportResult:
    """Export a model directory to ``job.output`` (program, tokenizer, manifest, report).

    Args:
        job (ExportJob): the resolved settings.
        verifier (Callable | None): called with the artifacts after serialization when
            ``job.verify``; returns the verification section of the report and raises
            :class:`~mobile_mllm.errors.VerificationError` on a failed check (nothing is written
            then). Default None: no verification (``runtime.parity.verify_export`` is the usual one).
        on_progress (ProgressFn | None): ``(stage, module)`` when each stage starts.
        backend (ExportBackend | None): the recipe to export with instead of the registered
            backend of ``job.target.target`` (experiments, tests). Default None: the registered one.

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

    if not job.model:
        raise ConfigError("export: no model directory given")
    if not job.output:
        raise ConfigError("export: no output directory given (-o OUT)")
    cfg = job.target
    backend = backend if backend is not None else get_backend(cfg.target.value)
    backend.check(cfg)
    if cfg.calibration:  # a bad folder fails now, not after minutes of lowering (it is read when calibrating)
        from mobile_mllm.vision import image_files

        image_files(cfg.calibration, what="target.calibration")
    if backend.export is not None:  # a target with its own products (e.g. MediaTek's static-shape shards)
        return backend.export(job, verifier=verifier, on_progress=on_progress)
    out = Path(job.output)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    torch.manual_seed(job.seed)

    with _Stage("load", job.model, on_progress, timings):
        model = _load(job)
    with _Stage("prepare", backend.name, on_progress, timings):
        modules = backend.prepare(model, cfg)
        inputs = backend.method_inputs(model, cfg)
    methods = list(modules)
    with _Stage("quantize", "all", on_progress, timings):
        modules, report = backend.quantize(modules, job.quant, inputs)
    _check_quantized(report)

    exported = {}
    for method in methods:
        with _Stage("export", method, on_progress, timings):
            exported[method] = _export_method(modules[method], inputs[method])

    constants = backend.constant_methods(model, cfg)
    with _Stage("lower", ", ".join(methods), on_progress, timings):
        edge = _lower_with_backend(exported, backend, cfg, constants)
        delegated = _delegation_counts(edge, methods)
    out.mkdir(parents=True, exist_ok=True)
    extra = backend.extra_files(model, modules, cfg)
    names = (contract.PROGRAM_FILE, contract.TOKENIZER_FILE, contract.MANIFEST_FILE, contract.EXPORT_REPORT_FILE)
    tmp = {name: out / f".{name}.partial" for name in (*names, *extra)}
    try:
        with _Stage("serialize", "", on_progress, timings):
            program_info, manifest = _serialize(
                backend.to_executorch(edge), tmp, extra, model=model, job=job, methods=methods, constants=constants,
                precision={
                    contract.M_PRECISION_MODULES: report.module_precision(),
                    contract.M_PRECISION_BY_METHOD: report.by_method(),
                    contract.M_PRECISION_GROUP_SIZE: job.quant.group_size,
                },
                additions=backend.manifest_additions(model, cfg),
            )
        sizes = _module_sizes(modules, report)
        full_report: dict[str, Any] = {
            "job": to_dict(job),
            "backend": backend.name,
            "program": program_info,
            "bytes_per_parameter": round(
                program_info[contract.M_PROGRAM_SIZE_BYTES] / max(sum(s["num_parameters"] for s in sizes.values()), 1), 4
            ),
            "modules": sizes,
            "delegated": delegated,
            "quantization": report.to_dict(),
            "verification": None,
        }
        if job.verify and verifier is not None:
            artifacts = ExportArtifacts(
                directory=out, program_file=tmp[contract.PROGRAM_FILE], manifest=manifest, model=model,
                quantized=modules, job=job, extra_files={name: tmp[name] for name in extra},
            )
            with _Stage("verify", "all", on_progress, timings):
                full_report["verification"] = verifier(artifacts)
        full_report["export_time_s"] = round(time.perf_counter() - t_start, 3)
        full_report["timings_s"] = timings
        with _Stage("write", str(out), on_progress, timings):
            tmp[contract.EXPORT_REPORT_FILE].write_text(json.dumps(full_report, indent=2) + "\n", encoding="utf-8")
            # the manifest last: a directory with a manifest is a complete export
            for name in sorted(tmp, key=lambda n: n == contract.MANIFEST_FILE):
                os.replace(tmp[name], out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    logger.info(
        "wrote %s: %.2f MB, %.3f bytes/parameter, %.1f s",
        out / contract.PROGRAM_FILE, program_info[contract.M_PROGRAM_SIZE_BYTES] / 1e6, full_report["bytes_per_parameter"],
        full_report["export_time_s"],
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
        model (MultimodalModel): the loaded model (the backend's example inputs come from it).
        method (str): a method the target's backend prepares (e.g. ``contract.TEXT_DECODER``).
        module (nn.Module): that method's module (e.g. quantized by ``quant.apply.quantize_modules``).
        cfg (TargetConfig): target, tile batch, context and chunk.
        partitioners (list[Any] | None): override of the backend's partitioners (experiments).
            Default None: the backend's.

    Returns:
        Any: ExecuTorch's ``EdgeProgramManager`` with the one method (``to_executorch_program`` serializes it).
    """
    from mobile_mllm.export.backends import get_backend

    backend = get_backend(cfg.target.value)
    exported = {method: _export_method(module, backend.method_inputs(model, cfg)[method])}
    return _lower_with_backend(exported, backend, cfg, {}, partitioners=partitioners)


def _export_method(module: nn.Module, inputs: MethodInputs) -> Any:
    """``torch.export`` of one method on its example inputs, with its dynamic dimensions."""
    import torch

    with torch.no_grad():
        return torch.export.export(module, inputs.args, dynamic_shapes=inputs.dynamic_shapes, strict=False)


def _lower_with_backend(
    exported: dict[str, Any], backend: ExportBackend, cfg: TargetConfig, constant_methods: dict[str, Any], *,
    partitioners: list[Any] | None = None,
) -> Any:
    """:func:`lower_methods` with the backend's partitioners (or ``partitioners`` for every method) and edge passes."""
    return lower_methods(
        exported,
        {m: partitioners if partitioners is not None else backend.partitioners(m, cfg) for m in exported},
        constant_methods,
        edge_passes={m: backend.edge_passes(m, cfg) for m in exported},
    )


def _delegation_counts(edge: Any, methods: list[str]) -> dict[str, dict[str, Any]]:
    """Per method: delegate calls and the ops left outside any delegate (what runs on portable kernels), by name."""
    out: dict[str, dict[str, Any]] = {}
    for method in methods:
        gm = edge.exported_program(method).graph_module
        delegates = sum(1 for n in gm.graph.nodes if n.op == "call_function" and "executorch_call_delegate" in str(n.target))
        by_op: dict[str, int] = {}
        for n in gm.graph.nodes:
            if n.op == "call_function" and "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target):
                name = getattr(n.target, "__name__", str(n.target))
                by_op[name] = by_op.get(name, 0) + 1
        others = sum(by_op.values())
        out[method] = {"delegate_calls": delegates, "non_delegated_ops": others, "non_delegated_by_op": dict(sorted(by_op.items()))}
        logger.info("%s: %d delegate calls, %d ops outside delegates %s", method, delegates, others, by_op or "")
    return out
