"""Export benchmark of issue 3: eager fp32 vs ``.pte`` fp32 vs ``.pte`` w4, side by side.

For each preset (``tiny``, ``mid``) this script makes sure a random-weight model directory and
its exported programs exist under ``--models-dir`` (``mobile-mllm init-model`` / ``mobile-mllm
export --no-verify``; existing ones are reused, nothing is committed), writes one set of inputs
(tiles, prompt embeddings) to that directory, then measures every backend on exactly those
inputs, each backend in a fresh subprocess so peak RSS (``VmHWM``) is its own:

* (a) ``vision_encoder`` ms per tile at batch 1 and batch 4;
* (b) prefill tokens/s of a ``--prompt-len`` prompt in ``--chunk``-position calls (the runtime's
  chunked prefill) and in one call ("one-shot"; the programs are exported with
  ``--prefill-chunk`` = the prompt length so that one call is allowed);
* (c) decode tokens/s: ``--decode-tokens`` greedy steps (token_embedding + text_decoder, one
  position each) right after the one-shot prefill;
* (d) peak RSS of the process (load included);
* (e) file sizes (``model.pte``; ``model.safetensors`` for eager).

Plus the decode roofline: the machine's streaming read bandwidth (a multi-threaded
``torch.sum`` over a buffer much larger than L3) divided by the weight bytes one decoded
token reads (decoder linears + lm_head + norms from ``export_report.json``'s
``modules.text_decoder.weight_bytes``, plus one embedding row), and the measured decode rate
as a fraction of it (bandwidth: the best sample of 7 before and 7 after, since contention only
lowers it). Timings are medians over ``--repeats`` (min and max kept in the JSON).

This is a script, not library code: it calls only ``mobile_mllm``'s public API
(``PteMethods``, ``EagerMethods``, ``session.prefill``/``decode_one_token``) and the CLI.

Example:
    .venv/bin/python bench/bench_export.py --models-dir /tmp/bench_models --presets tiny mid
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from measure import loadavg, run_json, set_threads, summary  # noqa: E402  (bench/ is the script dir)

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "mobile_mllm.cli", "-q"]
RECIPES = ("fp32", "w4")
"""Programs measured next to eager fp32, in table order."""


# --------------------------------------------------------------------------- helpers (both sides)


def _proc_status(key: str) -> int:
    """``VmHWM``/``VmRSS`` of this process in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


# --------------------------------------------------------------------------- worker side


