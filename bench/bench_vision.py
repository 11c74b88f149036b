"""Vision encoder speed: our ``vision_encoder`` program vs ONNX Runtime on the same weights, one run.

The brief's peer for the vision front end is ONNX Runtime with dynamic int8 quantization. This
script exports ONLY the ``vision_encoder`` method (SigLIP tower + downsampler + projector) through
the library's path (``quant.apply.quantize_modules`` with a precision preset ->
``export.program.lower_one_method`` -> ``to_executorch_program``), exports the *same* float module
to ONNX (``torch.onnx.export``, in the peer venv ``bench/peers/.venv-ort``, which has ``onnx``;
``onnxruntime`` is a core dependency), quantizes that with
``onnxruntime.quantization.quantize_dynamic`` (int8 weights, dynamic uint8 activations: the
usual ORT CPU recipe), and times every program in a fresh process, interleaved over rounds:
milliseconds per tile at batch 1 and at batch 4.

Modes:

    export   model dir -> vision-only .pte (``--recipe fp32|w8|w4``; ``w4``'s vision is 8da8w too)
    onnx     model dir -> fp32 .onnx and its dynamic-int8 copy: the peer "as a user would make it"
    ours-onnx model dir -> vision.onnx exactly as ``mobile-mllm export --vision-engine onnxruntime`` writes it
             (``--quantization dynamic|static|fp32``)
    time     one .pte, .onnx or ``eager:MODEL_DIR`` (PyTorch fp32) -> ms per tile at batch 1 and 4
    preprocess-share one image's preprocessing vs encoding its tiles (what pipelining could hide)
    profile  one .pte -> ETDump per XNNPACK kernel / portable op over ``--repeats`` batch-1 calls, with shares
    compare  everything under ``--models-dir`` (+ ``--eager MODEL_DIR``) one after the other in ONE run, with ratios

Example (mid preset: 384 px tiles, patch 16, width 512, 8 layers; 144 tokens per tile):

    bench/peers/setup_peers.sh ort
    .venv/bin/python bench/bench_vision.py export --recipe w8 --out /tmp/bench_models/mid/vision/w8.pte
    .venv/bin/python bench/bench_vision.py export --recipe fp32 --out /tmp/bench_models/mid/vision/fp32.pte
    bench/peers/.venv-ort/bin/python bench/bench_vision.py onnx --out /tmp/bench_models/mid/vision/model.onnx
    .venv/bin/python bench/bench_vision.py compare --models-dir /tmp/bench_models/mid/vision --rounds 3

This is a script, not library code; numbers go to ``bench/RESULTS.md`` by hand with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from measure import loadavg, run_json, set_threads  # noqa: E402  (bench/ is the script dir)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = "/tmp/bench_models/mid/model"
BATCHES = (1, 4)
EAGER_NAME = "eager_fp32"  # compare's label of the PyTorch row


def _load(model_dir: str) -> Any:
    import torch

    from mobile_mllm.model import load_model

    return load_model(model_dir, dtype=torch.float32, max_context_len=256)


def export_pte(args: argparse.Namespace) -> dict[str, Any]:
    """``vision_encoder`` alone through the library's path; writes ``args.out``."""
    import copy

    from mobile_mllm import contract
    from mobile_mllm.export.backends.xnnpack import matmul_attention
    from mobile_mllm.export.program import TargetConfig, _delegation_counts, lower_one_method, to_executorch_program
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import build_recipe, preset

    start = time.perf_counter()
    model = _load(args.model_dir)
    module = copy.deepcopy(model.vision_encoder).eval()
    if args.attention == "matmul":  # what export_program does (see export.backends.xnnpack.matmul_attention)
        matmul_attention(module)
    recipe = build_recipe(preset(args.recipe), vision_method=contract.VISION_ENCODER,
                          decoder_method=contract.TEXT_DECODER, embedding_method=contract.TOKEN_EMBEDDING)
    report = quantize_modules({contract.VISION_ENCODER: module}, recipe)
    cfg = TargetConfig(tile_batch=max(BATCHES))
    partitioners = None
    if args.partitioners == "single":  # experiment: one XnnpackPartitioner for every precision
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioners = [XnnpackPartitioner()]
    edge = lower_one_method(model, contract.VISION_ENCODER, module, cfg, partitioners=partitioners)
    delegated = _delegation_counts(edge, [contract.VISION_ENCODER])  # before serializing: it adds alloc/view nodes
    program = to_executorch_program(edge)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        program.write_to_file(fh)
    return {"pte": str(out), "recipe": args.recipe, "size_bytes": out.stat().st_size,
            "precision": report.by_method(), "delegated": delegated,
            "seconds": round(time.perf_counter() - start, 1)}


