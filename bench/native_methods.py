"""Method by method, the native runner against ExecuTorch's Python runtime on bit-identical inputs (issue 17).

Why: the built-in w4 program's greedy answers through the native runner and the host runner
differ on 3 of 223 questions, and its logits by up to ~0.5. This separates where that comes from.
Both runtimes get the same input bytes (the native runner through its ``--calls`` debug mode):

- ``token_embedding`` and ``vision_encoder``: no custom ops, the same XNNPACK / quantized kernels
  on both sides;
- ``text_decoder`` with ONE position at start 0 (attention over a single key: both softmaxes are
  exactly 1, so our ``llama::custom_sdpa`` and ExecuTorch's agree bit for bit), then a prefill of
  ``--positions`` positions at 0 and ``--steps`` single-position decode steps after it (attention
  over many keys: the two sdpa kernels round differently);
- the amplification: the host runtime alone, the same prefill with every input element moved by
  one ulp up or down (``np.nextafter``): how far the logits move when nothing but rounding changes.

With ``--question TSV:INDEX`` (a question of ``eval/synth_*.tsv``, asked as bench/native_parity.py
asks it) it instead records every ``text_decoder`` call of the host session's greedy answer (the
chunked prefill and each decode step), replays the same input bytes through the native runner,
and reports per call the logits' max |diff| and the host's margin between its two best tokens:
where a greedy pick flips, the margin says whether it was a near tie.

Usage (from a checkout root, after ``android_app/runner/build.sh x86_64 BUILD``):
    python bench/native_methods.py PROGRAM_DIR BUILD/mobile_mllm_runner [--positions 64 (at most max_seq_len)] [--steps 8]
    python bench/native_methods.py PROGRAM_DIR BUILD/mobile_mllm_runner --question synth_mcq:7
Prints one JSON object: max |diff| per comparison and the largest logit, per program.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def run_calls(native: str, pte: Path, calls: list[dict], folder: Path) -> dict[str, np.ndarray]:
    """Run ``calls`` (``{"name", "method", "inputs": [tensor, ...]}``) through the native runner's ``--calls`` mode."""
    lines = []
    for c in calls:
        specs = []
        for i, x in enumerate(c["inputs"]):
            path = folder / f"{c['name']}.in{i}.bin"
            x.contiguous().numpy().tofile(path)
            specs.append({"dtype": str(x.dtype).removeprefix("torch."), "shape": list(x.shape), "file": str(path)})
        lines.append({"method": c["method"], "inputs": specs, "output": str(folder / f"{c['name']}.out.bin")})
    (folder / "calls.jsonl").write_text("".join(json.dumps(c) + "\n" for c in lines))
    proc = subprocess.run([native, "--calls", str(folder / "calls.jsonl"), "--pte", str(pte)], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    return {c["name"]: np.fromfile(folder / f"{c['name']}.out.bin", dtype=np.float32) for c in calls}


def question(program: Path, native: str, which: str) -> dict:
    """Replay one benchmark question's text_decoder calls (recorded on the host) through the native runner."""
    sys.path.insert(0, str(Path(__file__).parent))
    from native_parity import requests

    from mobile_mllm.runtime.pte import open_program_dir
    from mobile_mllm.runtime.session import Session

    with tempfile.TemporaryDirectory() as tmp:
        req = next(r for r in requests(Path(tmp), None) if r["id"] == which)
        b = open_program_dir(program)
        recorded: list[tuple] = []
        decoder = b.methods.text_decoder

        def record(embeds, start_pos):  # noqa: ANN001, ANN202
            logits = decoder(embeds, start_pos)
            recorded.append((embeds.clone(), start_pos.reshape(1).clone(), logits.clone()))
            return logits

        b.methods.text_decoder = record
        session = Session(b.methods, tokenizer=b.tokenizer, prompt=b.prompt, vision=b.vision, eos_ids=b.eos_ids)
        answer = session.ask(req["prompt"], req["image"])
        calls = [{"name": f"call{i}", "method": "text_decoder", "inputs": [e, p]} for i, (e, p, _) in enumerate(recorded)]
        out = run_calls(native, program / "model.pte", calls, Path(tmp))
    rows = []
    for i, (e, p, logits) in enumerate(recorded):
        want = logits.reshape(-1).numpy()
        got = out[f"call{i}"]
        top2 = np.sort(want)[-2:]
        rows.append({"call": i, "positions": int(e.shape[1]), "start": int(p[0]),
                     "max_abs_diff": float(np.abs(got - want).max()), "host_top2_margin": float(top2[1] - top2[0]),
                     "same_argmax": bool(got.argmax() == want.argmax())})
    return {"program": str(program), "question": which, "host_answer": answer.text, "calls": rows}


def main() -> None:
    import torch

    from mobile_mllm.config import from_dict
    from mobile_mllm.runtime.pte import PteMethods
    from mobile_mllm.vision import preprocess
    from mobile_mllm.vision.config import VisionConfig

    p = argparse.ArgumentParser()
    p.add_argument("program")
    p.add_argument("native")
    p.add_argument("--image", default="demo/sample.png")
    p.add_argument("--positions", type=int, default=64)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--question", default=None, help="TSV:INDEX of eval/synth_*.tsv, e.g. synth_mcq:7")
    a = p.parse_args()
    if a.question:
        print(json.dumps(question(Path(a.program), a.native, a.question), indent=1))
        return
    program = Path(a.program)
    manifest = json.loads((program / "manifest.json").read_text())
    tiles = preprocess(a.image, from_dict(VisionConfig, manifest["vision"], source="manifest")).tiles
    batch = tiles[: manifest["tile_batch"]].contiguous()
    rng = np.random.default_rng(0)

    def fresh() -> PteMethods:  # a new program: empty KV cache
        return PteMethods(program / "model.pte", tile_batch=manifest["tile_batch"])

    host = fresh()
    vocab = int(host.constants.get("get_vocab_size", 0)) or None
    a.positions = min(a.positions, host.max_seq_len)  # one text_decoder call
    ids = torch.tensor(rng.integers(0, vocab or 1000, (1, a.positions)), dtype=torch.long)
    vision = host.vision_encoder(batch)
    tokens = host.token_embedding(ids)
    # a realistic decoder input: image tokens then text tokens (what a prompt's prefill carries)
    embeds = torch.cat([vision.reshape(1, -1, vision.shape[-1]), tokens], dim=1)[:, : a.positions].contiguous()
    steps = [host.token_embedding(torch.tensor([[int(i)]])) for i in rng.integers(0, vocab or 1000, a.steps)]

    pos = lambda n: torch.tensor([n], dtype=torch.long)  # noqa: E731
    calls = [{"name": "vision", "method": "vision_encoder", "inputs": [batch]},
             {"name": "tokens", "method": "token_embedding", "inputs": [ids]},
             {"name": "one_position", "method": "text_decoder", "inputs": [embeds[:, :1], pos(0)]},  # rewritten next
             {"name": "prefill", "method": "text_decoder", "inputs": [embeds, pos(0)]}]
    calls += [{"name": f"step{k}", "method": "text_decoder", "inputs": [e, pos(a.positions + k)]} for k, e in enumerate(steps)]
    with tempfile.TemporaryDirectory() as tmp:
        native = run_calls(a.native, program / "model.pte", calls, Path(tmp))

    host = fresh()  # the same call sequence on the host, from an empty cache
    want = {"vision": host.vision_encoder(batch), "tokens": host.token_embedding(ids),
            "one_position": host.text_decoder(embeds[:, :1], pos(0)), "prefill": host.text_decoder(embeds, pos(0))}
    for k, e in enumerate(steps):
        want[f"step{k}"] = host.text_decoder(e, pos(a.positions + k))
    # amplification: the host against itself, every input element one ulp up or down (a coin per element)
    x = embeds.numpy()
    nudged = torch.from_numpy(np.where(rng.integers(0, 2, x.shape) == 1, np.nextafter(x, np.float32(np.inf)),
                                       np.nextafter(x, np.float32(-np.inf))).astype(np.float32))
    self_gap = (fresh().text_decoder(embeds, pos(0)) - fresh().text_decoder(nudged, pos(0))).abs().max().item()

    result = {"program": str(program), "precision": manifest["precision"]["modules"]["text_decoder"],
              "positions": a.positions, "steps": a.steps}
    for k, v in want.items():
        v = v.reshape(-1).numpy()
        result[k] = {"max_abs_diff": float(np.abs(native[k] - v).max()), "max_abs": float(np.abs(v).max()),
                     "bit_identical": bool(np.array_equal(native[k], v)),
                     **({"same_argmax": bool(native[k].argmax() == v.argmax())} if k not in ("vision", "tokens") else {})}
    result["host_vs_host_one_ulp_input"] = {"max_abs_diff": self_gap}
    print("{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in result.items()) + "\n}")


if __name__ == "__main__":
    main()
