"""Prompt layout: the image block spelled out by hand for each thumbnail position and separator choice."""

from __future__ import annotations

import pytest

from mobile_mllm.errors import ConfigError, ModelLoadError
from mobile_mllm.model.adapter import PromptFormat
from mobile_mllm.runtime.layout import (
    TileRef,
    TokenRun,
    count_positions,
    first_turn,
    image_block,
    next_turn,
    special_token_ids,
)
from mobile_mllm.vision.grid import Grid

FMT = PromptFormat(
    user_template="U{content}E",
    turn_end="E\n",
    image_placeholder="<image>",
    image_start="S",
    image_end="/S",
    tile_sep="T",
    row_sep="",
    thumbnail_marker="G",
    bos="B",
    eos=("E",),
)
IDS = {"S": 101, "/S": 102, "T": 103, "R": 104, "G": 105, "B": 100, "E": 99}
S, END, T, R, G, B = 101, 102, 103, 104, 105, 100


def _encode(text: str) -> list[int]:
    """A toy tokenizer: one id per character (ord)."""
    return [ord(c) for c in text]


def _flat(segments: list) -> list:
    """Expand to one entry per position: an int token id or ("tile", index)."""
    out: list = []
    for seg in segments:
        out += list(seg.ids) if isinstance(seg, TokenRun) else [("tile", seg.tile)] * seg.num_tokens
    return out


def test_thumbnail_last_2x2() -> None:
    block = image_block(FMT, grid=Grid(2, 2), thumbnail_index=4, tokens_per_tile=1, token_ids=IDS)
    tiles = [("tile", i) for i in range(5)]
    assert _flat(block) == [S, tiles[0], T, tiles[1], T, tiles[2], T, tiles[3], T, G, tiles[4], END]


def test_thumbnail_first_shifts_local_tiles() -> None:
    block = image_block(FMT, grid=Grid(2, 1), thumbnail_index=0, tokens_per_tile=2, token_ids=IDS)
    assert _flat(block) == [S, G, ("tile", 0), ("tile", 0), ("tile", 1), ("tile", 1), T, ("tile", 2), ("tile", 2), T, END]


def test_no_thumbnail_and_row_separator() -> None:
    fmt = PromptFormat(image_start="S", image_end="/S", tile_sep="T", row_sep="R", thumbnail_marker="G")
    block = image_block(fmt, grid=Grid(3, 2), thumbnail_index=None, tokens_per_tile=1, token_ids=IDS)
    t = [("tile", i) for i in range(6)]
    assert _flat(block) == [S, t[0], T, t[1], T, t[2], R, t[3], T, t[4], T, t[5], R, END]


def test_empty_special_strings_are_left_out() -> None:
    fmt = PromptFormat(image_start="", image_end="", tile_sep="", thumbnail_marker="")
    block = image_block(fmt, grid=Grid(1, 2), thumbnail_index=2, tokens_per_tile=3, token_ids={})
    assert block == [TileRef(0, 3), TileRef(1, 3), TileRef(2, 3)]
    assert count_positions(block) == 9


def test_bad_thumbnail_index() -> None:
    with pytest.raises(ConfigError, match="thumbnail_index must be 0, 4"):
        image_block(FMT, grid=Grid(2, 2), thumbnail_index=2, tokens_per_tile=1, token_ids=IDS)


def test_first_turn_puts_image_at_placeholder() -> None:
    block = image_block(FMT, grid=Grid(1, 1), thumbnail_index=None, tokens_per_tile=1, token_ids=IDS)
    segs = first_turn(FMT, "a<image>b", encode=_encode, token_ids=IDS, image=block)
    assert _flat(segs) == [B, ord("U"), ord("a"), S, ("tile", 0), T, END, ord("b"), ord("E")]


def test_first_turn_without_placeholder_puts_image_on_its_own_line_first() -> None:
    block = [TileRef(0, 1)]
    segs = first_turn(FMT, "q", encode=_encode, token_ids=IDS, image=block)
    assert _flat(segs) == [B, ord("U"), ("tile", 0), ord("\n"), ord("q"), ord("E")]


