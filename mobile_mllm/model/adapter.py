"""What every model family hands to the rest of the toolkit.

Downstream code (quant, export, runtime, eval, demo) sees only :class:`MultimodalModel` and
:class:`PromptFormat`; a family folder (``model/<family>/``) builds them from a checkpoint.
The three modules have exactly the signatures of the ExecuTorch multimodal runner contract
(``mobile_mllm.contract``), so the eager model and the exported program are interchangeable
behind the runtime's method runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:  # torch is heavy; annotations only
    import torch
    from tokenizers import Tokenizer

    from mobile_mllm.model.parts import DecoderParts
    from mobile_mllm.vision.config import VisionConfig

FAMILY_KEY = "mobile_mllm_family"
"""Key of a model directory's config.json naming its family; the registry dispatches on it."""


@dataclass(frozen=True)
class PromptFormat:
    """Chat template and image-token layout of a model. Stored in manifest.json.

    A user turn is ``user_template.format(content=...)``; the content holds
    ``image_placeholder`` where the image goes (first turn only). The image expands to::

        image_start, [thumbnail_marker, THUMB], TILE_0, tile_sep, TILE_1, tile_sep, ..., image_end

    (the thumbnail block before or after the local tiles according to
    ``VisionConfig.thumbnail``; a row of tiles ends with ``row_sep`` instead of ``tile_sep``
    when ``row_sep`` is set). Each ``TILE``/``THUMB`` stands for ``tokens_per_tile`` embeddings
    from ``vision_encoder``; every other item is a special token of the tokenizer.

    Families that mark tiles with text (SmolVLM/Idefics3: ``<fake_token_around_image><row_1_col_2>``
    before a tile, a newline after each row, ``<global-img>`` before the global view) also set
    the text fields below (``tile_start``, ``row_end``, ``tiles_end``, ``thumbnail_start``),
    which are tokenized with the text around them, so a prompt gets exactly the ids the family's
    own processor gives. Their defaults (empty) leave the layout above unchanged::

        image_start, TILE_START(1,1), TILE_0, tile_sep, ..., [ROW_END], ..., [TILES_END],
        THUMBNAIL_START, thumbnail_marker, THUMB, image_end
    """

    user_template: str = "<|user|>\n{content}<|end|>\n<|assistant|>\n"
    """A user turn; {content} is the question (with the image placeholder on the first turn)."""
    turn_end: str = "<|end|>\n"
    """Text appended after an answer when another turn follows."""
    system: str = ""
    """Text before the first turn (may be empty)."""
    image_placeholder: str = "<image>"
    """Marks where the image goes inside the first user turn."""
    image_start: str = "<img>"
    """Special token opening the image block."""
    image_end: str = "</img>"
    """Special token closing the image block."""
    tile_sep: str = "<tile>"
    """Special token after each local tile."""
    row_sep: str = ""
    """Special token after the last tile of each row instead of tile_sep (empty: not used)."""
    thumbnail_marker: str = "<thumb>"
    """Special token before the thumbnail's embeddings."""
    bos: str = ""
    """Token prepended to the whole prompt (empty: none)."""
    eos: tuple[str, ...] = ("<|end|>", "<|endoftext|>")
    """Tokens that stop generation."""
    tile_start: str = ""
    """Text before each local tile; ``{row}`` and ``{col}`` are its 1-based grid position (empty: none)."""
    row_end: str = ""
    """Text after the separator of each row's last tile (empty: none)."""
    tiles_end: str = ""
    """Text after the local tiles when the thumbnail follows them (empty: none)."""
    thumbnail_start: str = ""
    """Text before ``thumbnail_marker`` (empty: none)."""
    single_tile_as_thumbnail: bool = False
    """Lay a lone tile (1x1 grid, no thumbnail) out as the thumbnail: SmolVLM calls an unsplit image its global image."""
    text_lead: str = ""
    """Text before a turn's content that does not begin with the image (SmolVLM: ``User: text`` but ``User:<image>``)."""
    image_join: str = "\n"
    """Text between the image and the question when the question has no image placeholder (the image goes first)."""
    question_template: str = "{question}"
    """How a user's question is worded before it enters the user turn (``{question}`` is the
    user's text): the model's prompt style, e.g. an answer-format instruction it was trained
    with. Applied by ``Session.ask``, so every entry point (run, demo, eval) asks the way the
    model expects without a flag. Default: the question as typed."""

    def style_question(self, question: str) -> str:
        """The user's ``question`` in this model's prompt style (:attr:`question_template`).

        Example:
            >>> PromptFormat(question_template="{question} Answer briefly.").style_question("What colour?")
            'What colour? Answer briefly.'
        """
        return self.question_template.replace("{question}", question)


@dataclass
class MultimodalModel:
    """A loaded model: three contract modules plus everything needed to prompt them.

    ``vision_encoder(tiles[B, 3, S, S]) -> [B, N, D]`` (vision tower + downsampler + projector),
    ``token_embedding(tokens[1, T] int64) -> [1, T, D]``,
    ``text_decoder(embeds[1, T, D], start_pos[1] int64) -> logits[1, V]`` of the last position,
    with a static KV cache of ``max_context_len`` positions held as buffers inside ``text_decoder``.
    """

    family: str
    vision_encoder: torch.nn.Module
    token_embedding: torch.nn.Module
    text_decoder: torch.nn.Module
    tokenizer: Tokenizer
    vision: VisionConfig
    prompt: PromptFormat
    max_context_len: int
    eos_ids: tuple[int, ...]
    bos_id: int | None
    special_ids: dict[str, int]
    hidden_size: int
    vocab_size: int
    source: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class ModelAdapter(Protocol):
    """One per family, registered by name in ``model/registry.py``."""

    name: str

    def can_load(self, path: Path) -> bool:
        """Whether ``path`` (an HF-style directory) is a checkpoint of this family."""
        ...

    def load(self, path: Path, *, dtype: torch.dtype, max_context_len: int) -> MultimodalModel:
        """Load a checkpoint directory into the contract modules (eval mode, no grad)."""
        ...

    def decoder_parts(self, model: MultimodalModel) -> DecoderParts:
        """The parts an export backend rebuilds ``model``'s decoder from (``model/parts.py``), sharing its modules."""
        ...

    def read_vision_config(self, path: Path) -> VisionConfig:
        """The directory's preprocessing, read from its small files without loading weights.

        ``grid MODEL`` shows it and ``run`` checks the image with it before the (slow) load.
        """
        ...
