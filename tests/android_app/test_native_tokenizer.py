"""The native runner's byte-level BPE tokenizer against the ``tokenizers`` library (the host's).

Strings: hand-picked edge cases of GPT-2's pre-tokenizer regex (contractions, runs of spaces,
trailing whitespace, digits, punctuation, non-ASCII letters and numbers, emoji, no-break and
ideographic spaces, added tokens inside and around text), digit runs and SmolVLM's chat strings,
every numeric character between letters (and, with merges that make the split visible, the letters
and numbers where the runner's tables could be wrong), plus seeded random strings over a mixed alphabet; ids:
the encodings plus random id sequences (which decode to invalid UTF-8 and so test the lossy
replacement). Every encoding and decoding must be identical, for the bundled tokenizer and for
variants of it: SmolLM2's pre-tokenizer (``Sequence[Digits(individual_digits), ByteLevel]``, which
SmolVLM's tokenizer.json has), Digits by runs, a prefix space per pre-token, a vocabulary without
some bytes (dropped, or unk_token with and without fuse_unk); and the tiny SmolVLM's own tokenizer.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # needs the runner built (conftest.py)

REPO = Path(__file__).resolve().parents[2]
TOKENIZER = REPO / "mobile_mllm" / "model" / "reference" / "assets" / "tokenizer.json"
UNICODE_TABLES = REPO / "android_app" / "runner" / "src" / "unicode_classes.inc"

EDGE_CASES = [
    "What colour is the star?", "  leading and  double  spaces  ", "don't it's we're I've I'm you'll he'd 'quoted' ''s",
    "<|user|>\nHi<|end|>\n<|assistant|>\n", "<image>\nWhat is this?<img><tile></img>", "tab\there\r\nnewline\n\n\nend  ",
    "numbers 123 4567 3.14 -2e10", "émigré naïve café Ω≈ç√ 東京 中文字 🤖🎉 Здравствуйте مرحبا", "a\u00a0b\u2003c\u3000d",
    "", " ", "\n", "x" * 300, "!!!???...,,,;;;", "ⅫⅣ ½ ² ٣", "\u0301e\u0301", "mixed<|end|>text<|endoftext|>more",
    "<|end", "<|user|><|user|>", "trailing space ", " leading", "'S 'RE 'Ll", "a  \n  b", "\t\t x",
]
ALPHABET = list("abcdefghijklmnopqrstuvwxyzABC XYZ0123456789 .,!?'\"\n\t-_()[]{}<>|/\\") + [
    "é", "ß", "中", "🙂", "ℵ", "\u00a0", "<|end|>", "<image>", "'s", "'ll", "\u2028", "٣"]


VARIANT_CASES = [
    "2024-12-04", "a1b22c333\n\n9", "  7  ", "3.14159 and 1,000,000", "x²³ ½ ⅫⅣ ٣٤٥ ९८ ௰", "12345678901234567890",
    "abc 123 x4y", " 1 2  3   4", "0x7F 1e-5 #1 v2.0.1", "\U00011f50\U00011f51 \U0001e4f0 \U00011de0\U00016ff4",
    "\x00\x01\x00 x", "x \x01\x01 y\x00", "\x7f=@ 🙂🎉 \U000f1234 <|end|>9<|end|>",
    "th=e wh@at a\x00nd co\x7f\x7flour",  # neighbours of a dropped character merge
]
ROWS = "".join(f"<fake_token_around_image><row_{r}_col_{c}>" + "<image>" * 4 + ("\n" if c == 2 else "")
               for r in (1, 2) for c in (1, 2))
SMOLVLM_CASES = [  # what SmolVLM's chat template and image expansion write, with digits in the questions
    "<|im_start|>User:<image>How many 3s are in 13,333?<end_of_utterance>\nAssistant:",
    "<|im_start|>User: What is 12+7? Answer in 1 word.<end_of_utterance>\nAssistant: 19<end_of_utterance>\n"
    "User: And 2024-12-04?<end_of_utterance>\nAssistant:",
    f"<|im_start|>User:{ROWS}\n<fake_token_around_image><global-img>{'<image>' * 4}<fake_token_around_image>"
    "Describe row 2.<end_of_utterance>\nAssistant:",
    "<|im_start|>User: Look: <image> what is it?<end_of_utterance>\nAssistant: A 3x4 grid<|im_end|>",
]
_SEPARATOR = "a"  # not numeric: between two numeric characters it keeps each a Digits pre-token of its own


def _table(name: str) -> list[tuple[int, int]]:
    """The (first, last) code-point ranges of one of the runner's tables (src/unicode_classes.inc)."""
    row = re.search(name + r"\[\] = \{(.*?)\};", UNICODE_TABLES.read_text())
    assert row, name
    return [(int(a, 16), int(b, 16)) for a, b in re.findall(r"\{0x([0-9A-F]+), 0x([0-9A-F]+)\}", row.group(1))]