def test_first_turn_text_only_and_two_placeholders() -> None:
    assert _flat(first_turn(FMT, "hi", encode=_encode, token_ids=IDS)) == [B, *map(ord, "UhiE")]
    with pytest.raises(ConfigError, match="2 image placeholders"):
        first_turn(FMT, "<image><image>", encode=_encode, token_ids=IDS, image=[TileRef(0, 1)])


def test_next_turn_feeds_unfed_answer_then_turn_end() -> None:
    segs = next_turn(FMT, "q2", encode=_encode, unfed_answer=[7])
    assert _flat(segs) == [7, *map(ord, "E\nUq2E")]
    assert count_positions(segs) == 7


class _Tok:
    def __init__(self, vocab: dict[str, int]) -> None:
        self.vocab = vocab

    def token_to_id(self, token: str) -> int | None:
        return self.vocab.get(token)


def test_special_token_ids_and_missing_token() -> None:
    assert special_token_ids(_Tok(IDS), FMT) == {k: v for k, v in IDS.items() if k != "R"}
    missing = {k: v for k, v in IDS.items() if k != "G"}
    with pytest.raises(ModelLoadError, match="'G'.*not in the tokenizer"):
        special_token_ids(_Tok(missing), FMT)


# --------------------------------------------------------------------------- text fields (SmolVLM-style tiles)


def _char_encode(text: str) -> list[int]:
    """A stand-in tokenizer: one id per character, so the expected ids can be written by hand."""
    return [ord(c) for c in text]


def test_text_fields_lay_out_row_and_column_markers_and_join_text_between_tiles() -> None:
    fmt = PromptFormat(
        image_start="", image_end="E", tile_sep="", row_sep="", thumbnail_marker="G", tile_start="[{row}{col}]",
        row_end="/", tiles_end="|", thumbnail_start="<",
    )
    ids = {"E": ord("E"), "G": ord("G")}
    block = image_block(fmt, grid=Grid(2, 1), thumbnail_index=2, tokens_per_tile=3, token_ids=ids, encode=_char_encode)
    assert block == [
        TokenRun(tuple(map(ord, "[11]"))), TileRef(0, 3), TokenRun(tuple(map(ord, "[12]"))), TileRef(1, 3),
        TokenRun(tuple(map(ord, "/|<G"))), TileRef(2, 3), TokenRun((ord("E"),)),
    ]


def test_a_lone_tile_can_be_laid_out_as_the_thumbnail() -> None:
    fmt = PromptFormat(image_start="", image_end="E", tile_sep="", thumbnail_marker="G", tile_start="[{row}{col}]",
                       thumbnail_start="<", single_tile_as_thumbnail=True)
    block = image_block(fmt, grid=Grid(1, 1), thumbnail_index=None, tokens_per_tile=3,
                        token_ids={"E": 69, "G": 71}, encode=_char_encode)
    assert block == [TokenRun((ord("<"), ord("G"))), TileRef(0, 3), TokenRun((ord("E"),))]


def test_text_fields_without_an_encoder_are_refused() -> None:
    with pytest.raises(ConfigError, match="pass encode"):
        image_block(PromptFormat(row_end="\n"), grid=Grid(1, 1), thumbnail_index=None, tokens_per_tile=1, token_ids={})


def test_text_lead_and_image_join_follow_a_template_that_spaces_text_but_not_images() -> None:
    fmt = PromptFormat(user_template="U:{content}.", system="", image_start="", image_end="", tile_sep="",
                       thumbnail_marker="", text_lead=" ", image_join="")
    image = [TileRef(0, 2)]
    assert first_turn(fmt, "hi", encode=_char_encode, token_ids={}, image=image) == [
        TokenRun(tuple(map(ord, "U:"))), TileRef(0, 2), TokenRun(tuple(map(ord, "hi.")))]
    assert first_turn(fmt, "hi<image>", encode=_char_encode, token_ids={}, image=image) == [
        TokenRun(tuple(map(ord, "U: hi"))), TileRef(0, 2), TokenRun((ord("."),))]
    assert next_turn(fmt, "and?", encode=_char_encode) == [TokenRun(tuple(map(ord, "<|end|>\nU: and?.")))]
