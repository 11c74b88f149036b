"""The ``internvl`` family's :class:`~mobile_mllm.model.adapter.ModelAdapter`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.model.adapter import MultimodalModel, PromptFormat
from mobile_mllm.model.json_file import peek_json_object
from mobile_mllm.model.internvl.files import CONFIG_FILE, is_internvl_config
from mobile_mllm.model.internvl.prompt import FAMILY, INTERNVL_PROMPT

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.parts import DecoderParts
    from mobile_mllm.vision.config import VisionConfig

__all__ = ["InternVLAdapter"]


class InternVLAdapter:
    """Loads HF ``InternVLForConditionalGeneration`` directories (InternViT + pixel shuffle + Qwen2)."""

    name = FAMILY

    def can_load(self, path: Path) -> bool:
        """True when ``path/config.json`` has ``model_type`` internvl or the InternVL architecture."""
        data = peek_json_object(Path(path) / CONFIG_FILE)
        return data is not None and is_internvl_config(data)

    def load(self, path: Path, *, dtype: torch.dtype, max_context_len: int) -> MultimodalModel:
        """Load the checkpoint (see :func:`mobile_mllm.model.internvl.checkpoint.load_internvl`)."""
        from mobile_mllm.model.internvl.checkpoint import load_internvl

        return load_internvl(Path(path), dtype=dtype, max_context_len=max_context_len)

    def decoder_parts(self, model: MultimodalModel) -> DecoderParts:
        """The Qwen2/Llama decoder's parts (:func:`~mobile_mllm.model.hf_decoder.hf_decoder_parts`)."""
        from mobile_mllm.model.hf_decoder import hf_decoder_parts

        return hf_decoder_parts(model.text_decoder, model.token_embedding)

    def read_vision_config(self, path: Path) -> VisionConfig:
        """InternVL's own preprocessing, read from the directory (:func:`~mobile_mllm.model.internvl.files.read_vision_config`)."""
        from mobile_mllm.model.internvl.files import read_vision_config

        return read_vision_config(Path(path))

    def prompt_format(self) -> PromptFormat:
        """The family's chat template and image-token layout."""
        return INTERNVL_PROMPT