def _chars(cps: set[int]) -> list[str]:
    return [chr(c) for c in sorted(cps) if 0 <= c < 0x110000 and not 0xD800 <= c <= 0xDFFF]


@cache
def _numeric_probes() -> list[str]:
    """Every code point the runner's tables call numeric or a number, their neighbours, Python's N category and
    random others, each between two letters: with a prefix space per pre-token, the ids show every Digits split."""
    cps = {c for c in range(0x110000) if unicodedata.category(chr(c)).startswith("N")}
    for name in ("kNumericRanges", "kNumberRanges"):
        for a, b in _table(name):
            cps.update(range(a - 1, b + 2))
    rng = random.Random(2)
    cps.update(rng.randrange(0x110000) for _ in range(2000))
    chars = _chars(cps)
    return [_SEPARATOR + _SEPARATOR.join(chars[i:i + 64]) + _SEPARATOR for i in range(0, len(chars), 64)]


@cache
def _class_probes() -> list[str]:
    """`` aX 1X`` for the code points where the runner's letter and number tables could be wrong: where they
    differ from Python's Unicode 14 (the library's regex follows a newer Unicode), either side of every range,
    random others."""
    cps: set[int] = set()
    for name, prefix in (("kLetterRanges", "L"), ("kNumberRanges", "N")):
        ranges = _table(name)
        python = {c for c in range(0x110000) if unicodedata.category(chr(c)).startswith(prefix)}
        cps |= python ^ {c for a, b in ranges for c in range(a, b + 1)}
        cps.update(c for a, b in ranges for c in (a - 1, a, b, b + 1))
    rng = random.Random(4)
    cps.update(rng.randrange(0x110000) for _ in range(3000))
    chars = _chars(cps)
    return ["".join(f" a{x} 1{x}" for x in chars[i:i + 64]) for i in range(0, len(chars), 64)]


def _strings() -> list[str]:
    rng = random.Random(0)
    return EDGE_CASES + ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 60))) for _ in range(400)]


