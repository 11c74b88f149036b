"""The native runner's byte-level BPE tokenizer against the ``tokenizers`` library (the host's).

Strings: hand-picked edge cases of GPT-2's pre-tokenizer regex (contractions, runs of spaces,
trailing whitespace, digits, punctuation, non-ASCII letters and numbers, emoji, no-break and
ideographic spaces, added tokens inside and around text) plus seeded random strings over a mixed
alphabet; ids: the encodings plus random id sequences (which decode to invalid UTF-8 and so test
the lossy replacement). Every encoding and decoding must be identical.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # needs the runner built (conftest.py)

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = REPO / "mobile_mllm" / "model" / "reference" / "assets" / "tokenizer.json"

EDGE_CASES = [
    "What colour is the star?", "  leading and  double  spaces  ", "don't it's we're I've I'm you'll he'd 'quoted' ''s",
    "<|user|>\nHi<|end|>\n<|assistant|>\n", "<image>\nWhat is this?<img><tile></img>", "tab\there\r\nnewline\n\n\nend  ",
    "numbers 123 4567 3.14 -2e10", "émigré naïve café Ω≈ç√ 東京 中文字 🤖🎉 Здравствуйте مرحبا", "a\u00a0b\u2003c\u3000d",
    "", " ", "\n", "x" * 300, "!!!???...,,,;;;", "ⅫⅣ ½ ² ٣", "\u0301e\u0301", "mixed<|end|>text<|endoftext|>more",
    "<|end", "<|user|><|user|>", "trailing space ", " leading", "'S 'RE 'Ll", "a  \n  b", "\t\t x",
]
ALPHABET = list("abcdefghijklmnopqrstuvwxyzABC XYZ0123456789 .,!?'\"\n\t-_()[]{}<>|/\\") + [
    "é", "ß", "中", "🙂", "ℵ", "\u00a0", "<|end|>", "<image>", "'s", "'ll", "\u2028", "٣"]


def _strings() -> list[str]:
    rng = random.Random(0)
    return EDGE_CASES + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 60))) for _ in range(400)]


def _run(runner_bin: Path, mode: str, lines: list[object], tmp_path: Path) -> list[object]:
    src = tmp_path / f"{mode}.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = subprocess.run([str(runner_bin), "--tokenizer", str(TOKENIZER), f"--{mode}", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_encode_equals_tokenizers(runner_bin: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    strings = _strings()
    got = _run(runner_bin, "encode", strings, tmp_path)
    want = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    mismatches = [(s, g, w) for s, g, w in zip(strings, got, want) if g != w]
    assert len(got) == len(strings) and not mismatches, mismatches[:3]


def test_decode_equals_tokenizers(runner_bin: Path, tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    rng = random.Random(1)
    ids = [tok.encode(s, add_special_tokens=False).ids for s in _strings()]
    ids += [[rng.randrange(tok.get_vocab_size()) for _ in range(rng.randint(1, 30))] for _ in range(300)]
    got = _run(runner_bin, "decode", ids, tmp_path)
    want = [tok.decode(x, skip_special_tokens=True) for x in ids]
    mismatches = [(x, g, w) for x, g, w in zip(ids, got, want) if g != w]
    assert len(got) == len(ids) and not mismatches, mismatches[:3]
    assert any("\ufffd" in w for w in want)  # the random ids did exercise invalid UTF-8


def test_unsupported_tokenizer_is_refused(runner_bin: Path, tmp_path: Path) -> None:
    spec = json.loads(TOKENIZER.read_text())
    spec["normalizer"] = {"type": "NFKC"}
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec))
    src = tmp_path / "in.jsonl"
    src.write_text('"x"\n')
    proc = subprocess.run([str(runner_bin), "--tokenizer", str(bad), "--encode", str(src)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1
    assert "unsupported tokenizer (a normalizer)" in proc.stderr
