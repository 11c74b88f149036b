"""Fast loop on decoder speed: export ONLY ``text_decoder``, time it, profile it, compare with peers.

A full ``mobile-mllm export`` of the ``mid`` preset takes 19-49 min on 2 cores; the decoder is
what decides prefill and decode speed, so this script exports just that method with the
library's own path (``export.decoder.build_kv_decoder(model.registry.decoder_parts(model))`` -> ``quant.apply.quantize_modules``
with the recipe -> ``torch.export`` with the program's dynamic shape ->
``export.program.lower_methods`` -> ``to_executorch_program``), optionally on the first
``--layers`` blocks only (the output head is always there), and times it in a fresh process:

* prefill of ``--prompt-len`` positions in ``--chunk``-position calls and in one call;
* decode: ``--decode-tokens`` one-position calls right after the prompt (KV cache filled);
* optionally an ETDump profile (per-operator and per-XNNPACK-kernel time; ``--profile``).

Modes (one line of JSON on stdout each, except ``compare``, which prints a table):

    export   model dir -> decoder-only .pte (+ ``<pte>.json``: delegation summary, stage times)
    hf       model dir -> a transformers Qwen2 checkpoint with the same weights (for the peers)
    time     one program (ours, or optimum-executorch's ``forward``) -> rates (+ profile)
    compare  ours and the peers one after the other in ONE run, with ratios (see bench/peers/)

Example:
    .venv/bin/python bench/bench_decoder.py export --out /tmp/bench_models/mid/dec_w4.pte
    .venv/bin/python bench/bench_decoder.py time /tmp/bench_models/mid/dec_w4.pte --profile /tmp/p.json
    .venv/bin/python bench/bench_decoder.py compare            # after bench/peers/setup_peers.sh

This is a script, not library code; numbers go to ``bench/RESULTS.md`` by hand with the command.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
from measure import loadavg, run_json, set_threads, summary  # noqa: E402  (bench/ is the script dir)

PEERS = REPO / "bench" / "peers"
DEFAULT_MODEL = "/tmp/bench_models/mid/model"


# --------------------------------------------------------------------------- export (ours)


def _plain_attention_class() -> type:
    """Our cache attention rewritten without ExecuTorch's LLM custom ops (issue 17's alternative, measured here).

    The cache write is a slice assignment into the buffer (exported as ``slice_scatter`` plus the
    buffer write-back) and attention is matmul + causal mask + softmax over all ``max_context_len``
    cache positions (static shapes; positions past the current one are masked), K/V heads repeated
    for grouped-query attention: what a runtime without ``llama::update_cache`` /
    ``llama::custom_sdpa`` (the torch-free libraries of the executorch wheel) can run.
    """
    import torch

    from mobile_mllm.export.decoder import _CacheAttention

    class PlainAttention(_CacheAttention):
        def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, start: int) -> torch.Tensor:
            length = x.shape[1]
            q, k, v = self.rotated_qkv(x, cos, sin)
            self.k_cache[:, start : start + length] = k
            self.v_cache[:, start : start + length] = v
            group = self.num_heads // self.num_kv_heads
            keys = self.k_cache.transpose(1, 2).repeat_interleave(group, dim=1)  # [1, H, L, D]
            values = self.v_cache.transpose(1, 2).repeat_interleave(group, dim=1)
            scores = q.transpose(1, 2) @ keys.transpose(2, 3) * self.head_dim**-0.5  # [1, H, T, L]
            positions = torch.arange(self.k_cache.shape[1])
            visible = positions[None, :] <= (start + torch.arange(length))[:, None]
            scores = scores.masked_fill(~visible, float("-inf"))
            out = torch.softmax(scores, dim=-1) @ values  # [1, H, T, D]
            return self.o_proj(out.transpose(1, 2).reshape(1, length, self.num_heads * self.head_dim))

    return PlainAttention


def _load_truncated(model_dir: str, layers: int | None, max_context_len: int) -> Any:
    """The eager model at fp32 with only its first ``layers`` decoder blocks (None: all)."""
    import torch

    from mobile_mllm.model import load_model

    model = load_model(model_dir, dtype=torch.float32, max_context_len=max_context_len)
    if layers is not None:
        model.text_decoder.layers = model.text_decoder.layers[:layers]
    return model


def export_decoder(args: argparse.Namespace) -> dict[str, Any]:
    """Export ``text_decoder`` alone through the library's path; write ``args.out`` and ``<out>.json``."""
    from mobile_mllm import contract
    from mobile_mllm.export.decoder import build_kv_decoder
    from mobile_mllm.export.program import TargetConfig, _delegation_counts, lower_one_method, to_executorch_program
    from mobile_mllm.model.registry import decoder_parts
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import Precision, build_recipe, preset

    times: dict[str, float] = {}
    start = time.perf_counter()
    model = _load_truncated(args.model_dir, args.layers, args.max_context_len)
    times["load_s"] = time.perf_counter() - start
    cfg = TargetConfig(max_context_len=args.max_context_len, prefill_chunk=args.prefill_chunk, tile_batch=1)
    quant = preset(args.recipe)
    if args.lm_head:
        import dataclasses

        quant = dataclasses.replace(quant, lm_head=Precision(args.lm_head))
    start = time.perf_counter()
    decoder = build_kv_decoder(decoder_parts(model), args.max_context_len).eval()  # no copy: the model is ours alone
    if args.attention == "plain":  # the same modules and buffers, attention without the llama:: ops
        plain = _plain_attention_class()
        for block in decoder.layers:
            block.self_attn.__class__ = plain
    recipe = build_recipe(quant, vision_method=contract.VISION_ENCODER, decoder_method=contract.TEXT_DECODER,
                          embedding_method=contract.TOKEN_EMBEDDING)
    report = quantize_modules({contract.TEXT_DECODER: decoder}, recipe)
    times["quantize_s"] = time.perf_counter() - start
    start = time.perf_counter()
    partitioners = None
    if args.partitioners == "single":  # experiment: one XnnpackPartitioner for every precision
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner

        partitioners = [XnnpackPartitioner()]
    edge = lower_one_method(model, contract.TEXT_DECODER, decoder, cfg, partitioners=partitioners)
    times["export_and_lower_s"] = time.perf_counter() - start
    delegated = _delegation_counts(edge, [contract.TEXT_DECODER])[contract.TEXT_DECODER]
    gm = edge.exported_program(contract.TEXT_DECODER).graph_module
    outside = collections.Counter(
        re.sub(r"<EdgeOpOverload: ([^>]*)>.*", r"\1", str(n.target)) for n in gm.graph.nodes
        if n.op == "call_function" and "executorch_call_delegate" not in str(n.target) and "getitem" not in str(n.target)
    )
    start = time.perf_counter()
    program = to_executorch_program(edge)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as fh:
        program.write_to_file(fh)
    times["serialize_s"] = time.perf_counter() - start
    info = {
        "pte": str(out),
        "size_bytes": out.stat().st_size,
        "layers": len(model.text_decoder.layers),
        "hidden_size": model.hidden_size,
        "vocab_size": model.vocab_size,
        "recipe": args.recipe,
        "lm_head": quant.lm_head.value,
        "max_context_len": args.max_context_len,
        "prefill_chunk": args.prefill_chunk,
        "partitioners": args.partitioners,
        "attention": args.attention,
        "precision": report.module_precision(),
        "delegated": delegated,
        "ops_outside_delegates": dict(outside.most_common()),
        "times_s": {k: round(v, 1) for k, v in times.items()},
    }
    Path(str(out) + ".json").write_text(json.dumps(info, indent=1) + "\n")
    return info