def _run(runner_bin: Path, mode: str, lines: list[object], tmp_path: Path, tokenizer: Path) -> list[object]:
    src = tmp_path / f"{mode}.jsonl"
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc = subprocess.run([str(runner_bin), "--tokenizer", str(tokenizer), f"--{mode}", str(src)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _byte_level(*, add_prefix_space: bool = False, use_regex: bool = True) -> dict[str, Any]:
    return {"type": "ByteLevel", "add_prefix_space": add_prefix_space, "trim_offsets": True, "use_regex": use_regex}


def _digits(individual: bool) -> dict[str, Any]:
    return {"type": "Digits", "individual_digits": individual}


def _pre(*steps: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": list(steps)}
    return edit


SMOLLM2_PRE = _pre(_digits(True), _byte_level())
"""SmolLM2's (so SmolVLM's) pre-tokenizer, as its tokenizer.json spells it."""
# byte-level characters no merge uses, taken out of the vocabulary: bytes 0x00, 0x01, DEL, '=', '@', and the lead
# bytes of emoji (0xF0) and of planes 4-16 (0xF1, which SmolLM2's own vocabulary lacks: huggingface/smollm#81)
GAP_CHARS = ("\u0100", "\u0101", "\u0121", "=", "@", "ð", "ñ")


def _gaps(unk: str | None, fuse: bool) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        SMOLLM2_PRE(spec)
        merged = {p for m in spec["model"]["merges"] for p in (m.split(" ") if isinstance(m, str) else m)}
        assert not merged & set(GAP_CHARS)
        for c in GAP_CHARS:
            del spec["model"]["vocab"][c]
        spec["model"].update(unk_token=unk, fuse_unk=fuse)
    return edit


def _class_merges(spec: dict[str, Any]) -> None:
    """Merges of "a" and of "1" with the byte-level character of every UTF-8 lead byte, ranked first: a character after
    "a" ("1") shares its GPT-2 piece only when the regex calls it a letter (number), and then one of these merges
    shows in the ids (the bundled merges join hardly any non-ASCII bytes)."""
    model = spec["model"]
    next_id = 1 + max([*model["vocab"].values(), *(a["id"] for a in spec["added_tokens"])])
    pairs = [(head, chr(b)) for head in ("a", "1") for b in range(0xC2, 0xF5)]  # bytes >= 0xAE stand for themselves
    for i, (left, right) in enumerate(pairs):
        model["vocab"][left + right] = next_id + i
    as_text = isinstance(model["merges"][0], str)
    model["merges"] = [f"{left} {right}" if as_text else [left, right] for left, right in pairs] + model["merges"]


VARIANTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "bundled": lambda spec: None,  # plain ByteLevel, as the reference family ships it
    "letter_number_merges": _class_merges,
    "sequence_of_byte_level": _pre(_byte_level()),
    "smollm2_digits": SMOLLM2_PRE,
    "digit_runs": _pre(_digits(False), _byte_level()),
    "digits_prefix_space": _pre(_digits(True), _byte_level(add_prefix_space=True)),  # shows every Digits split in ids
    "bytes_dropped": _gaps(None, False),
    "bytes_unk": _gaps("<|endoftext|>", False),
    "bytes_unk_fused": _gaps("<|endoftext|>", True),
    "bytes_unk_merging": _gaps("a", True),  # unk_token's id merges with its neighbours, as any symbol's does
}


def _assert_like_tokenizers(runner_bin: Path, tokenizer_file: Path, strings: list[str], tmp_path: Path) -> None:
    """The runner's ids and decoded text (special tokens skipped) == the tokenizers library's, for ``strings``."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_file))
    want_ids = [tok.encode(s, add_special_tokens=False).ids for s in strings]
    got_ids = _run(runner_bin, "encode", strings, tmp_path, tokenizer_file)
    mismatches = [(s, g, w) for s, g, w in zip(strings, got_ids, want_ids) if g != w]
    assert len(got_ids) == len(strings) and not mismatches, mismatches[:3]
    rng = random.Random(1)
    ids = want_ids + [[rng.randrange(tok.get_vocab_size()) for _ in range(rng.randint(1, 30))] for _ in range(300)]
    want_text = [tok.decode(x, skip_special_tokens=True) for x in ids]
    got_text = _run(runner_bin, "decode", ids, tmp_path, tokenizer_file)
    mismatches = [(x, g, w) for x, g, w in zip(ids, got_text, want_text) if g != w]
    assert len(got_text) == len(ids) and not mismatches, mismatches[:3]
    assert any("\ufffd" in w for w in want_text)  # the random ids did exercise invalid UTF-8


def _variant_strings(variant: str) -> list[str]:
    # the letter/number probes only show through the merges made for them
    probes = _class_probes() if variant == "letter_number_merges" else _numeric_probes()
    return _strings() + VARIANT_CASES + probes


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_pre_tokenizer_and_vocabulary_variants_equal_tokenizers(runner_bin: Path, tmp_path: Path, variant: str) -> None:
    spec = json.loads(TOKENIZER.read_text())
    VARIANTS[variant](spec)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec, ensure_ascii=False))
    _assert_like_tokenizers(runner_bin, path, _variant_strings(variant), tmp_path)


def test_digit_split_and_missing_bytes_change_the_ids() -> None:
    """The variants are not vacuous: SmolLM2's split, a prefix per digit, and each treatment of a missing byte
    give ids the plain tokenizer does not (so equal ids above mean the runner did the same thing)."""
    from tokenizers import Tokenizer

    def ids(variant: str | None, text: str) -> list[int]:
        spec = json.loads(TOKENIZER.read_text())
        if variant is not None:
            VARIANTS[variant](spec)
        return Tokenizer.from_str(json.dumps(spec)).encode(text, add_special_tokens=False).ids

    assert ids(None, "in 2024 and 1999") != ids("smollm2_digits", "in 2024 and 1999")
    assert ids("digit_runs", "a٣b") != ids("digits_prefix_space", "a٣b")
    assert ids(None, " aé 1½") != ids("letter_number_merges", " aé 1½")
    gap_text = "x\x00\x01 ñ"
    assert len({json.dumps(ids(v, gap_text)) for v in (None, "bytes_dropped", "bytes_unk", "bytes_unk_fused")}) == 4


def test_smolvlm_test_tokenizer_and_chat_strings_equal_tokenizers(runner_bin: Path, tmp_path: Path) -> None:
    """The tiny SmolVLM's tokenizer.json (model/smolvlm/synthetic.py: SmolVLM's special tokens, SmolLM2's
    pre-tokenizer) on the chat template's and image expansion's strings, digits included."""
    from mobile_mllm.model.smolvlm.synthetic import smolvlm_tokenizer

    path = tmp_path / "tokenizer.json"
    smolvlm_tokenizer().save(str(path))
    assert json.loads(path.read_text())["pre_tokenizer"]["pretokenizers"][0] == _digits(True)
    _assert_like_tokenizers(runner_bin, path, SMOLVLM_CASES + VARIANT_CASES + EDGE_CASES, tmp_path)


def _refused(runner_bin: Path, spec: dict[str, Any], tmp_path: Path) -> str:
    bad = tmp_path / "tokenizer.json"
    bad.write_text(json.dumps(spec))
    src = tmp_path / "in.jsonl"
    src.write_text('"x"\n')
    proc = subprocess.run([str(runner_bin), "--tokenizer", str(bad), "--encode", str(src)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout
    return proc.stderr


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(spec: dict[str, Any]) -> None:
        *parents, key = path.split(".")
        node = spec
        for k in parents:
            node = node[k]
        node[key] = value
    return edit


def _drop_merged_token(spec: dict[str, Any]) -> None:
    first = spec["model"]["merges"][0]
    left, right = first.split(" ") if isinstance(first, str) else first
    del spec["model"]["vocab"][left + right]


_SPLIT = {"type": "Split", "pattern": {"Regex": "\\d"}, "behavior": "Isolated", "invert": False}
REFUSALS = [  # (edit, what the message names)
    (_set("normalizer", {"type": "NFKC"}), "unsupported tokenizer (a normalizer)"),
    (_set("pre_tokenizer", None), "unsupported tokenizer (pre_tokenizer null"),
    (_set("pre_tokenizer", {"type": "Metaspace", "replacement": "▁", "prepend_scheme": "always", "split": True}),
     "unsupported tokenizer (pre_tokenizer Metaspace (supported: ByteLevel, alone or after Digits in a Sequence)"),
    (_set("pre_tokenizer", _SPLIT), "(pre_tokenizer Split "),
    (_set("pre_tokenizer", _digits(True)), "(pre_tokenizer Digits "),
    (_pre(_byte_level(), _digits(True)), "(pre_tokenizer Sequence[ByteLevel, Digits] "),
    (_pre(_SPLIT, _byte_level()), "(pre_tokenizer Sequence[Split, ByteLevel] "),
    (_pre(_digits(True), _digits(True), _byte_level()), "(pre_tokenizer Sequence[Digits, Digits, ByteLevel] "),
    (_pre(_digits(True), _byte_level(use_regex=False)), "(ByteLevel use_regex false)"),
    (_set("model.byte_fallback", True), "(byte_fallback)"),
    (_set("model.ignore_merges", True), "(ignore_merges)"),
    (_set("model.continuing_subword_prefix", "##"), "(model.continuing_subword_prefix)"),
    (_set("model.end_of_word_suffix", "</w>"), "(model.end_of_word_suffix)"),
    (_set("model.unk_token", "<unk>"), "model.unk_token '<unk>' is not in model.vocab"),
    (_drop_merged_token, "merge result '"),
]


@pytest.mark.parametrize(("edit", "named"), REFUSALS, ids=[re.sub(r"\W+", "_", n).strip("_") for _, n in REFUSALS])
def test_unsupported_tokenizer_is_refused_by_name(runner_bin: Path, tmp_path: Path,
                                                  edit: Callable[[dict[str, Any]], None], named: str) -> None:
    spec = json.loads(TOKENIZER.read_text())
    edit(spec)
    assert named in _refused(runner_bin, spec, tmp_path)