def _time_ms(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def _import_backend(backend: str) -> None:
    """Import what the backend needs before the baseline RSS is read (so it counts imports, not weights)."""
    if backend == "eager":
        import mobile_mllm.model  # noqa: F401
        import mobile_mllm.runtime.eager  # noqa: F401
    else:
        from mobile_mllm.runtime.pte import load_executorch_kernels

        load_executorch_kernels()


def _open_methods(backend: str, path: Path, max_context_len: int, prompt_len: int) -> Any:
    """Eager: the model directory at fp32 with a ``max_context_len`` KV cache; pte: the program as exported."""
    if backend == "eager":
        import torch

        from mobile_mllm.model import load_model
        from mobile_mllm.runtime.eager import EagerMethods

        model = load_model(str(path), dtype=torch.float32, max_context_len=max_context_len)
        return EagerMethods(model, tile_batch=4, prefill_chunk=prompt_len)
    from mobile_mllm import contract
    from mobile_mllm.export.manifest import read_manifest
    from mobile_mllm.runtime.pte import PteMethods

    manifest = read_manifest(path)
    return PteMethods(path / contract.PROGRAM_FILE, tile_batch=int(manifest[contract.M_TILE_BATCH]))


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    """Measure one backend on the saved inputs; returns the raw numbers (printed as JSON)."""
    import torch

    from mobile_mllm.runtime.session import decode_one_token, prefill

    out: dict[str, Any] = {"backend": args.backend, "path": str(args.path), "loadavg_start": loadavg()}
    out.update(set_threads(args.threads))
    inputs = torch.load(args.inputs)
    tiles, embeds = inputs["tiles"], inputs["embeds"]
    prompt_len = embeds.shape[1]

    _import_backend(args.backend)
    out["rss_before_load_bytes"] = _proc_status("VmRSS")  # interpreter + torch (+ executorch kernels)
    start = time.perf_counter()
    methods = _open_methods(args.backend, Path(args.path), args.max_context_len, prompt_len)
    out["load_s"] = round(time.perf_counter() - start, 3)
    out["rss_after_load_bytes"] = _proc_status("VmRSS")
    out["hwm_after_load_bytes"] = _proc_status("VmHWM")
    out["max_chunk"] = methods.prefill_chunk
    out["max_tile_batch"] = methods.max_tile_batch
    one_shot = methods.prefill_chunk >= prompt_len

    def vision(batch: int) -> None:
        methods.vision_encoder(tiles[:batch])

    def decode(logits: torch.Tensor) -> None:
        token = int(logits.argmax())
        for i in range(args.decode_tokens):
            token = int(decode_one_token(methods, token, prompt_len + i).argmax())

    # Warm-up: every shape once (XNNPACK reshapes and allocates on a new shape).
    vision(1)
    vision(methods.max_tile_batch)
    prefill(methods, embeds[:, : args.chunk], 0, args.chunk)
    if one_shot:
        prefill(methods, embeds, 0, prompt_len)
    decode_one_token(methods, 0, prompt_len)

    timings: dict[str, list[float]] = {name: [] for name in
                                       ("vision_b1_ms", "vision_b4_ms", "prefill_chunked_ms", "prefill_one_shot_ms", "decode_ms")}
    for _ in range(args.repeats):
        timings["vision_b1_ms"].append(_time_ms(lambda: vision(1)))
        if methods.max_tile_batch >= 4:
            timings["vision_b4_ms"].append(_time_ms(lambda: vision(4)))
        start = time.perf_counter()
        logits = prefill(methods, embeds, 0, args.chunk)
        timings["prefill_chunked_ms"].append((time.perf_counter() - start) * 1e3)
        if one_shot:
            start = time.perf_counter()
            logits = prefill(methods, embeds, 0, prompt_len)
            timings["prefill_one_shot_ms"].append((time.perf_counter() - start) * 1e3)
        # Decode continues right after a full prompt in the KV cache (positions prompt_len..).
        timings["decode_ms"].append(_time_ms(lambda: decode(logits)))

    out["raw_ms"] = {k: [round(v, 3) for v in vs] for k, vs in timings.items() if vs}
    out["peak_rss_bytes"] = _proc_status("VmHWM")
    out["loadavg_end"] = loadavg()
    return out


# --------------------------------------------------------------------------- bandwidth


def measure_bandwidth(threads: int, gigabytes: float, repeats: int) -> dict[str, Any]:
    """Streaming read bandwidth: ``torch.sum`` over a float32 buffer of ``gigabytes`` GB (>> L3)."""
    import torch

    torch.set_num_threads(threads)
    buf = torch.ones(int(gigabytes * 1e9) // 4, dtype=torch.float32)
    buf.sum()  # touch every page once before timing
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        buf.sum()
        seconds.append(time.perf_counter() - start)
    rates = [buf.numel() * 4 / s / 1e9 for s in seconds]
    return {"threads": threads, "buffer_bytes": buf.numel() * 4, "gb_s": summary(rates)}


# --------------------------------------------------------------------------- orchestrator side


def _run(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return proc.stdout


def _worker(argv: list[str]) -> dict[str, Any]:
    """Run this script's ``worker``/``bandwidth`` mode in a fresh process; its last stdout line is JSON."""
    try:
        return run_json(Path(__file__).resolve(), argv, cwd=REPO)
    except RuntimeError as e:
        sys.exit(str(e))


def program_dir(models_dir: Path, preset: str, recipe: str, chunk: int) -> Path:
    return models_dir / preset / f"{recipe}_c{chunk}"


def ensure_artifacts(models_dir: Path, preset: str, args: argparse.Namespace) -> None:
    """Create the model directory and the programs once; skip whatever already exists."""
    model = models_dir / preset / "model"
    if not (model / "model.safetensors").is_file():
        print(f"init-model {preset} -> {model}", file=sys.stderr)
        _run([*CLI, "init-model", "--preset", preset, "-o", str(model)])
    for recipe in RECIPES:
        out = program_dir(models_dir, preset, recipe, args.prompt_len)
        if (out / "model.pte").is_file():
            continue
        print(f"export {preset} {recipe} -> {out} (slow on 2 cores)", file=sys.stderr)
        _run([*CLI, "export", str(model), "-o", str(out), "--recipe", recipe, "--max-context-len", str(args.max_context_len),
              "--prefill-chunk", str(args.prompt_len), "--no-verify"])


def write_inputs(models_dir: Path, preset: str, args: argparse.Namespace) -> Path:
    """One set of inputs per preset, shared by every backend: normalised tiles and prompt embeddings."""
    import torch

    from mobile_mllm import contract
    from mobile_mllm.export.manifest import read_manifest

    report = json.loads((program_dir(models_dir, preset, "fp32", args.prompt_len) / "export_report.json").read_text())
    manifest = read_manifest(program_dir(models_dir, preset, "fp32", args.prompt_len))
    size = int(manifest[contract.M_VISION]["tile_size"])
    hidden = int(manifest[contract.M_HIDDEN_SIZE])
    gen = torch.Generator().manual_seed(0)
    path = models_dir / preset / "bench_inputs.pt"
    torch.save(
        {
            "tiles": torch.rand(4, 3, size, size, generator=gen) * 2 - 1,
            "embeds": torch.randn(1, args.prompt_len, hidden, generator=gen) * 0.02,
        },
        path,
    )
    return path


def weight_bytes_per_token(report: dict[str, Any]) -> int:
    """Weights one decode step reads: all of text_decoder (linears, lm_head, norms) + one embedding row."""
    modules = report["modules"]
    vocab = int(report["program"]["constant_methods"]["get_vocab_size"])
    return int(modules["text_decoder"]["weight_bytes"] + modules["token_embedding"]["weight_bytes"] / vocab)


def _rate(tokens: int, ms: list[float]) -> dict[str, Any]:
    return summary([tokens / (m / 1e3) for m in ms])


def summarize(raw: dict[str, Any], args: argparse.Namespace, bandwidth_gb_s: float) -> dict[str, Any]:
    """Derived numbers per backend: ms/tile, tok/s, MB, roofline fraction."""
    ms = raw["raw_ms"]
    s: dict[str, Any] = {
        "vision_ms_per_tile_b1": summary(ms["vision_b1_ms"]),
        "vision_ms_per_tile_b4": summary([m / 4 for m in ms["vision_b4_ms"]]) if "vision_b4_ms" in ms else None,
        "prefill_chunked_tok_s": _rate(args.prompt_len, ms["prefill_chunked_ms"]),
        "prefill_one_shot_tok_s": _rate(args.prompt_len, ms["prefill_one_shot_ms"]) if "prefill_one_shot_ms" in ms else None,
        "decode_tok_s": _rate(args.decode_tokens, ms["decode_ms"]),
        "peak_rss_bytes": raw["peak_rss_bytes"],
        "file_bytes": raw["file_bytes"],
        "weight_bytes_per_token": raw["weight_bytes_per_token"],
    }
    roof = bandwidth_gb_s * 1e9 / raw["weight_bytes_per_token"]
    s["roofline_tok_s"] = roof
    s["decode_fraction_of_roofline"] = s["decode_tok_s"]["median"] / roof
    return s


def _fmt_range(d: dict[str, Any] | None, digits: int) -> str:
    if d is None:
        return "n/a"
    return f"{d['median']:.{digits}f} ({d['min']:.{digits}f}–{d['max']:.{digits}f})"


def markdown_table(preset: str, backends: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    names = list(backends)
    digits = 2 if preset == "tiny" else 1
    rows = [
        ("vision ms/tile, batch 1", lambda s: _fmt_range(s["vision_ms_per_tile_b1"], digits + 1)),
        ("vision ms/tile, batch 4", lambda s: _fmt_range(s["vision_ms_per_tile_b4"], digits + 1)),
        (f"prefill tok/s, {args.chunk}-token chunks", lambda s: _fmt_range(s["prefill_chunked_tok_s"], 0)),
        (f"prefill tok/s, one-shot {args.prompt_len}", lambda s: _fmt_range(s["prefill_one_shot_tok_s"], 0)),
        (f"decode tok/s ({args.decode_tokens} after {args.prompt_len})", lambda s: _fmt_range(s["decode_tok_s"], 1)),
        ("peak RSS MB", lambda s: f"{s['peak_rss_bytes'] / 1e6:.0f}"),
        ("file MB", lambda s: f"{s['file_bytes'] / 1e6:.2f}"),
        ("weight MB read / token", lambda s: f"{s['weight_bytes_per_token'] / 1e6:.2f}"),
        ("roofline tok/s (BW ÷ bytes)", lambda s: f"{s['roofline_tok_s']:.0f}"),
        ("decode / roofline", lambda s: f"{100 * s['decode_fraction_of_roofline']:.0f} %"),
    ]
    lines = [f"| {preset} | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, fmt in rows:
        lines.append(f"| {label} | " + " | ".join(fmt(backends[n]) for n in names) + " |")
    return "\n".join(lines)


def _machine() -> dict[str, Any]:
    import torch
    from importlib.metadata import version

    model_name = ""
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            model_name = line.split(":", 1)[1].strip()
    return {
        "cpu": model_name,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "executorch": version("executorch"),
        "torchao": version("torchao"),
    }


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    models_dir = Path(args.models_dir)
    results: dict[str, Any] = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: v for k, v in vars(args).items() if k != "mode"},
        "machine": _machine(),
        "loadavg_start": loadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "presets": {},
    }
    for preset in args.presets:
        ensure_artifacts(models_dir, preset, args)
    bw_argv = ["bandwidth", "--threads", str(args.threads), "--gigabytes", str(args.bandwidth_gb)]
    results["bandwidth_start"] = _worker(bw_argv)
    for preset in args.presets:
        inputs = write_inputs(models_dir, preset, args)
        targets = {"eager fp32": ("eager", models_dir / preset / "model")}
        targets.update({f".pte {r}": ("pte", program_dir(models_dir, preset, r, args.prompt_len)) for r in RECIPES})
        # Control, when present: the same recipe exported with the shipped chunk (--prefill-chunk = --chunk),
        # to show whether a program sized for one-shot prefill changes the chunked numbers.
        for r in RECIPES:
            control = program_dir(models_dir, preset, r, args.chunk)
            if (control / "model.pte").is_file() and args.chunk != args.prompt_len:
                targets[f".pte {r} (c{args.chunk} program)"] = ("pte", control)
        fp32_report = json.loads((targets[".pte fp32"][1] / "export_report.json").read_text())
        raw_all = {}
        for name, (backend, path) in targets.items():
            print(f"{preset}: {name} ...", file=sys.stderr)
            raw = _worker(["worker", "--backend", backend, "--path", str(path), "--inputs", str(inputs),
                           "--threads", str(args.threads), "--repeats", str(args.repeats), "--chunk", str(args.chunk),
                           "--decode-tokens", str(args.decode_tokens), "--max-context-len", str(args.max_context_len)])
            if backend == "eager":
                raw["file_bytes"] = (path / "model.safetensors").stat().st_size
                raw["weight_bytes_per_token"] = weight_bytes_per_token(fp32_report)  # eager reads fp32 weights
            else:
                report = json.loads((path / "export_report.json").read_text())
                raw["file_bytes"] = (path / "model.pte").stat().st_size
                raw["weight_bytes_per_token"] = weight_bytes_per_token(report)
                raw["export_report_modules"] = report["modules"]
            raw_all[name] = raw
        results["presets"][preset] = {"raw": raw_all}
    results["bandwidth_end"] = _worker(bw_argv)
    # Roofline = an upper bound, so the best rate seen before or after (contention only lowers it).
    bandwidth = max(results["bandwidth_start"]["gb_s"]["max"], results["bandwidth_end"]["gb_s"]["max"])
    results["roofline_bandwidth_gb_s"] = bandwidth
    for preset, entry in results["presets"].items():
        entry["summary"] = {name: summarize(raw, args, bandwidth) for name, raw in entry["raw"].items()}
        entry["table"] = markdown_table(preset, entry["summary"], args)
    results["loadavg_end"] = loadavg()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return results


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode")
    w = sub.add_parser("worker", help="(internal) measure one backend")
    w.add_argument("--backend", choices=("eager", "pte"), required=True)
    w.add_argument("--path", required=True)
    w.add_argument("--inputs", required=True)
    b = sub.add_parser("bandwidth", help="(internal) measure read bandwidth")
    b.add_argument("--gigabytes", type=float, default=2.0)
    for q in (p, w, b):
        q.add_argument("--threads", type=int, default=2, help="torch and ExecuTorch threads (default: 2)")
    for q in (p, w):
        q.add_argument("--repeats", type=int, default=5, help="timed repetitions per measurement (default: 5)")
        q.add_argument("--chunk", type=int, default=128, help="prefill chunk of the chunked prefill (default: 128)")
        q.add_argument("--decode-tokens", type=int, default=64, help="decode steps timed (default: 64)")
        q.add_argument("--max-context-len", type=int, default=1024, help="KV-cache positions (default: 1024)")
    p.add_argument("--models-dir", default="/tmp/bench_models", help="models and exports (created, reused)")
    p.add_argument("--presets", nargs="+", default=["tiny", "mid"])
    p.add_argument("--prompt-len", type=int, default=512, help="prefill length = the programs' --prefill-chunk")
    p.add_argument("--bandwidth-gb", type=float, default=2.0, help="buffer of the bandwidth read (default: 2)")
    p.add_argument("--json-out", default=None,
                   help="raw numbers (default: bench/results/bench_export_<presets>_t<threads>.json)")
    return p


def main() -> None:
    args = _parser().parse_args()
    if args.mode == "worker":
        print(json.dumps(run_worker(args)))
        return
    if args.mode == "bandwidth":
        print(json.dumps(measure_bandwidth(args.threads, args.gigabytes, repeats=7)))
        return
    results = run_benchmark(args)
    default = REPO / "bench" / "results" / f"bench_export_{'_'.join(args.presets)}_t{args.threads}.json"
    out = Path(args.json_out) if args.json_out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    bw = results["bandwidth_start"]["gb_s"]
    print(f"read bandwidth ({args.threads} threads, {args.bandwidth_gb} GB torch.sum): "
          f"{bw['median']:.1f} GB/s (min {bw['min']:.1f}, max {bw['max']:.1f}); "
          f"at end {results['bandwidth_end']['gb_s']['median']:.1f} GB/s; roofline uses the best sample, "
          f"{results['roofline_bandwidth_gb_s']:.1f} GB/s")
    print(f"load average: start {results['loadavg_start']}, end {results['loadavg_end']}")
    for preset, r in results["presets"].items():
        print()
        print(r["table"])
    print(f"\nraw numbers: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