# --------------------------------------------------------------------------- HF checkpoint (peers)


def save_hf(args: argparse.Namespace) -> dict[str, Any]:
    """Write the model's decoder (same weights, same truncation) as a transformers Qwen2/Llama checkpoint."""
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    model = _load_truncated(args.model_dir, args.layers, args.max_context_len)
    dec = model.text_decoder
    config = dec.layers[0].self_attn.config
    config.num_hidden_layers = len(dec.layers)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = config.layer_types[: len(dec.layers)]
    if hasattr(config, "max_window_layers"):
        config.max_window_layers = len(dec.layers)
    config.bos_token_id = model.bos_id
    config.eos_token_id = model.eos_ids[0]
    with torch.device("meta"):
        hf = AutoModelForCausalLM.from_config(config)
    hf.model.layers = dec.layers
    hf.model.norm = dec.norm
    hf.model.embed_tokens = model.token_embedding.embedding
    hf.model.rotary_emb = dec.rotary_emb
    hf.lm_head = dec.lm_head
    out = Path(args.out)
    hf.save_pretrained(out)
    tok = PreTrainedTokenizerFast(tokenizer_file=str(Path(args.model_dir) / "tokenizer.json"))
    tok.save_pretrained(out)
    return {"hf_dir": str(out), "architecture": type(hf).__name__, "layers": len(dec.layers)}


