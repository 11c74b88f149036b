"""Chat template and special tokens of the ``smolvlm`` family (SmolVLM and Idefics3), defined once.

SmolVLM's chat template writes ``<|im_start|>User:<image>question<end_of_utterance>\\nAssistant:``
(``User: text`` when a turn does not open with the image) and its processor expands ``<image>``
into, per local tile, ``<fake_token_around_image><row_R_col_C>`` and the tile's image tokens, a
newline after each row, then a blank line and ``<fake_token_around_image><global-img>`` with the
global image's tokens, closed by ``<fake_token_around_image>``; an unsplit image is just the
global block. :data:`SMOLVLM_PROMPT` states that layout in :class:`PromptFormat` terms, so the
runtime's ``first_turn`` gives the processor's exact ``input_ids`` (tested against
``SmolVLMProcessor``). The strings are the published tokenizer's; nothing else spells them.
"""

from __future__ import annotations

from mobile_mllm.model.adapter import PromptFormat

__all__ = [
    "END_OF_UTTERANCE",
    "FAKE_TOKEN",
    "GLOBAL_IMAGE",
    "IMAGE",
    "IM_END",
    "IM_START",
    "SMOLVLM_PROMPT",
    "row_col_token",
]

IM_START = "<|im_start|>"
"""Opens the conversation (the chat template writes it once, before the first turn)."""
IM_END = "<|im_end|>"
"""The tokenizer's end-of-sequence token (a stop token)."""
END_OF_UTTERANCE = "<end_of_utterance>"
"""Closes a turn; the model emits it after an answer (a stop token)."""
FAKE_TOKEN = "<fake_token_around_image>"
"""Brackets each tile and the global image."""
GLOBAL_IMAGE = "<global-img>"
"""Marks the global image (the whole picture squashed to one tile)."""
IMAGE = "<image>"
"""The image placeholder of the chat template; in ``input_ids`` the id of every image position."""


def row_col_token(row: int, col: int) -> str:
    """The token naming a local tile's 1-based grid position.

    Example:
        >>> row_col_token(2, 3)
        '<row_2_col_3>'
    """
    return f"<row_{row}_col_{col}>"


SMOLVLM_PROMPT = PromptFormat(
    user_template=f"User:{{content}}{END_OF_UTTERANCE}\nAssistant:",
    turn_end=f"{END_OF_UTTERANCE}\n",
    system=IM_START,
    image_placeholder=IMAGE,
    image_start="",
    image_end=FAKE_TOKEN,
    tile_sep="",
    row_sep="",
    thumbnail_marker=GLOBAL_IMAGE,
    bos="",
    eos=(END_OF_UTTERANCE, IM_END),
    tile_start=FAKE_TOKEN + "<row_{row}_col_{col}>",  # row_col_token, filled in per tile by the layout
    row_end="\n",
    tiles_end="\n",
    thumbnail_start=FAKE_TOKEN,
    single_tile_as_thumbnail=True,
    text_lead=" ",
    image_join="",
)
"""The prompt layout of every SmolVLM/Idefics3 checkpoint (the published chat template and processor)."""
