"""The ``smolvlm`` family's :class:`~mobile_mllm.model.adapter.ModelAdapter` (SmolVLM and Idefics3 checkpoints)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.model.adapter import MultimodalModel, PromptFormat
from mobile_mllm.model.smolvlm import FAMILY
from mobile_mllm.model.smolvlm.files import CONFIG_FILE, MODEL_TYPES
from mobile_mllm.model.smolvlm.prompt import SMOLVLM_PROMPT

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.parts import DecoderParts
    from mobile_mllm.vision.config import VisionConfig

__all__ = ["SmolVLMAdapter"]


class SmolVLMAdapter:
    """Loads HF SmolVLM/Idefics3 directories (SigLIP + pixel shuffle + linear connector + Llama)."""

    name = FAMILY

    def can_load(self, path: Path) -> bool:
        """True when ``path/config.json`` is a SmolVLM or Idefics3 checkpoint (``model_type`` or ``architectures``)."""
        try:
            data = json.loads((Path(path) / CONFIG_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if not isinstance(data, dict):
            return False
        architectures = data.get("architectures") or []
        return data.get("model_type") in MODEL_TYPES or any(a in MODEL_TYPES.values() for a in architectures)

    def load(self, path: Path, *, dtype: torch.dtype, max_context_len: int) -> MultimodalModel:
        """Load a directory (see :func:`mobile_mllm.model.smolvlm.checkpoint.load_smolvlm`)."""
        from mobile_mllm.model.smolvlm.checkpoint import load_smolvlm

        return load_smolvlm(Path(path), dtype=dtype, max_context_len=max_context_len)

    def decoder_parts(self, model: MultimodalModel) -> DecoderParts:
        """The HF Llama decoder's parts (:func:`~mobile_mllm.model.hf_decoder.hf_decoder_parts`)."""
        from mobile_mllm.model.hf_decoder import hf_decoder_parts

        return hf_decoder_parts(model.text_decoder, model.token_embedding)

    def read_vision_config(self, path: Path) -> VisionConfig:
        """The directory's preprocessing (:func:`~mobile_mllm.model.smolvlm.files.read_vision_config`)."""
        from mobile_mllm.model.smolvlm.files import read_vision_config

        return read_vision_config(Path(path))

    def prompt_format(self) -> PromptFormat:
        """The family's chat template and image-token layout."""
        return SMOLVLM_PROMPT
