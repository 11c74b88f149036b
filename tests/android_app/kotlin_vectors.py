"""Vectors the Python toolkit writes for the Android app's pure-Kotlin core (android_app/app/core).

Each file holds inputs and what mobile_mllm computes from them (tiles through Pillow, ids through
Hugging Face tokenizers, layouts through runtime.layout, schema errors through manifest_schema,
records through runtime.stats), so the JVM tests compare the Kotlin port with the real thing.
SmolVLM's vectors come from a tiny random SmolVLM written in the HF layout (model/smolvlm/synthetic.py):
its tokenizer, the family's loader's vision settings and prompt format, and the exporter's manifest of it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from mobile_mllm.config import from_dict, to_dict
from mobile_mllm.errors import MobileMLLMError
from mobile_mllm.export.manifest import upgrade_manifest
from mobile_mllm.manifest_schema import SCHEMA_FILE, manifest_errors
from mobile_mllm.model.adapter import PromptFormat
from mobile_mllm.model.reference.prompt import REFERENCE_PROMPT
from mobile_mllm.model.reference.tokenizer import BUNDLED_TOKENIZER
from mobile_mllm.runtime.layout import TileRef, first_turn, image_block, next_turn, count_positions, special_token_ids
from mobile_mllm.runtime.stats import Stats
from mobile_mllm.runtime.stats_text import stats_rows
from mobile_mllm.vision.config import GridPolicy, Resample, ThumbnailPosition, VisionConfig
from mobile_mllm.vision.grid import Grid, Size
from mobile_mllm.vision.normalize import normalize
from mobile_mllm.vision.processor import plan_tiles, preprocess
from mobile_mllm.vision.tiling import render_tiles

ASSETS = Path(__file__).parent / "assets"
V1_MANIFEST = ASSETS / "manifest_v1_tiny_fp32.json"

# (name, VisionConfig, image sizes with pixels); small tiles keep the files small, one 384 case is real size
PIXEL_CONFIGS: tuple[tuple[str, VisionConfig, tuple[tuple[int, int], ...]], ...] = (
    ("relaxed_bicubic", VisionConfig(tile_size=32, max_side=3, tokens_per_tile=4), ((100, 60), (37, 91), (300, 20), (20, 20))),
    ("llava_bilinear_first", VisionConfig(policy=GridPolicy.LLAVA_NEXT, tile_size=24, max_side=2, thumbnail=ThumbnailPosition.FIRST,
                                          resample=Resample.BILINEAR, tokens_per_tile=4), ((50, 70), (200, 130))),
    ("internvl_nearest", VisionConfig(policy=GridPolicy.INTERNVL, tile_size=28, max_side=None, max_tiles=6, thumbnail_for_single=True,
                                      resample=Resample.NEAREST, tokens_per_tile=4), ((90, 40), (33, 33), (41, 200))),
    ("relaxed_nothumb_imagenet", VisionConfig(tile_size=40, max_side=2, thumbnail=ThumbnailPosition.NONE, pad_color=(10, 200, 30),
                                              mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), tokens_per_tile=4), ((61, 47), (15, 140))),
    ("relaxed_384", VisionConfig(tile_size=384, max_side=2), ((500, 300),)),
    # smolvlm: two stretched resizes (longest edge, then whole tiles), the global image last, SmolVLM's lanczos
    ("smolvlm_lanczos", VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=32, max_side=4, longest_edge_px=128, resample=Resample.LANCZOS,
                                     tokens_per_tile=4), ((100, 60), (300, 170), (37, 91), (90, 90))),
    ("smolvlm_odd_edge_bicubic", VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=24, max_side=3, longest_edge_px=60, tokens_per_tile=4),
     ((50, 70), (10, 200), (24, 24))),
    ("smolvlm_single", VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=40, max_side=1, longest_edge_px=40, resample=Resample.LANCZOS,
                                    tokens_per_tile=4), ((77, 31),)),
    ("smolvlm_512", VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=512, max_side=2, longest_edge_px=1024, resample=Resample.LANCZOS,
                                 tokens_per_tile=64), ((700, 400),)),
)
# size-only plans, with token budgets: (name, cfg, size, budget)
PLAN_CASES: tuple[tuple[str, VisionConfig, tuple[int, int], int | None], ...] = (
    ("phone_max4", VisionConfig(max_side=4), (1080, 2400), None),
    ("phone_budget", VisionConfig(max_side=4), (1080, 2400), 1000),
    ("internvl_budget", VisionConfig(policy=GridPolicy.INTERNVL, max_side=None, max_tiles=9), (380, 76), 800),
    ("llava_budget", VisionConfig(policy=GridPolicy.LLAVA_NEXT, max_side=3), (394, 390), 600),
    ("overflow", VisionConfig(max_side=3), (800, 600), 10),
    ("thin", VisionConfig(max_side=3), (1, 5000), None),
    ("smolvlm_budget", VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=512, max_side=4, longest_edge_px=2048, tokens_per_tile=64), (1000, 600), 500),
    ("smolvlm_overflow", VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=512, max_side=4, tokens_per_tile=64), (1000, 600), 50),
)
# the smolvlm policy over many sizes: SmolVLM-256M's numbers, Idefics3's 364-px tiles, a tile-count bound, the 4096-px cap
SMOLVLM_GRID_CONFIGS: tuple[VisionConfig, ...] = (
    VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=512, max_side=4, longest_edge_px=2048, tokens_per_tile=64),
    VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=364, max_side=4, longest_edge_px=1456, tokens_per_tile=169),
    VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=512, max_side=3, tokens_per_tile=64),
    VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=364, max_side=None, max_tiles=6, longest_edge_px=1500, tokens_per_tile=81),
    VisionConfig(policy=GridPolicy.SMOLVLM, tile_size=512, max_side=16, longest_edge_px=8192, tokens_per_tile=64),
)
SMOLVLM_CONTEXT = 320
"""KV positions of the SmolVLM manifest: a 4x3 grid and a long answer do not fit together, so plans shrink the grid."""
# (src size, dst size, filter): Pillow's resize of one noise image, up, down, one axis, mixed, extreme ratios
RESIZE_CASES: tuple[tuple[tuple[int, int], tuple[int, int], Resample], ...] = (
    ((40, 30), (97, 61), Resample.LANCZOS), ((97, 61), (13, 9), Resample.LANCZOS), ((50, 50), (50, 120), Resample.LANCZOS),
    ((120, 40), (31, 40), Resample.LANCZOS), ((60, 20), (20, 60), Resample.LANCZOS), ((7, 5), (300, 2), Resample.LANCZOS),
    ((255, 3), (4, 1), Resample.LANCZOS), ((64, 64), (64, 64), Resample.LANCZOS), ((97, 61), (13, 9), Resample.BICUBIC),
    ((40, 30), (97, 61), Resample.BILINEAR),
)
TEXTS = (
    "", "What colour is the star?", "<|user|>\nWhat colour is the star?<|end|>\n<|assistant|>\n",
    "  multiple   spaces\t\ttabs\n\n  end ", "café naïve 東京 😀 ü", "I'm sure he'll say they've done it's",
    "123 4567.89 -0.5e10", "<img><tile></img><thumb>", "x<|end|><|endoftext|>y", "Hello\r\nworld!!! ??? ...",
    "a\u00a0b\u3000c\u2028d \u0085e\u000bf  \u2003 g", "x\u200bz 3\u00bd \u0661\u0662 \u2166",
)


def _image(width: int, height: int, seed: int) -> np.ndarray:
    """Noise over a gradient: noise checks every filter tap, the gradient a smooth region."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (height, width, 3))
    ramp = (np.arange(width)[None, :, None] * 255 // max(1, width - 1)) + np.zeros((height, 1, 3), dtype=np.int64)
    return ((noise + ramp) // 2).astype(np.uint8)


def _plan_entry(name: str, cfg: VisionConfig, size: tuple[int, int], budget: int | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "vision": to_dict(cfg), "size": list(size), "token_budget": budget}
    try:
        plan = plan_tiles(Size(*size), cfg, token_budget=budget)
    except MobileMLLMError as e:
        return {**entry, "error": type(e).__name__}
    return {**entry, "summary": plan.summary(), "boxes": [[b.left, b.top, b.right, b.bottom] for b in plan.boxes]}


def write_tiles(out: Path) -> int:
    cases = [_plan_entry(*c) for c in PLAN_CASES]
    seed = 0
    for name, cfg, sizes in PIXEL_CONFIGS:
        for w, h in sizes:
            seed += 1
            arr = _image(w, h, seed)
            entry = _plan_entry(f"{name}_{w}x{h}", cfg, (w, h), None)
            plan = plan_tiles(Size(w, h), cfg)
            tiles, _ = render_tiles(Image.fromarray(arr), plan.grid, cfg, with_thumbnail=plan.thumbnail_index is not None)
            pixels = np.stack([np.asarray(t, dtype=np.uint8) for t in tiles])
            floats = normalize(pixels, cfg.mean, cfg.std)
            assert np.array_equal(floats, preprocess(arr, cfg).tiles.numpy())  # the vectors are the real pipeline's
            stem = entry["name"]
            (out / f"{stem}.rgb").write_bytes(arr.tobytes())
            (out / f"{stem}.tiles").write_bytes(pixels.tobytes())
            (out / f"{stem}.f32").write_bytes(floats.astype("<f4").tobytes())
            cases.append({**entry, "source": f"{stem}.rgb", "tiles": f"{stem}.tiles", "normalized": f"{stem}.f32"})
    (out / "tiles.json").write_text(json.dumps(cases, indent=1))
    return len(cases)


def write_smolvlm_grids(out: Path) -> int:
    """The smolvlm policy (grid.select_smolvlm through plan_tiles) on many sizes, with and without token budgets."""
    from mobile_mllm.vision.grid import smolvlm_edges, smolvlm_sizes

    rng = np.random.default_rng(20)
    sizes = [(1, 1), (1, 5000), (5000, 1), (512, 512), (513, 512), (2048, 1), (1000, 600), (600, 1000), (1080, 2400),
             (4000, 3000), (10000, 2000), (364, 1456), (1455, 364), (20000, 19999)]
    sizes += [(int(w), int(h)) for w, h in rng.integers(1, 6000, (60, 2))]
    sizes += [(int(w), max(1, int(w * r))) for w, r in zip(rng.integers(50, 3000, 40), rng.uniform(0.05, 4.0, 40))]
    cases = []
    for cfg in SMOLVLM_GRID_CONFIGS:
        edges = smolvlm_edges(cfg.smolvlm_longest_edge_px, cfg.tile_size)
        for i, (w, h) in enumerate(sizes):
            budget = None if i % 3 else int(rng.integers(1, 20)) * cfg.tokens_per_tile
            entry = _plan_entry(f"smolvlm_{cfg.tile_size}_{w}x{h}", cfg, (w, h), budget)
            entry["edges"] = [[e, *(list(dataclasses.astuple(s)) for s in smolvlm_sizes(Size(w, h), e, cfg.tile_size))] for e in edges]
            cases.append(entry)
    (out / "smolvlm_grids.json").write_text(json.dumps(cases))
    return len(cases)


def write_resize(out: Path) -> None:
    """Pillow's ``Image.resize`` (what tiling._place calls) on noise, for Pixels.resize."""
    cases = []
    for i, ((w, h), (tw, th), resample) in enumerate(RESIZE_CASES):
        arr = _image(w, h, 500 + i)
        resized = Image.fromarray(arr).resize((tw, th), Image.Resampling[resample.name])
        stem = f"resize_{i}_{resample.value}"
        (out / f"{stem}.rgb").write_bytes(arr.tobytes())
        (out / f"{stem}.out").write_bytes(np.asarray(resized, dtype=np.uint8).tobytes())
        cases.append({"source": f"{stem}.rgb", "size": [w, h], "target": [tw, th], "resample": resample.value, "expected": f"{stem}.out"})
    (out / "resize.json").write_text(json.dumps(cases))


def write_composite(out: Path) -> None:
    rng = np.random.default_rng(7)
    rgba = rng.integers(0, 256, (1, 64, 4)).astype(np.uint8)
    rgba[0, :8, 3] = [0, 1, 2, 127, 128, 254, 255, 64]
    background = (30, 144, 250)
    canvas = Image.new("RGBA", (64, 1), (*background, 255))
    rgb = np.asarray(Image.alpha_composite(canvas, Image.fromarray(rgba, "RGBA")).convert("RGB"))
    argb = [int(a) << 24 | int(r) << 16 | int(g) << 8 | int(b) for r, g, b, a in rgba[0]]
    argb = [v - (1 << 32) if v >= 1 << 31 else v for v in argb]  # Java ints are signed
    (out / "composite.json").write_text(json.dumps({"argb": argb, "background": list(background),
                                                    "rgb": rgb.reshape(-1).tolist()}))


def write_exif(out: Path) -> None:
    """load_image of a PNG carrying each EXIF orientation (1..8): the upright pixels the app must produce."""
    import io

    from mobile_mllm.vision.io import load_image

    arr = _image(5, 3, 99)
    cases = []
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="PNG", exif=exif.tobytes())
        upright = np.asarray(load_image(buf.getvalue(), VisionConfig()))
        cases.append({"orientation": orientation, "size": [upright.shape[1], upright.shape[0]], "rgb": upright.reshape(-1).tolist()})
    (out / "exif.json").write_text(json.dumps({"size": [5, 3], "rgb": arr.reshape(-1).tolist(), "cases": cases}))


def _tokenizer_cases(tokenizer_file: Path, texts: tuple[str, ...]) -> dict[str, Any]:
    """Hugging Face tokenizers' ids of ``texts`` and the decoded text of those ids, with and without special tokens."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    encode = [{"text": t, "ids": tok.encode(t, add_special_tokens=False).ids} for t in texts]
    decode = []
    for e in encode:
        for skip in (True, False):
            decode.append({"ids": e["ids"], "skip": skip, "text": tok.decode(e["ids"], skip_special_tokens=skip)})
    emoji = tok.encode("😀", add_special_tokens=False).ids
    decode.append({"ids": emoji[:1], "skip": True, "text": tok.decode(emoji[:1], skip_special_tokens=True)})
    return {"tokenizer": str(tokenizer_file), "encode": encode, "decode": decode}


def write_tokenizer(out: Path) -> None:
    """The bundled tokenizer, and the same vocabulary behind SmolLM2's (so SmolVLM's) pre-tokenizer: each digit split off first."""
    from tokenizers import Tokenizer, pre_tokenizers

    (out / "tokenizer.json").write_text(json.dumps(_tokenizer_cases(BUNDLED_TOKENIZER, TEXTS), ensure_ascii=False))
    digits = Tokenizer.from_file(str(BUNDLED_TOKENIZER))
    digits.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                                    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    digits.save(str(out / "digits_tokenizer.json"))
    texts = (*TEXTS, "abc 123 x4y 2024-12-04 3.14", "  7  ", "a1b22c333\n\n9")
    _write_gap_tokenizers(out)
    cases = _tokenizer_cases(out / "digits_tokenizer.json", texts)
    plain = _tokenizer_cases(BUNDLED_TOKENIZER, texts)
    assert cases["encode"][-3]["ids"] != plain["encode"][-3]["ids"]  # the digit split changes ids: the vectors can tell
    (out / "tokenizer_digits.json").write_text(json.dumps(cases, ensure_ascii=False))


def _write_gap_tokenizers(out: Path) -> None:
    """The bundled vocabulary without two control bytes (as SmolLM2's lacks some): HF drops them, or gives unk_token
    (one per byte, or one per run with fuse_unk); and model options the app refuses by name."""
    data = json.loads(BUNDLED_TOKENIZER.read_text())
    model = data["model"]
    merged = {p for m in model["merges"] for p in (m.split(" ") if isinstance(m, str) else m)}
    gaps = [c for c in ("\u0100", "\u0101") if c not in merged]  # the byte-level characters of bytes 0x00 and 0x01
    assert len(gaps) == 2 and all(c in model["vocab"] for c in gaps)
    for c in gaps:
        del model["vocab"][c]
    texts = ("a\x00b", "\x00\x01\x00 x", "x \x01\x01 y\x00", "plain text 12")
    cases = []
    for name, unk, fuse in (("gaps", None, False), ("gaps_unk", "<|endoftext|>", False), ("gaps_unk_fused", "<|endoftext|>", True)):
        variant = json.loads(json.dumps(data))
        variant["model"].update(unk_token=unk, fuse_unk=fuse)
        (out / f"{name}_tokenizer.json").write_text(json.dumps(variant, ensure_ascii=False))
        cases.append(_tokenizer_cases(out / f"{name}_tokenizer.json", texts))
    assert len({json.dumps(c["encode"][1]["ids"]) for c in cases}) == 3  # dropped, unk per byte, one unk: three answers
    refused = []
    for key, value in (("ignore_merges", True), ("byte_fallback", True), ("continuing_subword_prefix", "##"), ("end_of_word_suffix", "</w>")):
        variant = json.loads(BUNDLED_TOKENIZER.read_text())
        variant["model"][key] = value
        (out / f"refused_{key}_tokenizer.json").write_text(json.dumps(variant, ensure_ascii=False))
        refused.append({"tokenizer": str(out / f"refused_{key}_tokenizer.json"), "key": key})
    (out / "tokenizer_gaps.json").write_text(json.dumps({"cases": cases, "refused": refused}, ensure_ascii=False))


def _prompt_cases(tokenizer_file: Path, turns: tuple[tuple[Any, ...], ...], follow_up: PromptFormat, *, with_encode: bool) -> dict[str, Any]:
    """runtime.layout on (format, question, grid, thumbnail_index, tokens_per_tile) turns (grid None: text only), then
    two follow-up turns; ``with_encode``: the image block gets the tokenizer (text tile markers), as Session passes it."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))

    def encode(s: str) -> list[int]:
        return tok.encode(s, add_special_tokens=False).ids

    cases = []
    for fmt, question, grid, thumb, tpt in turns:
        styled = fmt.style_question(question)
        ids = special_token_ids(tok, fmt)
        block = None if grid is None else image_block(fmt, grid=Grid(*grid), thumbnail_index=thumb, tokens_per_tile=tpt, token_ids=ids,
                                                      encode=encode if with_encode else None)
        segs = first_turn(fmt, styled, encode=encode, token_ids=ids, image=block)
        cases.append({"prompt": to_dict(fmt), "question": question, "styled": styled, "next_turn": False,
                      "image": None if grid is None else {"grid": list(grid), "thumbnail_index": thumb, "tokens_per_tile": tpt},
                      "segments": _segments(segs), "positions": count_positions(segs)})
    for unfed in ([], [42]):
        question = "And the circle?"
        segs = next_turn(follow_up, follow_up.style_question(question), encode=encode, unfed_answer=unfed)
        cases.append({"prompt": to_dict(follow_up), "question": question, "styled": follow_up.style_question(question),
                      "next_turn": True, "unfed": unfed, "segments": _segments(segs), "positions": count_positions(segs)})
    return {"tokenizer": str(tokenizer_file), "encode_image": with_encode, "cases": cases}


def write_prompts(out: Path) -> None:
    rich = dataclasses.replace(REFERENCE_PROMPT, bos="<|endoftext|>", system="You are a helpful assistant.\n",
                               row_sep="<|pad|>", question_template="{question} Answer briefly.")
    plain = REFERENCE_PROMPT
    turns = (
        (plain, "What colour is the star?", (2, 2), 4, 16),
        (plain, "What colour is the star?", (3, 1), 0, 5),
        (rich, "Look: <image> what is it?", (2, 3), 6, 3),
        (rich, "Describe it.", (1, 1), None, 7),
        (plain, "Hello there", None, None, 0),
        (rich, "Count {the} stars", None, None, 0),
    )
    data = _prompt_cases(BUNDLED_TOKENIZER, turns, rich, with_encode=False)
    (out / "prompts.json").write_text(json.dumps(data, ensure_ascii=False))


def write_smolvlm_prompts(out: Path) -> None:
    """SmolVLM's layout (text tile markers, the global image, ``User:<image>``) with the tiny SmolVLM's tokenizer."""
    from mobile_mllm.model.smolvlm.prompt import SMOLVLM_PROMPT

    directory, _ = _smolvlm_model(out)
    fmt = SMOLVLM_PROMPT
    turns = (
        (fmt, "What colour is the star?", (1, 1), None, 16),  # unsplit: the lone tile is the global image
        (fmt, "What colour is the star?", (2, 3), 6, 16),
        (fmt, "Describe the picture.", (4, 3), 12, 64),  # SmolVLM-256M's 64 tokens per tile
        (fmt, "Look: <image> what is it?", (2, 2), 4, 16),  # the placeholder inside the question: "User: Look: <image>..."
        (fmt, "Hello there", None, None, 0),
    )
    data = _prompt_cases(directory / "tokenizer.json", turns, fmt, with_encode=True)
    (out / "smolvlm_prompts.json").write_text(json.dumps(data, ensure_ascii=False))


def _segments(segs: list[Any]) -> list[dict[str, Any]]:
    return [{"tile": s.tile, "num_tokens": s.num_tokens} if isinstance(s, TileRef) else {"ids": list(s.ids)} for s in segs]


@functools.lru_cache(maxsize=1)
def _smolvlm_model(out: Path) -> tuple[Path, Any]:
    """The tiny random SmolVLM (HF layout, the family's tokenizer and processor files) in ``out``, and our model of it."""
    from mobile_mllm.model import load_model
    from mobile_mllm.model.smolvlm.synthetic import write_random_smolvlm

    directory = out / "smolvlm_tiny"
    if not (directory / "config.json").is_file():
        write_random_smolvlm(directory)
    return directory, load_model(directory, max_context_len=SMOLVLM_CONTEXT)


def smolvlm_manifest(out: Path) -> dict[str, Any]:
    """The manifest the exporter writes (export.manifest.build_manifest) for the tiny SmolVLM; program facts from the
    tiny reference export (no program is exported here: the app's core never opens it)."""
    from mobile_mllm import contract
    from mobile_mllm.export.config import ExportJob, TargetConfig
    from mobile_mllm.export.manifest import build_manifest

    directory, model = _smolvlm_model(out)
    base = upgrade_manifest(json.loads(V1_MANIFEST.read_text()))
    target = TargetConfig(max_context_len=SMOLVLM_CONTEXT, prefill_chunk=32, tile_batch=4)
    constants = {contract.GET_MAX_SEQ_LEN: 32, contract.GET_MAX_CONTEXT_LEN: SMOLVLM_CONTEXT}
    return build_manifest(model=model, job=ExportJob(model=str(directory), output=str(out / "smolvlm_w"), target=target),
                          constants=constants, precision=base["precision"], program=base["program"])


def write_manifests(out: Path) -> None:
    v1_text = V1_MANIFEST.read_text()
    base = upgrade_manifest(json.loads(v1_text))

    def broken(name: str, change: Any, data0: dict[str, Any] = base) -> tuple[str, dict[str, Any]]:
        data = json.loads(json.dumps(data0))
        change(data)
        return name, data

    smolvlm = smolvlm_manifest(out)
    variants = [
        broken("no_policy", lambda d: d["vision"].pop("policy")),
        broken("bad_policy", lambda d: d["vision"].update(policy="spiral")),
        broken("tile_size_string", lambda d: d["vision"].update(tile_size="64")),
        broken("unknown_key", lambda d: d.update(bogus=1)),
        broken("no_eos", lambda d: d.update(eos_ids=[])),
        broken("bad_sha", lambda d: d["program"].update(sha256="xyz")),
        broken("prompt_without_eos", lambda d: d["prompt"].pop("eos")),
        broken("negative_bos", lambda d: d.update(bos_id=-1)),
        broken("two_means", lambda d: d["vision"].update(mean=[0.5, 0.5])),
        broken("version_3", lambda d: d.update(version=3)),
        broken("bool_for_int", lambda d: d.update(tile_batch=True)),
        broken("pad_over_255", lambda d: d["vision"].update(pad_color=[0, 256, 0])),
        broken("smolvlm_box_resample", lambda d: d["vision"].update(resample="box"), smolvlm),
        broken("smolvlm_zero_edge", lambda d: d["vision"].update(longest_edge_px=0), smolvlm),
        broken("smolvlm_unknown_prompt_key", lambda d: d["prompt"].update(tile_end="\n"), smolvlm),
    ]
    cases = [{"name": "v1_exported", "text": v1_text}, {"name": "v2", "text": json.dumps(base)},
             {"name": "smolvlm", "text": json.dumps(smolvlm)}]
    cases += [{"name": n, "text": json.dumps(d)} for n, d in variants]
    # valid for the schema, but template fields runtime.layout cannot fill (str.format gets row/col, content): refused
    _, marked = broken("tile_start_unknown_field", lambda d: d["prompt"].update(tile_start="<tile_{index}>"), smolvlm)
    cases.append({"name": "tile_start_unknown_field", "text": json.dumps(marked), "refused": "tile_start"})
    _, templated = broken("user_template_unknown_field", lambda d: d["prompt"].update(user_template="User:{content}{name}"), smolvlm)
    cases.append({"name": "user_template_unknown_field", "text": json.dumps(templated), "refused": "user_template"})
    for c in cases:
        data = upgrade_manifest(json.loads(c["text"]))
        c["error_paths"] = [e.split(":")[0] for e in manifest_errors(data)]
        if not c["error_paths"] and "refused" not in c:
            c["fields"] = {
                "policy": data["vision"]["policy"], "tile_size": data["vision"]["tile_size"],
                "tokens_per_tile": data["tokens_per_tile"], "eos_ids": data["eos_ids"], "bos_id": data["bos_id"],
                "max_seq_len": data["max_seq_len"], "max_context_len": data["max_context_len"],
                "prefill_chunk": data["prefill_chunk"], "tile_batch": data["tile_batch"],
                "hidden_size": data["hidden_size"], "user_template": data["prompt"]["user_template"],
                "special_tokens": data["special_tokens"], "resample": data["vision"]["resample"],
                "longest_edge_px": data["vision"].get("longest_edge_px"), "prompt": to_dict(from_dict(PromptFormat, data["prompt"])),
            }
    (out / "manifests.json").write_text(json.dumps({"schema": str(SCHEMA_FILE), "cases": cases}))


def write_stats(out: Path) -> None:
    samples = [
        (Stats(model_load_start_ms=1000.0, model_load_end_ms=2500.5, inference_start_ms=3000.0, image_encode_start_ms=3010.25,
               image_encode_end_ms=3090.75, vision_batch_ms=(40.5, 40.0), vision_batch_sizes=(4, 3), prompt_eval_end_ms=3400.0,
               first_token_ms=3401.0, inference_end_ms=3900.0, num_prompt_tokens=150, num_image_tokens=112, num_tiles=7,
               num_generated_tokens=21, grid=(3, 2), reduced_by_budget=True, peak_rss_bytes=734_003_200), 0, "purple", "eos"),
        (Stats(inference_start_ms=1.7e12, prompt_eval_end_ms=1.7e12 + 12.345, first_token_ms=1.7e12 + 12.5,
               inference_end_ms=1.7e12 + 99.9, num_prompt_tokens=9, num_generated_tokens=128, num_cached_tokens=160,
               peak_rss_bytes=1), 3, "a \"quoted\"\nanswer é", "max_new_tokens"),
        (Stats(), 1, "", "context_full"),
    ]
    cases = []
    for stats, run, text, reason in samples:
        raw = {k: (list(v) if isinstance(v, tuple) else v) for k, v in stats.__dict__.items() if k != "extra"}
        record = {**stats.to_dict(), "prompt_tokens": stats.num_prompt_tokens, "generated_tokens": stats.num_generated_tokens,
                  "SCALING_FACTOR_UNITS_PER_SECOND": 1000, "run": run, "text": text, "stop_reason": reason}
        cases.append({"raw": raw, "run": run, "text": text, "stop_reason": reason, "record": record,
                      "rows": [list(r) for r in stats_rows(record)]})
    (out / "stats.json").write_text(json.dumps(cases, ensure_ascii=False))


def _session_plans(manifest: dict[str, Any], tokenizer_file: Path, turns: tuple[tuple[Any, ...], ...]) -> list[dict[str, Any]]:
    """Session._plan over ``manifest`` for (width, height, max_new_tokens, question, token_budget) turns."""
    from types import SimpleNamespace

    from tokenizers import Tokenizer

    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    methods = SimpleNamespace(max_context_len=manifest["max_context_len"], prefill_chunk=manifest["prefill_chunk"],
                              max_tile_batch=manifest["tile_batch"])
    cases = []
    for w, h, new, question, budget in turns:
        session = Session(methods, tokenizer=Tokenizer.from_file(str(tokenizer_file)),
                          prompt=from_dict(PromptFormat, manifest["prompt"]), vision=from_dict(VisionConfig, manifest["vision"]),
                          eos_ids=manifest["eos_ids"], generation=GenerationConfig(max_new_tokens=new))
        case: dict[str, Any] = {"size": [w, h], "max_new_tokens": new, "question": question, "token_budget": budget}
        try:
            plan = session._plan(question, np.zeros((h, w, 3), dtype=np.uint8), budget)
        except MobileMLLMError as e:
            cases.append({**case, "error": type(e).__name__})
            continue
        cases.append({**case, "grid": [plan.tiles.grid.cols, plan.tiles.grid.rows], "positions": plan.num_positions,
                      "segments": _segments(plan.segments)})
    return cases


def write_session_plans(out: Path) -> None:
    """Session._plan on the exported tiny manifest and on the SmolVLM one: the grid shrinks until the answer has room, or the turn is refused."""
    manifest = upgrade_manifest(json.loads(V1_MANIFEST.read_text()))
    cases = _session_plans(manifest, BUNDLED_TOKENIZER, (
        (640, 640, 8, "What colour is the star?", None), (640, 640, 60, "What colour?", None),
        (1000, 300, 100, "Describe.", None), (1000, 300, 8, "Describe.", 40),
        (900, 900, 150, "What?", None), (900, 900, 190, "What?", None),
        (50, 2000, 20, "Thin <image> thing?", None), (640, 640, 8, "word " * 200, None),
        (640, 640, 8, "two <image> <image>", None)))
    (out / "session_plans.json").write_text(json.dumps(cases))
    smolvlm = smolvlm_manifest(out)
    directory, _ = _smolvlm_model(out)
    cases = _session_plans(smolvlm, directory / "tokenizer.json", (
        (1000, 700, 8, "What colour is the star?", None), (1000, 700, 100, "What colour?", None),
        (1000, 700, 200, "What colour?", None), (300, 300, 8, "Describe.", None), (300, 300, 30, "Describe.", 100),
        (64, 64, 8, "Tiny?", 16), (50, 2000, 20, "Thin <image> thing?", None), (640, 480, 8, "word " * 300, None),
        (640, 480, 8, "two <image> <image>", None), (640, 480, 300, "Long answer?", None)))
    (out / "smolvlm_session_plans.json").write_text(json.dumps({"manifest": json.dumps(smolvlm),
                                                                 "tokenizer": str(directory / "tokenizer.json"), "cases": cases}))


def write_all(out: Path) -> None:
    """Every vector file into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    write_tiles(out)
    write_smolvlm_grids(out)
    write_resize(out)
    write_composite(out)
    write_exif(out)
    write_tokenizer(out)
    write_prompts(out)
    write_smolvlm_prompts(out)
    write_manifests(out)
    write_stats(out)
    write_session_plans(out)


if __name__ == "__main__":  # python tests/android_app/kotlin_vectors.py DIR (for ./gradlew :core:test -Pvectors=DIR)
    import sys

    write_all(Path(sys.argv[1]))
