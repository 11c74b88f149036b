"""The native runner's prompt layout (layout.cpp) against mobile_mllm.runtime.layout, token id for token id.

Through the runner's program-free debug mode (``--layout MANIFEST --tokenizer TOKENIZER --cases``), so
no export is needed: SmolVLM's layout (text tile markers ``<fake_token_around_image><row_R_col_C>``
tokenized with the text around them, a newline after each row, the global image, an unsplit image laid
out as the global image, ``text_lead`` and ``image_join``) on the tiny SmolVLM checkpoint's tokenizer,
and the plain layout of the reference family on the tiny model's, for first turns with and without an
image and follow-up turns. ``runtime.layout`` itself is tested against transformers' SmolVLM processor
(tests/mobile_mllm/model/smolvlm/), so equal ids here are the processor's ids.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # needs the runner built (conftest.py)

QUESTIONS = ["What is in the picture?", "<image>Describe it.", "Look: <image> and say what you see", "a{b}c"]
# (grid, thumbnail_index): unsplit without a global image (SmolVLM lays the lone tile out as the global
# image), unsplit with one, 2 across x 3 down with it last, 3 x 2 with it first, and a long row
GRIDS = [((1, 1), None), ((1, 1), 1), ((2, 3), 6), ((3, 2), 0), ((4, 1), 4)]


def _segments_json(segments: list) -> list:
    from mobile_mllm.runtime.layout import TileRef

    return [{"tile": s.tile, "tokens": s.num_tokens} if isinstance(s, TileRef) else list(s.ids) for s in segments]


def _python_layout(fmt, tokenizer_path: Path, tokens_per_tile: int, case: dict) -> dict:
    from tokenizers import Tokenizer

    from mobile_mllm.runtime.layout import first_turn, image_block, next_turn, special_token_ids
    from mobile_mllm.vision.grid import Grid

    tok = Tokenizer.from_file(str(tokenizer_path))

    def encode(text: str) -> list[int]:
        return tok.encode(text, add_special_tokens=False).ids

    ids = special_token_ids(tok, fmt)
    block = None
    if case["grid"] is not None:
        block = image_block(fmt, grid=Grid(*case["grid"]), thumbnail_index=case["thumbnail_index"],
                            tokens_per_tile=tokens_per_tile, token_ids=ids, encode=encode)
    out = {"first": _segments_json(first_turn(fmt, case["question"], encode=encode, token_ids=ids, image=block))}
    if "next" in case:
        out["next"] = _segments_json(next_turn(fmt, case["next"], encode=encode, unfed_answer=case["unfed"]))
    return out


def _cases() -> list[dict]:
    cases = [{"grid": list(g), "thumbnail_index": t, "question": q} for g, t in GRIDS for q in QUESTIONS]
    cases += [{"grid": None, "thumbnail_index": None, "question": q} for q in QUESTIONS]
    cases[0].update(next="And the colours?", unfed=[])
    cases[1].update(next="Tell me more, please.", unfed=[7])
    return cases


def _compare(runner_bin: Path, tmp_path: Path, fmt, vision, tokenizer: Path) -> list[dict]:
    from mobile_mllm.config import to_dict

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"format": "mobile-mllm-manifest", "version": 2, "vision": to_dict(vision),
                                    "prompt": to_dict(fmt), "eos_ids": [0], "tile_batch": 1, "prefill_chunk": 32}))
    cases = _cases()
    (tmp_path / "cases.jsonl").write_text("".join(json.dumps(c) + "\n" for c in cases))
    proc = subprocess.run([str(runner_bin), "--layout", str(manifest), "--tokenizer", str(tokenizer),
                           "--cases", str(tmp_path / "cases.jsonl")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = [json.loads(line) for line in proc.stdout.splitlines()]
    want = [_python_layout(fmt, tokenizer, vision.tokens_per_tile, c) for c in cases]
    for c, g, w in zip(cases, got, want, strict=True):
        assert g == w, c
    return got


def test_smolvlm_layout_equals_python(runner_bin: Path, smolvlm_model_dir: Path, tmp_path: Path) -> None:
    from mobile_mllm.model.smolvlm import SMOLVLM_PROMPT
    from mobile_mllm.model.smolvlm.adapter import SmolVLMAdapter

    vision = SmolVLMAdapter().read_vision_config(smolvlm_model_dir)
    got = _compare(runner_bin, tmp_path, SMOLVLM_PROMPT, vision, smolvlm_model_dir / "tokenizer.json")
    # the layouts differ as SmolVLM's do: the unsplit image is only the global image (one tile, no
    # <row_1_col_1>), 2x3 has six row/column markers and the global image
    tiles = [[s["tile"] for s in g["first"] if isinstance(s, dict)] for g in got]
    assert tiles[0] == [0] and tiles[2 * len(QUESTIONS)] == [0, 1, 2, 3, 4, 5, 6]
    assert got[0]["first"] != got[len(QUESTIONS)]["first"]  # with or without a separate global image


def test_reference_family_layout_equals_python(runner_bin: Path, tiny_dir: Path, tmp_path: Path) -> None:
    """The plain layout (special tokens only) is unchanged by tokenizing each run between tiles as one piece."""
    from mobile_mllm.model.registry import detect_family, get_adapter

    adapter = get_adapter(detect_family(tiny_dir))
    _compare(runner_bin, tmp_path, adapter.prompt_format(), adapter.read_vision_config(tiny_dir),
             tiny_dir / "tokenizer.json")