def export_onnx(args: argparse.Namespace) -> dict[str, Any]:
    """The same float ``vision_encoder`` module -> ``args.out`` (fp32) and ``<stem>.int8.onnx`` (ORT dynamic int8)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from mobile_mllm.export.backends.xnnpack import matmul_attention

    model = _load(args.model_dir)
    module = model.vision_encoder.eval()
    if args.attention == "matmul":
        matmul_attention(module)
    size = model.vision.tile_size
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tiles = torch.zeros(2, 3, size, size)
    with torch.no_grad():
        torch.onnx.export(module, (tiles,), str(out), input_names=["tiles"], output_names=["embeddings"],
                          dynamic_shapes=({0: torch.export.Dim("tiles", min=1, max=max(BATCHES))},), dynamo=True,
                          external_data=False)
    int8 = out.with_suffix(".int8.onnx")
    quantize_dynamic(str(out), str(int8), weight_type=QuantType.QInt8)
    written = [out, int8]
    if args.fuse:
        tower = module.tower.config  # transformers SiglipVisionConfig
        written.append(_fused_int8(out, tower.num_attention_heads, tower.hidden_size))
    return {"onnx": str(out), "int8": str(int8), "sizes": {p.name: p.stat().st_size for p in written}}


def export_ours_onnx(args: argparse.Namespace) -> dict[str, Any]:
    """``vision.onnx`` through the library (``export.onnx_vision.vision_files``, what the exporter's cpu backend calls)."""
    from mobile_mllm import contract
    from mobile_mllm.export.backends.xnnpack import matmul_attention
    from mobile_mllm.export.config import TargetConfig, VisionEngine
    from mobile_mllm.export.onnx_vision import vision_files

    start = time.perf_counter()
    model = _load(args.model_dir)
    cfg = TargetConfig(tile_batch=max(BATCHES), vision_engine=VisionEngine.ONNXRUNTIME,
                       onnx_quantization=args.quantization, calibration=args.calibration or "")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    vision_files(model, cfg, prepare=matmul_attention)[contract.VISION_ONNX_FILE](out)
    return {"onnx": str(out), "size_bytes": out.stat().st_size, "seconds": round(time.perf_counter() - start, 1)}


def _fused_int8(onnx_path: Path, heads: int, width: int) -> Path:
    """The peer at its best: ORT's transformer optimizer (LayerNorm/GELU fusions), then dynamic int8 -> ``<stem>.fused.int8.onnx``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(onnx_path), model_type="vit", num_heads=heads, hidden_size=width, opt_level=1)
    print(json.dumps({"fused_operators": fused.get_fused_operator_statistics()}), file=sys.stderr)
    fp32 = onnx_path.with_suffix(".fused.fp32.onnx")
    fused.save_model_to_file(str(fp32), use_external_data_format=True)
    int8 = onnx_path.with_suffix(".fused.int8.onnx")
    quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8)
    return int8


def time_one(args: argparse.Namespace) -> dict[str, Any]:
    """Median ms per tile at each batch for one program, in this (fresh) process."""
    import numpy as np

    threads = args.threads
    path = args.path
    size = args.tile_size
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {"path": path, "threads": threads, "loadavg_start": loadavg()}
    if path.startswith("eager:"):  # the float PyTorch module, as the model loads (SDPA attention)
        import torch

        set_threads(threads)
        module = _load(path.removeprefix("eager:")).vision_encoder.eval()

        def run(x: Any) -> None:
            with torch.inference_mode():
                module(torch.from_numpy(x))
    elif path.endswith(".onnx"):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

        def run(x: Any) -> None:
            session.run(None, {"tiles": x})
    else:
        import torch

        from mobile_mllm.runtime.pte import load_executorch_kernels

        set_threads(threads)
        method = load_executorch_kernels().load_program(path).load_method("vision_encoder")

        def run(x: Any) -> None:
            method.execute([torch.from_numpy(x)])
    for batch in BATCHES:
        x = rng.uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
        run(x)  # warm-up
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            run(x)
            times.append((time.perf_counter() - start) * 1000 / batch)
        out[f"ms_per_tile_b{batch}"] = round(statistics.median(times), 2)
    out["loadavg_end"] = loadavg()
    return out


def preprocess_share(args: argparse.Namespace) -> dict[str, Any]:
    """What pipelining could hide: one image's preprocessing (decode, resize, cut, normalise) vs encoding its tiles.

    The session preprocesses the whole image, then encodes tiles in batches; overlapping the two on
    another thread can save at most the preprocessing time, and on 2 cores that thread competes
    with the encoder's own two threads. Times ``vision.preprocess`` of a ``--width`` x ``--height``
    image with the model's ``VisionConfig``, then the given program over its tiles in batches of 4.
    """
    import numpy as np
    import torch

    from mobile_mllm.vision import preprocess

    set_threads(args.threads)
    model = _load(args.model_dir)
    image = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    pre_ms = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        tiles = preprocess(image, model.vision).tiles
        pre_ms.append((time.perf_counter() - start) * 1000)
    from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder

    encoder = OnnxVisionEncoder(args.path, max_tile_batch=max(BATCHES), threads=args.threads)
    encoder(tiles[:1])  # warm-up
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, tiles.shape[0], max(BATCHES)):
            encoder(tiles[i : i + max(BATCHES)])
    encode_ms = (time.perf_counter() - start) * 1000
    pre = statistics.median(pre_ms)
    return {"tiles": int(tiles.shape[0]), "preprocess_ms": round(pre, 1), "encode_ms": round(encode_ms, 1),
            "preprocess_share": round(pre / (pre + encode_ms), 4), "loadavg": loadavg()}


def profile(args: argparse.Namespace) -> dict[str, Any]:
    """Where one tile's time goes: ETDump events of ``--repeats`` batch-1 calls after a warm-up, and each one's share.

    Shares are of the sum of leaf events (XNNPACK kernels and portable operators), so they say how far
    any change outside the GEMMs could move the total.
    """
    import torch

    from mobile_mllm.runtime.etdump import FRAME_EVENTS, aggregate_events
    from mobile_mllm.runtime.pte import load_executorch_kernels

    set_threads(args.threads)
    program = load_executorch_kernels().load_program(args.path, enable_etdump=True)
    method = program.load_method("vision_encoder")
    x = torch.rand(1, 3, args.tile_size, args.tile_size) * 2 - 1
    method.execute([x])  # warm-up, part of the dump: subtracted below by counting per call
    for _ in range(args.repeats):
        method.execute([x])
    etdump = str(Path(args.json_out).with_suffix(".etdump"))
    program.write_etdump_result_to_file(etdump, etdump + ".debug")
    calls = args.repeats + 1
    leaves = [r for r in aggregate_events(etdump) if r["event"] not in FRAME_EVENTS]
    total = sum(r["total_ms"] for r in leaves)
    rows = [{"event": r["event"], "ms_per_tile": round(r["total_ms"] / calls, 2), "share": round(r["total_ms"] / total, 4)}
            for r in leaves]
    out = {"path": args.path, "threads": args.threads, "calls": calls, "ms_per_tile_leaves": round(total / calls, 1),
           "loadavg": loadavg(), "events": rows}
    Path(args.json_out).write_text(json.dumps(out, indent=1) + "\n")
    for r in rows[:12]:
        print(f"{r['share']:7.1%} {r['ms_per_tile']:9.1f} ms  {r['event']}", file=sys.stderr)
    return {k: v for k, v in out.items() if k != "events"}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Every ``*.pte``/``*.onnx`` in ``--models-dir``, interleaved over ``--rounds``, each in a fresh process."""
    models = sorted(Path(args.models_dir).glob("*.pte")) + sorted(Path(args.models_dir).glob("*.onnx"))
    models += [Path(EAGER_NAME)] if args.eager else []
    if not models:
        raise SystemExit(f"no .pte/.onnx files in {args.models_dir}: run the export and onnx modes first")
    rounds: list[dict[str, Any]] = []
    for r in range(args.rounds):
        row = {}
        for path in models:
            print(f"round {r + 1}: {path.name} ...", file=sys.stderr, flush=True)
            what = f"eager:{args.eager}" if path.name == EAGER_NAME else str(path)
            row[path.name] = run_json(__file__, ["time", what, "--threads", str(args.threads),
                                                 "--repeats", str(args.repeats), "--tile-size", str(args.tile_size)])
        rounds.append(row)
    result = {"threads": args.threads, "rounds": rounds, "machine": os.uname().nodename}
    Path(args.json_out).write_text(json.dumps(result, indent=1) + "\n")
    print(_table(rounds, models))
    return result


def _table(rounds: list[dict[str, Any]], models: list[Path]) -> str:
    names = [p.name for p in models]
    lines = ["| ms per tile (median over rounds) | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for batch in BATCHES:
        key = f"ms_per_tile_b{batch}"
        cells = [f"{statistics.median(r[n][key] for r in rounds):.1f}" for n in names]
        lines.append(f"| batch {batch} | " + " | ".join(cells) + " |")
    best_peer = [n for n in names if n.endswith(".int8.onnx")]
    if best_peer:
        peer = best_peer[0]
        for n in names:
            if n != peer:
                ratios = [statistics.median(r[peer][f"ms_per_tile_b{b}"] / r[n][f"ms_per_tile_b{b}"] for r in rounds)
                          for b in BATCHES]
                lines.append(f"\n{n}: speed vs {peer} (peer ms / ours ms, median over rounds): "
                             + ", ".join(f"batch {b} {x:.2f}x" for b, x in zip(BATCHES, ratios)))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("export")
    e.add_argument("--recipe", default="w8", help="precision preset (default w8; the vision tower is 8da8w in w4 and w8)")
    e.add_argument("--partitioners", choices=("backend", "single"), default="backend",
                   help="the backend's partitioners (default) or one XnnpackPartitioner (experiment)")
    y = sub.add_parser("ours-onnx")
    y.add_argument("--quantization", choices=("dynamic", "static", "fp32"), default="dynamic")
    y.add_argument("--calibration", default=None, help="folder of images for static (default: the synthetic benchmark's)")
    y.add_argument("--model-dir", default=DEFAULT_MODEL)
    y.add_argument("--out", required=True)
    o = sub.add_parser("onnx")
    o.add_argument("--fuse", action="store_true",
                   help="also write <stem>.fused.int8.onnx: ORT's transformer optimizer before quantizing")
    for q in (e, o):
        q.add_argument("--attention", choices=("matmul", "sdpa"), default="matmul",
                       help="the tower's attention as exported: matmul (the exporter's choice) or sdpa (before session 3)")
        q.add_argument("--model-dir", default=DEFAULT_MODEL)
        q.add_argument("--out", required=True)
    t = sub.add_parser("time")
    t.add_argument("path")
    w = sub.add_parser("preprocess-share")
    w.add_argument("path", help="a vision .onnx (e.g. written by ours-onnx)")
    w.add_argument("--model-dir", default=DEFAULT_MODEL)
    w.add_argument("--width", type=int, default=1152)
    w.add_argument("--height", type=int, default=1152)
    p = sub.add_parser("profile")
    p.add_argument("path")
    p.add_argument("--json-out", required=True, help="per-event JSON (the raw .etdump is written beside it)")
    c = sub.add_parser("compare")
    c.add_argument("--models-dir", required=True)
    c.add_argument("--rounds", type=int, default=3)
    c.add_argument("--eager", default=None, help="also time this model directory's float PyTorch vision_encoder")
    c.add_argument("--json-out", default=str(REPO / "bench" / "results" / "bench_vision_compare.json"))
    for q in (t, p, c, w):
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--repeats", type=int, default=5)
        q.add_argument("--tile-size", type=int, default=384)
    return parser


def main() -> None:
    args = _parser().parse_args()
    run = {"export": export_pte, "onnx": export_onnx, "ours-onnx": export_ours_onnx, "preprocess-share": preprocess_share, "time": time_one, "profile": profile, "compare": compare}[args.mode]
    result = run(args)
    if args.mode != "compare":
        print(json.dumps(result))


if __name__ == "__main__":
    main()
