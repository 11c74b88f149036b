"""Chat template, image tokens and stop tokens of the ``internvl`` family, spelled once.

InternVL-hf checkpoints (Qwen2 tokenizer) render a user turn as
``<|im_start|>user\\n<IMG_CONTEXT>\\n{question}<|im_end|>\\n<|im_start|>assistant\\n`` (their
``chat_template``), and ``InternVLProcessor`` then replaces the ``<IMG_CONTEXT>`` placeholder
with ``<img>`` + ``<IMG_CONTEXT>`` x (tiles x tokens per tile) + ``</img>``: no separator
between tiles and no marker before the thumbnail, which comes last. In our
:class:`~mobile_mllm.model.adapter.PromptFormat` that is an empty ``tile_sep`` and
``thumbnail_marker``; the image positions get the vision encoder's embeddings directly (the
``<IMG_CONTEXT>`` ids HF writes there are never embedded), so nothing else is needed.
"""

from __future__ import annotations

from mobile_mllm.model.adapter import PromptFormat

__all__ = ["CONTEXT_IMAGE_TOKEN", "END_IMAGE_TOKEN", "FAMILY", "INTERNVL_PROMPT", "START_IMAGE_TOKEN"]

FAMILY = "internvl"
"""Registry key == folder name."""

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
ENDOFTEXT = "<|endoftext|>"
START_IMAGE_TOKEN = "<img>"
END_IMAGE_TOKEN = "</img>"
CONTEXT_IMAGE_TOKEN = "<IMG_CONTEXT>"
"""HF's image placeholder (``config.image_token_id``); also where the chat template puts the image."""

INTERNVL_PROMPT = PromptFormat(
    user_template=f"{IM_START}user\n{{content}}{IM_END}\n{IM_START}assistant\n",
    turn_end=f"{IM_END}\n",
    system="",
    image_placeholder=CONTEXT_IMAGE_TOKEN,
    image_start=START_IMAGE_TOKEN,
    image_end=END_IMAGE_TOKEN,
    tile_sep="",
    row_sep="",
    thumbnail_marker="",
    bos="",
    eos=(IM_END, ENDOFTEXT),
)
"""The prompt layout of InternVL-hf checkpoints (InternVL3 chat template, no system turn)."""
