"""The ``smolvlm`` family's :class:`~mobile_mllm.model.adapter.ModelAdapter` (SmolVLM and Idefics3 checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.model.adapter import MultimodalModel, PromptFormat
from mobile_mllm.model.json_file import peek_json_object
from mobile_mllm.model.reference.adapter import ReferenceAdapter
from mobile_mllm.model.smolvlm import FAMILY
from mobile_mllm.model.smolvlm.files import CONFIG_FILE, MODEL_TYPES
from mobile_mllm.model.smolvlm.prompt import SMOLVLM_PROMPT

if TYPE_CHECKING:
    import torch

    from mobile_mllm.vision.config import VisionConfig

__all__ = ["SmolVLMAdapter"]


class SmolVLMAdapter:
    """Loads HF SmolVLM/Idefics3 directories (SigLIP + pixel shuffle + linear connector + Llama)."""

    name = FAMILY

    def can_load(self, path: Path) -> bool:
        """True when ``path/config.json`` is a SmolVLM or Idefics3 checkpoint (``model_type`` or ``architectures``)."""
        data = peek_json_object(Path(path) / CONFIG_FILE)
        if data is None:
            return False
        architectures = data.get("architectures") or []
        return data.get("model_type") in MODEL_TYPES or any(a in MODEL_TYPES.values() for a in architectures)

    def load(self, path: Path, *, dtype: torch.dtype, max_context_len: int) -> MultimodalModel:
        """Load a directory (see :func:`mobile_mllm.model.smolvlm.checkpoint.load_smolvlm`)."""
        from mobile_mllm.model.smolvlm.checkpoint import load_smolvlm

        return load_smolvlm(Path(path), dtype=dtype, max_context_len=max_context_len)

    decoder_parts = ReferenceAdapter.decoder_parts
    """The HF Llama decoder's parts: our ``text_decoder`` is the reference family's ``StaticCacheDecoder``, so its method."""

    def read_vision_config(self, path: Path) -> VisionConfig:
        """The directory's preprocessing (:func:`~mobile_mllm.model.smolvlm.files.read_vision_config`)."""
        from mobile_mllm.model.smolvlm.files import read_vision_config

        return read_vision_config(Path(path))

    def prompt_format(self) -> PromptFormat:
        """The family's chat template and image-token layout."""
        return SMOLVLM_PROMPT