# --------------------------------------------------------------------------- timing (worker)


class _Program:
    """One decoder call ``step(start, length)`` over a program of either kind, on fixed random inputs."""

    def __init__(self, path: str, kind: str, profile: bool, prompt_len: int) -> None:
        import torch

        from mobile_mllm.runtime.pte import load_executorch_kernels

        runtime = load_executorch_kernels()
        self.program = runtime.load_program(path, enable_etdump=profile) if profile else runtime.load_program(path)
        self.kind = kind
        gen = torch.Generator().manual_seed(0)
        if kind == "ours":
            self.method = self.program.load_method("text_decoder")
            width = self.method.metadata.input_tensor_meta(0).sizes()[-1]
            self.inputs = torch.randn(1, prompt_len + 1, width, generator=gen) * 0.02
        else:  # optimum-executorch text-generation program: forward(input_ids [1, T], cache_position [T])
            self.method = self.program.load_method("forward")
            self.inputs = torch.randint(0, 1000, (1, prompt_len + 1), generator=gen)

    def step(self, start: int, length: int) -> Any:
        import torch

        x = self.inputs[:, start: start + length].contiguous() if start + length <= self.inputs.shape[1] \
            else self.inputs[:, :length].contiguous()
        if self.kind == "ours":
            return self.method.execute([x, torch.tensor([start], dtype=torch.long)])
        return self.method.execute([x, torch.arange(start, start + length, dtype=torch.long)])


