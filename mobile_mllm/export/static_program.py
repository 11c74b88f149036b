"""Model directory -> MediaTek NPU programs: static-shape vision and decoder shards, PT2E A16W4/A16W8.

The MediaTek backend's whole export (``backends/mediatek.py`` hands :func:`export_static` to the
stage driver, which calls it after the backend's ``check``). The same stages as
``program.py`` (load, prepare, quantize, export, lower, serialize, verify, write), different
products:

* vision: the tower + projector at a fixed tile batch (``target.tile_batch``) and at 1;
* decoder: shards of ``target.layers_per_shard`` layers, each as a ``prompt_len``-position prompt
  graph and a 1-position generate graph over the same weights (``export/static_decoder.py``);
  the KV cache, RoPE rows and mask are inputs (built by the runner, ``runtime/static.py``);
* the token embedding and the RoPE tables as a ``tables.safetensors`` lookup file (the CPU's part);
* PT2E quantization: ``NeuropilotQuantizer`` with the SDK, else ``quant/pt2e.py``'s equivalent,
  calibrated through the static runner itself on images and questions (the synthetic benchmark,
  or ``target.calibration``); the prompt and generate graphs of a shard share one set of ranges.

With ``target.simulate`` the quantized graphs are written as ``torch.export`` programs (``.pt2``)
that ``mobile-mllm run``/``eval`` run on the host through the same runner; without it, the SDK's
``NeuropilotPartitioner`` lowers each shard (both its methods) to a ``.pte`` (untested here: the
SDK is proprietary). Nothing pretends: without the SDK and without ``--simulate`` the backend's
``check`` stops the export before loading the model.

Like ``program.py`` it takes the verifier's and calibrator's pieces from ``runtime`` and ``eval``
(imported inside the functions that need them): calibrating *through the runner* is the point.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError, VerificationError
from mobile_mllm.export.backend import contract_constants
from mobile_mllm.export.config import ExportJob, TargetConfig
from mobile_mllm.export.program import ExportResult, ProgressFn, _check_quantized, _load, _sha256, _Stage
from mobile_mllm.quant.recipe import Precision

if TYPE_CHECKING:
    from mobile_mllm.model.adapter import MultimodalModel
    from mobile_mllm.model.parts import DecoderParts
    from mobile_mllm.quant.recipe import QuantConfig, QuantRecipe

logger = logging.getLogger(__name__)

__all__ = ["SHARD_BYTES", "calibration_samples", "export_static", "layers_per_shard", "summary_lines"]

SHARD_BYTES = 500_000_000
"""Automatic sharding: most bytes of (quantized) weights per decoder shard."""

_BITS = {Precision.FP32: 32, Precision.W8: 8, Precision.W4: 4}


def _vision_graph(batch: int) -> str:
    return f"vision_b{batch}"


def _shard_graph(index: int, kind: str) -> str:
    return f"decoder_s{index}_{kind}"


def layers_per_shard(parts: DecoderParts, cfg: TargetConfig, quant: QuantConfig) -> int:
    """``cfg.layers_per_shard``, or (0) as many layers as fit :data:`SHARD_BYTES` at the decoder's weight precision."""
    if cfg.layers_per_shard:
        return cfg.layers_per_shard
    layer = parts.layers[0]
    params = sum(p.numel() for m in (layer.q_proj, layer.k_proj, layer.v_proj, layer.o_proj, layer.mlp) for p in m.parameters())
    per_layer = params * _BITS[quant.decoder] // 8
    return max(1, min(len(parts.layers), SHARD_BYTES // max(per_layer, 1)))


def calibration_samples(cfg: TargetConfig, seed: int) -> list[tuple[Any, str]]:
    """``cfg.calibration_samples`` (image, question) pairs: from ``cfg.calibration``, else the synthetic benchmark.

    A calibration folder holds images (``vision.image_files``: sorted by name) and optionally
    ``questions.txt``, one question per line, used in turn.

    Raises:
        ConfigError: the folder does not exist or holds no image.
    """
    n = cfg.calibration_samples
    if not cfg.calibration:
        from mobile_mllm.eval.synthetic import generate_samples

        return [(s.image, s.question) for s in generate_samples(seed, n)]
    from mobile_mllm.vision import image_files

    folder = Path(cfg.calibration)
    images = image_files(folder, what="target.calibration")
    qfile = folder / "questions.txt"
    questions = [q.strip() for q in qfile.read_text(encoding="utf-8").splitlines() if q.strip()] if qfile.is_file() else []
    questions = questions or ["Describe the image."]
    return [(str(p), questions[i % len(questions)]) for i, p in enumerate(images[:n])]


def _prepare(model: MultimodalModel, cfg: TargetConfig, quant: QuantConfig) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """The float graphs (name -> (module, example args)), the runner's layout and its tables."""
    import dataclasses

    import torch

    from mobile_mllm.export.backends.xnnpack import matmul_attention
    from mobile_mllm.export.static_decoder import MASK_VALUE, build_shards
    from mobile_mllm.model.registry import decoder_parts
    from mobile_mllm.runtime.static import StaticLayout

    copied = dataclasses.replace(
        model, token_embedding=copy.deepcopy(model.token_embedding), text_decoder=copy.deepcopy(model.text_decoder)
    )
    parts = decoder_parts(copied)
    shards = build_shards(parts, layers_per_shard(parts, cfg, quant))
    vision = matmul_attention(copy.deepcopy(model.vision_encoder)).eval()
    size, ctx, prompt_len = model.vision.tile_size, cfg.max_context_len, cfg.prefill_chunk
    graphs: dict[str, Any] = {}
    for batch in sorted({cfg.tile_batch, 1}, reverse=True):
        graphs[_vision_graph(batch)] = (vision, (torch.zeros(batch, 3, size, size),))
    for i, shard in enumerate(shards):
        caches = tuple(torch.zeros(1, parts.num_kv_heads, ctx, parts.head_dim) for _ in range(2 * len(shard.layers)))
        for kind, length in ((contract.STATIC_PROMPT, prompt_len), (contract.STATIC_GENERATE, 1)):
            graphs[_shard_graph(i, kind)] = (shard, (
                torch.zeros(1, length, model.hidden_size), torch.zeros(length, parts.head_dim),
                torch.zeros(length, parts.head_dim), torch.zeros(1, 1, length, ctx + length), *caches,
            ))
    layout = StaticLayout(
        max_context_len=ctx, prompt_len=prompt_len, tile_batch=cfg.tile_batch,
        shards=tuple((s.first, s.last) for s in shards), num_kv_heads=parts.num_kv_heads, head_dim=parts.head_dim,
        mask_value=MASK_VALUE,
    )
    with torch.no_grad():
        embedding = parts.embedding(torch.arange(model.vocab_size).unsqueeze(0))[0].float().contiguous()
    cos, sin = parts.rope_tables(ctx)
    tables = {"embedding": embedding, "rope_cos": cos.contiguous(), "rope_sin": sin.contiguous()}
    return graphs, layout, tables


def _methods(layout: Any, graphs: dict[str, Callable[..., Any]], tables: dict[str, Any]) -> Any:
    """The static runner over ``graphs`` (observed, converted or exported)."""
    from mobile_mllm.runtime.static import StaticMethods

    return StaticMethods(
        layout,
        vision={b: graphs[_vision_graph(b)] for b in {layout.tile_batch, 1}},
        prompt=[graphs[_shard_graph(i, contract.STATIC_PROMPT)] for i in range(len(layout.shards))],
        generate=[graphs[_shard_graph(i, contract.STATIC_GENERATE)] for i in range(len(layout.shards))],
        **tables,
    )


def _session(model: MultimodalModel, methods: Any, max_new_tokens: int) -> Any:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    return Session(methods, tokenizer=model.tokenizer, prompt=model.prompt, vision=model.vision,
                   eos_ids=model.eos_ids, generation=GenerationConfig(max_new_tokens=max_new_tokens))


def _quantizers(names: list[str], recipe: QuantRecipe, quant: QuantConfig) -> tuple[dict[str, Any], str]:
    """Graph name -> quantizer: the SDK's ``NeuropilotQuantizer`` when importable, else :class:`A16Quantizer`."""
    from mobile_mllm.quant.pt2e import A16Quantizer, neuropilot_quantizer

    out, which = {}, "A16Quantizer (torchao PT2E, NeuroPilot's A16W4/A16W8 bit widths, granularity and annotated ops)"
    for name in names:
        vision = name.startswith("vision")
        method = contract.VISION_ENCODER if vision else contract.TEXT_DECODER
        sdk = neuropilot_quantizer(quant.vision if vision else quant.decoder)
        if sdk is not None:
            which = "NeuropilotQuantizer"
        out[name] = sdk if sdk is not None else A16Quantizer(recipe, method)
    return out, which


def _share_groups(graphs: dict[str, Any]) -> list[list[str]]:
    """Graph names traced from one module (the vision batches; each shard's prompt and generate)."""
    groups: dict[int, list[str]] = {}
    for name, (module, _) in graphs.items():
        groups.setdefault(id(module), []).append(name)
    return [g for g in groups.values() if len(g) > 1]


def _graph_method(name: str) -> str:
    return contract.VISION_ENCODER if name.startswith("vision") else contract.TEXT_DECODER


def _phone_memory(report: Any, graphs: dict[str, Any], layout: Any, tables: dict[str, Any]) -> dict[str, Any]:
    """Expected bytes on the phone: weights per program (quantized linears at their width, the rest fp16), KV cache, tables."""
    linear_bytes = {layer.name: layer.weight_bytes for layer in report.layers}
    per_program: dict[str, int] = {}
    seen: set[int] = set()
    for name, (module, _) in graphs.items():
        if id(module) in seen:
            continue
        seen.add(id(module))
        method = _graph_method(name)
        label = "vision" if method == contract.VISION_ENCODER else name.rsplit("_", 1)[0]
        total = 0
        for path, sub in module.named_modules():
            for pname, p in sub.named_parameters(recurse=False):
                key = f"{method}.{path}"
                total += linear_bytes[key] if pname == "weight" and key in linear_bytes else p.numel() * 2
        per_program[label] = total
    num_layers = layout.shards[-1][1]
    kv = num_layers * 2 * layout.num_kv_heads * layout.max_context_len * layout.head_dim * 2
    table_bytes = {k: v.numel() * v.element_size() for k, v in tables.items()}
    return {
        "weights_bytes": per_program,
        "total_weights_bytes": sum(per_program.values()),
        "kv_cache_bytes": kv,
        "kv_cache_note": "k and v of every layer, [kv_heads, max_context_len, head_dim] at 16 bits (int16 / fp16 on the NPU)",
        "cpu_tables_bytes": table_bytes,
        "cpu_tables_note": "float32 as written; the token embedding is a CPU lookup (half that as fp16)",
    }


def _verify(model: MultimodalModel, methods: Any, job: ExportJob, *, exact: bool) -> dict[str, Any]:
    """Greedy tokens of the static graphs vs the float eager model on one synthetic sample the calibration did not see."""
    from mobile_mllm.eval.synthetic import generate_samples
    from mobile_mllm.runtime.eager import EagerMethods

    cfg = job.target
    (sample,) = list(generate_samples(job.seed + 10_000, 1))
    static = _session(model, methods, job.verify_tokens).ask(sample.question, sample.image)
    eager = _session(model, EagerMethods(model, tile_batch=cfg.tile_batch, prefill_chunk=cfg.prefill_chunk),
                     job.verify_tokens).ask(sample.question, sample.image)
    agree = 0
    for a, b in zip(static.tokens, eager.tokens):
        if a != b:
            break
        agree += 1
    result = {
        "num_tokens": len(eager.tokens), "num_agreeing_prefix": agree,
        "tokens": list(static.tokens), "float_tokens": list(eager.tokens),
        "num_image_tokens": static.stats.num_image_tokens, "num_tiles": static.stats.num_tiles,
    }
    if exact and list(static.tokens) != list(eager.tokens):
        raise VerificationError(
            f"stage verify: the fp32 static graphs' greedy tokens {list(static.tokens)} differ from the eager model's "
            f"{list(eager.tokens)}: the static runner or graphs are wrong (a bug; please report it)"
        )
    return {"greedy": result}


def _lower_neuropilot(exported: dict[str, Any], soc: str) -> dict[str, tuple[Any, list[str]]]:
    """One ``.pte`` per program (vision; each shard) holding its graphs as methods, lowered with ``NeuropilotPartitioner``."""
    import struct

    from executorch.backends.mediatek import NeuropilotPartitioner
    from executorch.exir import EdgeCompileConfig, ExecutorchBackendConfig, to_edge_transform_and_lower
    from executorch.exir.backend.backend_details import CompileSpec
    from executorch.exir.passes import MemoryPlanningPass

    programs: dict[str, dict[str, Any]] = {}
    for name, ep in exported.items():
        programs.setdefault("vision" if name.startswith("vision") else name.rsplit("_", 1)[0], {})[name] = ep
    out = {}
    for program, methods in programs.items():
        # compile options of ExecuTorch's MediaTek LLM example; the shared-blob key lets methods share weights
        spec = [
            CompileSpec("gno", b"LTS"), CompileSpec("gno-exp", b""), CompileSpec("gno-non-4d-tiling", b""),
            CompileSpec("ImportForever", struct.pack("?", True)), CompileSpec("platform-config", soc.encode()),
            CompileSpec("ExtractSharedBlobKey", program.encode()),
        ]
        edge = to_edge_transform_and_lower(
            methods, partitioner={m: [NeuropilotPartitioner(spec)] for m in methods},
            compile_config=EdgeCompileConfig(_check_ir_validity=False),
        )
        out[f"{program}.pte"] = (edge.to_executorch(ExecutorchBackendConfig(
            memory_planning_pass=MemoryPlanningPass(alloc_graph_input=False, alloc_graph_output=False),
            extract_delegate_segments=True,
        )), list(methods))
    return out


def export_static(
    job: ExportJob,
    *,
    verifier: Callable[..., Any] | None = None,
    on_progress: ProgressFn | None = None,
) -> ExportResult:
    """Export ``job.model`` for the MediaTek NPU (see the module docstring); the ``mediatek`` backend's ``export``.

    Args:
        job (ExportJob): the resolved settings (``job.target.simulate``: host graphs instead of ``.pte``).
        verifier (Callable | None): unused (the ``.pte`` verifier cannot load these graphs; this
            export verifies through the static runner itself when ``job.verify``).
        on_progress (ProgressFn | None): ``(stage, module)`` when each stage starts.

    Raises:
        ExportError: naming the stage and the graph (``VerificationError``: fp32 graphs disagree with the eager model).
        ConfigError: a bad calibration folder.
    """
    import torch
    from safetensors.torch import save_file

    from mobile_mllm.config import to_dict
    from mobile_mllm.export.manifest import build_manifest
    from mobile_mllm.quant.pt2e import quantize_graphs, report_graphs
    from mobile_mllm.quant.recipe import build_recipe

    del verifier
    cfg, out = job.target, Path(job.output)
    timings: dict[str, float] = {}
    t_start = time.perf_counter()
    torch.manual_seed(job.seed)
    if job.quant.embedding is not Precision.FP32:
        logger.warning("quant.embedding %s: the token embedding is a float32 lookup table on the phone's CPU for the "
                       "mediatek target (use --embedding fp32 to silence this)", job.quant.embedding.value)
    with _Stage("load", job.model, on_progress, timings):
        model = _load(job)
    with _Stage("prepare", "mediatek", on_progress, timings):
        graphs, layout, tables = _prepare(model, cfg, job.quant)
    names = list(graphs)
    recipe = build_recipe(job.quant, vision_method=contract.VISION_ENCODER, decoder_method=contract.TEXT_DECODER,
                          embedding_method=contract.TOKEN_EMBEDDING)
    quantized = any(getattr(job.quant, f) is not Precision.FP32 for f in ("decoder", "lm_head", "vision")) or any(
        not r.endswith("=fp32") for r in job.quant.rules)
    calibration: dict[str, Any] = {}
    with _Stage("quantize", "all", on_progress, timings):
        if quantized:
            samples = calibration_samples(cfg, job.seed)
            quantizers, which = _quantizers(names, recipe, job.quant)

            def calibrate(observed: dict[str, Callable[..., Any]]) -> None:
                session = _session(model, _methods(layout, observed, tables), 8)
                for image, question in samples:
                    session.ask(question, image)

            converted: dict[str, Any] = quantize_graphs(graphs, quantizers, calibrate, share=_share_groups(graphs))
            calibration = {"quantizer": which, "num_samples": len(samples),
                           "source": cfg.calibration or "synthetic benchmark", "max_new_tokens": 8}
        else:
            converted = {name: module for name, (module, _) in graphs.items()}
    exported = {}
    for name in names:
        with _Stage("export", name, on_progress, timings), torch.no_grad():
            exported[name] = torch.export.export(converted[name], graphs[name][1], strict=False)
    runnable = {n: ep.module() for n, ep in exported.items()}  # weights as attributes: the report reads their shapes
    report = report_graphs(runnable, {n: _graph_method(n) for n in names}, recipe)
    _check_quantized(report)
    lowered = None
    if not cfg.simulate:
        with _Stage("lower", ", ".join(names), on_progress, timings):
            lowered = _lower_neuropilot(exported, cfg.soc.value)

    out.mkdir(parents=True, exist_ok=True)
    if lowered is None:
        graph_files = {name: f"{name}.pt2" for name in names}
    else:
        graph_files = {m: f"{file}#{m}" for file, (_, methods) in lowered.items() for m in methods}
    files = sorted({f.split("#")[0] for f in graph_files.values()})
    fixed = (contract.TOKENIZER_FILE, contract.MANIFEST_FILE, contract.EXPORT_REPORT_FILE, contract.STATIC_TABLES_FILE)
    # temporary names keep the real suffix (torch.export.save warns about an archive not ending in .pt2)
    tmp = {name: out / f".partial.{name}" for name in (*fixed, *files)}
    try:
        with _Stage("serialize", "", on_progress, timings):
            if lowered is None:
                for name, ep in exported.items():
                    torch.export.save(ep, str(tmp[graph_files[name]]))
            else:
                for file, (program, _) in lowered.items():
                    tmp[file].write_bytes(program.buffer)
            save_file({contract.STATIC_TABLE_EMBEDDING: tables["embedding"], contract.STATIC_TABLE_ROPE_COS: tables["rope_cos"],
                       contract.STATIC_TABLE_ROPE_SIN: tables["rope_sin"]}, str(tmp[contract.STATIC_TABLES_FILE]))
            model.tokenizer.save(str(tmp[contract.TOKENIZER_FILE]))
            file_sizes = {f: tmp[f].stat().st_size for f in files}
            constants = contract_constants(model, cfg, dynamic_shape=False)
            constants[contract.GET_MAX_SEQ_LEN] = layout.prompt_len
            first = graph_files[_shard_graph(0, contract.STATIC_PROMPT)].split("#")[0]
            static = {
                contract.M_STATIC_SIMULATED: lowered is None,
                contract.M_STATIC_SOC: cfg.soc.value,
                contract.M_STATIC_PROMPT_LEN: layout.prompt_len,
                contract.M_STATIC_SHARDS: [list(s) for s in layout.shards],
                contract.M_STATIC_KV_HEADS: layout.num_kv_heads,
                contract.M_STATIC_HEAD_DIM: layout.head_dim,
                contract.M_STATIC_MASK_VALUE: layout.mask_value,
                contract.M_STATIC_TABLES: contract.STATIC_TABLES_FILE,
                contract.M_STATIC_ACTIVATIONS: "int16" if quantized else "fp32",
                contract.M_STATIC_FILES: {
                    contract.STATIC_VISION: {str(b): graph_files[_vision_graph(b)] for b in sorted({cfg.tile_batch, 1})},
                    contract.STATIC_PROMPT: [graph_files[_shard_graph(i, contract.STATIC_PROMPT)] for i in range(len(layout.shards))],
                    contract.STATIC_GENERATE: [graph_files[_shard_graph(i, contract.STATIC_GENERATE)] for i in range(len(layout.shards))],
                },
            }
            program_info = {
                contract.M_PROGRAM_FILE: first,
                contract.M_PROGRAM_SIZE_BYTES: sum(file_sizes.values()),
                contract.M_PROGRAM_SHA256: _sha256(tmp[first]),
                contract.M_PROGRAM_METHODS: names,
                contract.M_PROGRAM_CONSTANT_METHODS: constants,
            }
            manifest = build_manifest(
                model=model, job=job, constants=constants, program=program_info,
                precision={contract.M_PRECISION_MODULES: report.module_precision(),
                           contract.M_PRECISION_BY_METHOD: report.by_method(),
                           contract.M_PRECISION_GROUP_SIZE: job.quant.group_size},
                additions={contract.M_STATIC: static},
            )
            tmp[contract.MANIFEST_FILE].write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        full_report: dict[str, Any] = {
            "job": to_dict(job),
            "backend": "mediatek",
            "program": program_info,
            "static_programs": static,
            "files_bytes": file_sizes,
            "phone_memory": _phone_memory(report, graphs, layout, tables),
            "calibration": calibration or None,
            "quantization": report.to_dict(),
            "verification": None,
        }
        if job.verify:
            with _Stage("verify", "all", on_progress, timings):
                full_report["verification"] = _verify(model, _methods(layout, runnable, tables), job, exact=not quantized)
        full_report["export_time_s"] = round(time.perf_counter() - t_start, 3)
        full_report["timings_s"] = timings
        with _Stage("write", str(out), on_progress, timings):
            tmp[contract.EXPORT_REPORT_FILE].write_text(json.dumps(full_report, indent=2) + "\n", encoding="utf-8")
            for name in sorted(tmp, key=lambda n: n == contract.MANIFEST_FILE):  # the manifest last
                os.replace(tmp[name], out / name)
    finally:
        for path in tmp.values():
            path.unlink(missing_ok=True)
    logger.info("wrote %d MediaTek %s to %s in %.1f s", len(files), "simulated graphs" if lowered is None else "programs",
                out, full_report["export_time_s"])
    return ExportResult(output=out, program=out / first, manifest=out / contract.MANIFEST_FILE, report=full_report)


def summary_lines(report: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) rows of a MediaTek export report, for the CLI: precision, files, phone memory, verification, accuracy."""
    static, memory, q = report["static_programs"], report["phone_memory"], report["quantization"]
    mb = 1e6
    rows = [
        ("programs", f"{'simulated on the host (torch.export .pt2)' if static['simulated'] else 'NeuroPilot .pte'} "
                     f"for {static['soc']}; activations {static['activations']}"),
        ("precision", str(q["by_method"])),
        ("unexpected fp32 layers", str(q["num_unexpected_fp32"])),
        ("decoder shards", ", ".join(f"layers {a}-{b - 1}" for a, b in static["shards"])),
    ]
    rows += [(f"file {name}", f"{size / mb:.2f} MB") for name, size in report["files_bytes"].items()]
    rows += [(f"phone weights {name}", f"{size / mb:.2f} MB") for name, size in memory["weights_bytes"].items()]
    rows.append(("phone KV cache", f"{memory['kv_cache_bytes'] / mb:.2f} MB (16-bit)"))
    rows.append(("CPU tables", f"{sum(memory['cpu_tables_bytes'].values()) / mb:.2f} MB (fp32)"))
    if report["calibration"]:
        c = report["calibration"]
        rows.append(("calibration", f"{c['num_samples']} samples from {c['source']}; {c['quantizer']}"))
    v = report["verification"]
    if v is not None:
        g = v["greedy"]
        rows.append(("greedy vs float", f"{g['num_agreeing_prefix']}/{g['num_tokens']} first tokens agree "
                                         f"({g['num_tiles']} tiles)"))
    rows.append(("export time", f"{report['export_time_s']:.1f} s"))
    accuracy = report.get("accuracy") or {}
    for label, scores in accuracy.get("scores", {}).items():  # what --accuracy-limit added
        run = accuracy.get("runs", {}).get(label, label)
        rows.append((f"accuracy {label}", f"{run}: " + "; ".join(
            f"{bench} " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if v is not None)
            for bench, metrics in scores.items())))
    return rows
