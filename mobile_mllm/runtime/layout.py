"""The order of positions in a prompt: runs of token ids and references to tile embeddings.

A pure function of the :class:`~mobile_mllm.model.adapter.PromptFormat`, the tile grid, the
thumbnail's index among the tiles and the tokenizer's ids, so the host session, the export
manifest and the phone runner lay a prompt out identically (and a test can compare them).
The image block follows ``PromptFormat``'s docstring::

    image_start, [thumbnail_marker, THUMB], TILE_0, tile_sep, ..., TILE_k, tile_sep, image_end

with the thumbnail block first or last as the tiles come (``thumbnail_index``), and
``row_sep`` replacing ``tile_sep`` after a row's last tile when set. Empty special strings are
left out. Deliberately not here: tokenizers, tensors, any model call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mobile_mllm.errors import ConfigError, ModelLoadError
from mobile_mllm.model.adapter import PromptFormat
from mobile_mllm.vision.grid import Grid

logger = logging.getLogger(__name__)

__all__ = [
    "Segment",
    "TileRef",
    "TokenRun",
    "count_positions",
    "first_turn",
    "image_block",
    "next_turn",
    "special_token_ids",
]


@dataclass(frozen=True)
class TokenRun:
    """Consecutive positions filled by the embeddings of these token ids."""

    ids: tuple[int, ...]


@dataclass(frozen=True)
class TileRef:
    """Consecutive positions filled by one tile's embeddings (``vision_encoder`` output row ``tile``)."""

    tile: int
    num_tokens: int


Segment = TokenRun | TileRef


class _HasTokenToId(Protocol):
    def token_to_id(self, token: str) -> int | None: ...


def special_token_ids(tokenizer: _HasTokenToId, fmt: PromptFormat) -> dict[str, int]:
    """Map each non-empty special string of ``fmt`` to its id in ``tokenizer``.

    Raises:
        ModelLoadError: a special token of the prompt format is not a single token of the
            tokenizer (the tokenizer and the model's prompt format do not belong together).
    """
    names = [fmt.image_start, fmt.image_end, fmt.tile_sep, fmt.row_sep, fmt.thumbnail_marker, fmt.bos, *fmt.eos]
    ids: dict[str, int] = {}
    for name in names:
        if not name:
            continue
        tid = tokenizer.token_to_id(name)
        if tid is None:
            raise ModelLoadError(
                f"special token {name!r} of the prompt format is not in the tokenizer; "
                "check that tokenizer.json belongs to this model (it must define the image and stop tokens)"
            )
        ids[name] = tid
    return ids


def _special(name: str, ids: Mapping[str, int]) -> tuple[int, ...]:
    return (ids[name],) if name else ()