def time_program(args: argparse.Namespace) -> dict[str, Any]:
    """Prefill (chunked and one-shot) and decode rates of one program, in this (fresh) process."""
    out: dict[str, Any] = {"pte": args.pte, "kind": args.kind, "loadavg_start": loadavg()}
    out.update(set_threads(args.threads))
    prog = _Program(args.pte, args.kind, bool(args.profile), args.prompt_len)
    n = args.prompt_len

    def prefill(chunk: int) -> float:
        start = time.perf_counter()
        for pos in range(0, n, chunk):
            prog.step(pos, min(chunk, n - pos))
        return time.perf_counter() - start

    def decode() -> float:
        start = time.perf_counter()
        for i in range(args.decode_tokens):
            prog.step(n + i, 1)
        return time.perf_counter() - start

    rates: dict[str, list[float]] = {"prefill_chunked_tok_s": [], "prefill_one_shot_tok_s": [], "decode_tok_s": []}
    if args.profile and args.profile_phase == "prefill":  # profile = one chunked prefill of the prompt
        rates["prefill_chunked_tok_s"].append(n / prefill(args.chunk))
    elif args.profile:  # profile = decode calls only (positions after the prompt; the cache content does not matter)
        rates["decode_tok_s"].append(args.decode_tokens / decode())
    else:
        one_shot = not args.chunked_only  # a program exported with prefill_chunk < prompt-len cannot take it in one call
        prefill(args.chunk), one_shot and prefill(n), decode()  # warm-up: every shape once
        for _ in range(args.repeats):
            rates["prefill_chunked_tok_s"].append(n / prefill(args.chunk))
            if one_shot:
                rates["prefill_one_shot_tok_s"].append(n / prefill(n))
            rates["decode_tok_s"].append(args.decode_tokens / decode())
    out.update({k: summary(v, 3) for k, v in rates.items() if v})
    if args.profile:
        etdump = args.profile + ".etdump"
        prog.program.write_etdump_result_to_file(etdump, args.profile + ".debug")
        from mobile_mllm.runtime.etdump import aggregate_events

        rows = aggregate_events(etdump)
        out["profile_phase"] = args.profile_phase
        out["profile_calls"] = args.decode_tokens if args.profile_phase == "decode" else -(-n // args.chunk)
        out["profile"] = rows
        Path(args.profile).write_text(json.dumps(out, indent=1) + "\n")
    out["loadavg_end"] = loadavg()
    return out


# --------------------------------------------------------------------------- llama.cpp (peer)


def time_llamacpp(gguf: Path, args: argparse.Namespace) -> dict[str, Any]:
    """llama-bench on a GGUF: one-shot and 128-chunk prefill of the prompt, decode after it."""
    bench = PEERS / ".llamacpp" / "build" / "bin" / "llama-bench"
    n, t, reps = str(args.prompt_len), str(args.threads), str(args.repeats)
    rows: dict[str, dict[str, Any]] = {}
    tests = {
        "prefill_one_shot_tok_s": ["-p", n, "-n", "0", "-b", n, "-ub", n],
        "prefill_chunked_tok_s": ["-p", n, "-n", "0", "-b", n, "-ub", str(args.chunk)],
        "decode_tok_s": ["-p", "0", "-n", str(args.decode_tokens), "-d", n],
    }
    for key, extra in tests.items():
        proc = subprocess.run([str(bench), "-m", str(gguf), "-t", t, "-r", reps, "-o", "json", *extra],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"llama-bench failed: {proc.stderr[-2000:]}")
        result = json.loads(proc.stdout)[0]
        samples = result.get("samples_ts") or [result["avg_ts"]]
        rows[key] = summary([float(x, 3) for x in samples])
    return rows


# --------------------------------------------------------------------------- orchestration


def _worker(argv: list[str], python: str = sys.executable) -> dict[str, Any]:
    return run_json(Path(__file__).resolve(), argv, python=python, cwd=REPO)


def _time_argv(pte: Path, kind: str, args: argparse.Namespace) -> list[str]:
    return ["time", str(pte), "--kind", kind, "--threads", str(args.threads), "--repeats", str(args.repeats),
            "--chunk", str(args.chunk), "--prompt-len", str(args.prompt_len), "--decode-tokens", str(args.decode_tokens)]


def compare(args: argparse.Namespace) -> dict[str, Any]:
    """Ours and every peer present, one after the other, ``--rounds`` times interleaved; ratios per round."""
    models = Path(args.models_dir)
    targets: dict[str, tuple[str, Path]] = {}
    for label in args.ours:
        name, _, path = label.partition("=")
        targets[name] = ("ours", Path(path))
    optimum = models / "optimum_8da4w" / "model.pte"
    if optimum.is_file():
        targets["optimum-executorch 8da4w"] = ("optimum", optimum)
    gguf = models / "gguf" / "model-q4_0.gguf"
    results: dict[str, Any] = {"loadavg_start": loadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "settings": {k: v for k, v in vars(args).items() if k != "mode"}, "rounds": []}
    for _ in range(args.rounds):
        round_: dict[str, Any] = {}
        for name, (kind, path) in targets.items():
            print(f"{name} ...", file=sys.stderr)
            round_[name] = _worker(_time_argv(path, kind, args))
        if gguf.is_file():
            print("llama.cpp Q4_0 ...", file=sys.stderr)
            round_["llama.cpp Q4_0"] = time_llamacpp(gguf, args)
        round_["loadavg"] = loadavg()
        results["rounds"].append(round_)
    results["loadavg_end"] = loadavg()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    return results


METRICS = ("prefill_chunked_tok_s", "prefill_one_shot_tok_s", "decode_tok_s")


def compare_table(results: dict[str, Any], args: argparse.Namespace) -> str:
    """Medians over rounds of each round's median, and each name's ratio to the first ("ours") column."""
    names = [k for k in results["rounds"][0] if k != "loadavg"]
    labels = {"prefill_chunked_tok_s": f"prefill tok/s, {args.chunk}-chunks of {args.prompt_len}",
              "prefill_one_shot_tok_s": f"prefill tok/s, one-shot {args.prompt_len}",
              "decode_tok_s": f"decode tok/s ({args.decode_tokens} after {args.prompt_len})"}
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric in METRICS:
        cells = []
        base = None
        for name in names:
            per_round = [r[name][metric]["median"] for r in results["rounds"] if metric in r[name]]
            value = statistics.median(per_round) if per_round else None
            base = value if base is None else base
            if value is None:
                cells.append("n/a")
            else:
                spread = f" ({min(per_round):.0f}–{max(per_round):.0f})" if len(per_round) > 1 else ""
                cells.append(f"{value:.1f}{spread}")
        lines.append(f"| {labels[metric]} | " + " | ".join(cells) + " |")
    first = names[0]
    for name in names[1:]:
        ratios = []
        for metric in METRICS:
            rs = [r[first][metric]["median"] / r[name][metric]["median"] for r in results["rounds"]
                  if metric in r[first] and metric in r[name]]
            ratios.append(f"{metric.replace('_tok_s', '')} {statistics.median(rs):.2f}×" if rs else f"{metric} n/a")
        lines.append(f"\n{first} ÷ {name} (median of per-round ratios): " + ", ".join(ratios))
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    e = sub.add_parser("export", help="export text_decoder alone")
    h = sub.add_parser("hf", help="write a transformers checkpoint of the same decoder weights")
    for q in (e, h):
        q.add_argument("--model-dir", default=DEFAULT_MODEL, help=f"model directory (default {DEFAULT_MODEL})")
        q.add_argument("--layers", type=int, default=None, help="keep only the first N decoder blocks (default all)")
        q.add_argument("--out", required=True)
        q.add_argument("--max-context-len", type=int, default=1024, help="KV-cache positions (default 1024)")
    e.add_argument("--prefill-chunk", type=int, default=512, help="longest text_decoder call (default 512)")
    e.add_argument("--recipe", default="w4", help="precision preset (default w4)")
    e.add_argument("--lm-head", choices=("w8", "w4", "fp32"), default=None, help="override the preset's lm_head")
    e.add_argument("--partitioners", choices=("backend", "single"), default="backend",
                   help="backend: the cpu backend's list (default); single: one XnnpackPartitioner for all "
                        "precisions (tried and reverted, see bench/RESULTS.md)")
    e.add_argument("--attention", choices=("custom", "plain"), default="custom",
                   help="custom: llama::update_cache + llama::custom_sdpa (the library's decoder, default); plain: "
                        "slice write + matmul/softmax over the whole cache, no custom ops (issue 17's alternative)")
    t = sub.add_parser("time", help="time one program in this process")
    t.add_argument("pte")
    t.add_argument("--kind", choices=("ours", "optimum"), default="ours")
    t.add_argument("--chunked-only", action="store_true", help="skip the one-call prefill (prompt-len > max_seq_len)")
    t.add_argument("--profile", default=None, help="write an ETDump profile to this JSON path")
    t.add_argument("--profile-phase", choices=("decode", "prefill"), default="decode",
                   help="what --profile records: the decode calls or one chunked prefill (default decode)")
    c = sub.add_parser("compare", help="ours and the peers in one run")
    c.add_argument("--models-dir", default="/tmp/bench_models/mid", help="where dec_*.pte, optimum_8da4w/, gguf/ live")
    c.add_argument("--ours", nargs="+", required=True, help="NAME=PATH.pte of our programs (first = ratio base)")
    c.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2)")
    c.add_argument("--json-out", default=str(REPO / "bench" / "results" / "bench_decoder_compare.json"))
    for q in (t, c):
        q.add_argument("--threads", type=int, default=2)
        q.add_argument("--repeats", type=int, default=3)
        q.add_argument("--chunk", type=int, default=128)
        q.add_argument("--prompt-len", type=int, default=512)
        q.add_argument("--decode-tokens", type=int, default=64)
    return p


def main() -> None:
    args = _parser().parse_args()
    if args.mode == "export":
        print(json.dumps(export_decoder(args)))
    elif args.mode == "hf":
        print(json.dumps(save_hf(args)))
    elif args.mode == "time":
        result = time_program(args)
        print(json.dumps({k: v for k, v in result.items() if k != "profile"} | {"profile_top": result.get("profile", [])[:25]}))
    else:
        results = compare(args)
        out = Path(args.json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        print(f"load average: start {results['loadavg_start']}, end {results['loadavg_end']}")
        print(compare_table(results, args))


if __name__ == "__main__":
    main()
