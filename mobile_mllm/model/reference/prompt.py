"""Chat template and special tokens of the ``reference`` family, defined once.

The tokenizer trainer registers :data:`SPECIAL_TOKENS` as special tokens, the model loader
looks their ids up, and the runtime lays out prompts from :data:`REFERENCE_PROMPT`; nothing
else spells these strings.
"""

from __future__ import annotations

from mobile_mllm.model.adapter import PromptFormat

__all__ = ["ASSISTANT", "END", "ENDOFTEXT", "PAD", "REFERENCE_PROMPT", "SPECIAL_TOKENS", "USER"]

ENDOFTEXT = "<|endoftext|>"
"""End of a document; also a stop token."""
PAD = "<|pad|>"
"""Padding token (never generated)."""
USER = "<|user|>"
"""Opens a user turn."""
END = "<|end|>"
"""Closes a turn; the model emits it after an answer (a stop token)."""
ASSISTANT = "<|assistant|>"
"""Opens the assistant's answer."""

REFERENCE_PROMPT = PromptFormat(
    user_template=f"{USER}\n{{content}}{END}\n{ASSISTANT}\n",
    turn_end=f"{END}\n",
    system="",
    image_placeholder="<image>",
    image_start="<img>",
    image_end="</img>",
    tile_sep="<tile>",
    row_sep="",
    thumbnail_marker="<thumb>",
    bos="",
    eos=(END, ENDOFTEXT),
)
"""The prompt layout of every reference-family model."""

SPECIAL_TOKENS: tuple[str, ...] = (
    ENDOFTEXT,
    PAD,
    USER,
    END,
    ASSISTANT,
    REFERENCE_PROMPT.image_placeholder,
    REFERENCE_PROMPT.image_start,
    REFERENCE_PROMPT.image_end,
    REFERENCE_PROMPT.tile_sep,
    REFERENCE_PROMPT.thumbnail_marker,
)
"""Every special token, in id order (ids 0..len-1 of the bundled tokenizer)."""