def image_block(
    fmt: PromptFormat,
    *,
    grid: Grid,
    thumbnail_index: int | None,
    tokens_per_tile: int,
    token_ids: Mapping[str, int],
    encode: Callable[[str], Sequence[int]] | None = None,
) -> list[Segment]:
    """The segments that stand for one image.

    Args:
        fmt (PromptFormat): layout tokens.
        grid (Grid): local tiles, ``cols`` across and ``rows`` down, row-major in the tile tensor.
        thumbnail_index (int | None): index of the thumbnail in the tile tensor (0 = before the
            local tiles, ``grid.num_tiles`` = after them), or None without a thumbnail.
        tokens_per_tile (int): embeddings per tile.
        token_ids (Mapping[str, int]): special string -> id (:func:`special_token_ids`).
        encode (Callable[[str], Sequence[int]] | None): text -> ids, special tokens recognised, as in
            :func:`first_turn`; needed when ``fmt`` sets its text fields (``tile_start`` ...): the
            text between two tiles is then tokenized as one piece, as the family's processor does.
            Default None: every item is looked up in ``token_ids``.

    Returns:
        list[Segment]: the image block, adjacent token runs merged.

    Raises:
        ConfigError: ``fmt`` sets a text field but no ``encode`` is given, or a bad ``thumbnail_index``.

    Example:
        >>> fmt = PromptFormat(image_start="<i>", image_end="</i>", tile_sep="<t>", thumbnail_marker="<g>")
        >>> ids = {"<i>": 1, "</i>": 2, "<t>": 3, "<g>": 4}
        >>> image_block(fmt, grid=Grid(2, 1), thumbnail_index=2, tokens_per_tile=5, token_ids=ids)
        [TokenRun(ids=(1,)), TileRef(tile=0, num_tokens=5), TokenRun(ids=(3,)), TileRef(tile=1, num_tokens=5), TokenRun(ids=(3, 4)), TileRef(tile=2, num_tokens=5), TokenRun(ids=(2,))]
    """
    n_local = grid.num_tiles
    if thumbnail_index not in (None, 0, n_local):
        raise ConfigError(f"thumbnail_index must be 0, {n_local} (the number of local tiles) or None, got {thumbnail_index}")
    texts = (fmt.tile_start, fmt.row_end, fmt.tiles_end, fmt.thumbnail_start)
    if encode is None and any(texts):
        raise ConfigError("this prompt format marks tiles with text (tile_start, row_end, ...): pass encode")
    # Items are strings (special tokens, or text when fmt sets its text fields) and tile references.
    if fmt.single_tile_as_thumbnail and n_local == 1 and thumbnail_index is None:
        n_local, thumbnail_index = 0, 0  # the lone tile is the global view
    offset = 1 if thumbnail_index == 0 else 0
    thumb: list[str | TileRef] = []
    if thumbnail_index is not None:
        thumb = [fmt.thumbnail_start, fmt.thumbnail_marker, TileRef(thumbnail_index, tokens_per_tile)]
    local: list[str | TileRef] = []
    for i in range(n_local):
        last_in_row = (i + 1) % grid.cols == 0
        sep = fmt.row_sep if (last_in_row and fmt.row_sep) else fmt.tile_sep
        start = fmt.tile_start.format(row=i // grid.cols + 1, col=i % grid.cols + 1)
        local += [start, TileRef(i + offset, tokens_per_tile), sep]
        if last_in_row:
            local.append(fmt.row_end)
    if thumbnail_index == 0:
        body = thumb + local
    else:
        body = local + ([fmt.tiles_end] if thumb else []) + thumb
    items = [fmt.image_start, *body, fmt.image_end]
    return _merge(_tokenize(items, token_ids, encode))


def _tokenize(
    items: Sequence[str | TileRef], token_ids: Mapping[str, int], encode: Callable[[str], Sequence[int]] | None
) -> list[Segment]:
    """Turn layout items into segments: each run of strings between two tiles becomes one token run.

    With ``encode`` the run is joined and tokenized at once (special tokens are recognised, so a
    special item gets the id a lookup would give); without, each string is a special token looked up.
    """
    out: list[Segment] = []
    run: list[str] = []

    def flush() -> None:
        if encode is not None:
            out.append(TokenRun(tuple(encode("".join(run))) if run else ()))
        else:
            out.append(TokenRun(tuple(i for s in run for i in _special(s, token_ids))))
        run.clear()

    for item in items:
        if isinstance(item, TileRef):
            flush()
            out.append(item)
        elif item:
            run.append(item)
    flush()
    return out


def _merge(segments: Sequence[Segment]) -> list[Segment]:
    """Join adjacent token runs and drop empty ones."""
    out: list[Segment] = []
    for seg in segments:
        if isinstance(seg, TokenRun):
            if not seg.ids:
                continue
            if out and isinstance(out[-1], TokenRun):
                out[-1] = TokenRun(out[-1].ids + seg.ids)
                continue
        out.append(seg)
    return out


def first_turn(
    fmt: PromptFormat,
    question: str,
    *,
    encode: Callable[[str], Sequence[int]],
    token_ids: Mapping[str, int],
    image: Sequence[Segment] | None = None,
) -> list[Segment]:
    """The segments of a conversation's first turn: bos, system, the user turn with the image.

    Without ``image`` placeholders are plain text. With ``image``, the image goes where the
    question has ``fmt.image_placeholder``, or before the question (on its own line) when the
    question has none.

    Args:
        fmt (PromptFormat): the chat template.
        question (str): the user's text.
        encode (Callable[[str], Sequence[int]]): text -> token ids, special tokens recognised,
            nothing added (e.g. ``tokenizer.encode(s, add_special_tokens=False).ids``).
        token_ids (Mapping[str, int]): special string -> id.
        image (Sequence[Segment] | None): the :func:`image_block`, or None for a text-only turn.

    Raises:
        ConfigError: the question holds more than one image placeholder (one image per conversation).
    """
    content = question
    if image is not None:
        count = question.count(fmt.image_placeholder)
        if count > 1:
            raise ConfigError(
                f"the prompt holds {count} image placeholders {fmt.image_placeholder!r}; "
                "a conversation takes one image: keep at most one"
            )
        if count == 0:
            content = f"{fmt.image_placeholder}{fmt.image_join}{question}"
    if image is None or not content.startswith(fmt.image_placeholder):
        content = fmt.text_lead + content
    text = fmt.system + fmt.user_template.format(content=content)
    segments: list[Segment] = [TokenRun(_special(fmt.bos, token_ids))]
    if image is None:
        segments.append(TokenRun(tuple(encode(text))))
    else:
        before, after = text.split(fmt.image_placeholder, 1)
        segments += [TokenRun(tuple(encode(before))), *image, TokenRun(tuple(encode(after)))]
    return _merge(segments)


def next_turn(
    fmt: PromptFormat,
    question: str,
    *,
    encode: Callable[[str], Sequence[int]],
    unfed_answer: Sequence[int] = (),
) -> list[Segment]:
    """The segments of a follow-up turn, prefilled right after the previous answer.

    Args:
        fmt (PromptFormat): the chat template.
        question (str): the user's text.
        encode (Callable[[str], Sequence[int]]): as in :func:`first_turn`.
        unfed_answer (Sequence[int]): tokens of the previous answer not yet in the KV cache
            (its last token, unless it was a stop token: stop tokens are replaced by ``turn_end``).
    """
    text = fmt.turn_end + fmt.user_template.format(content=fmt.text_lead + question)
    return _merge([TokenRun(tuple(unfed_answer)), TokenRun(tuple(encode(text)))])


def count_positions(segments: Sequence[Segment]) -> int:
    """KV-cache positions the segments fill."""
    return sum(len(s.ids) if isinstance(s, TokenRun) else s.num_tokens for s in segments)
