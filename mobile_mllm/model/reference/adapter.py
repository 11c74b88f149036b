"""The ``reference`` family's :class:`~mobile_mllm.model.adapter.ModelAdapter`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.model.adapter import FAMILY_KEY, MultimodalModel, PromptFormat
from mobile_mllm.model.json_file import peek_json_object
from mobile_mllm.model.reference.config import CONFIG_FILE, FAMILY, MODEL_TYPE
from mobile_mllm.model.reference.prompt import REFERENCE_PROMPT

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.parts import DecoderParts
    from mobile_mllm.vision.config import VisionConfig

__all__ = ["ReferenceAdapter"]


class ReferenceAdapter:
    """Loads BlueLM-V-style checkpoints (SigLIP + 2x2 downsampler + MLP + Llama/Qwen2 decoder)."""

    name = FAMILY

    def can_load(self, path: Path) -> bool:
        """True when ``path/config.json`` names this family (or its ``model_type``)."""
        data = peek_json_object(Path(path) / CONFIG_FILE)
        return data is not None and (
            data.get(FAMILY_KEY) == FAMILY or data.get("model_type") == MODEL_TYPE
        )

    def load(self, path: Path, *, dtype: torch.dtype, max_context_len: int) -> MultimodalModel:
        """Load a model directory (see :func:`mobile_mllm.model.reference.checkpoint.load_reference`)."""
        from mobile_mllm.model.reference.checkpoint import load_reference

        return load_reference(Path(path), dtype=dtype, max_context_len=max_context_len)

    def decoder_parts(self, model: MultimodalModel) -> DecoderParts:
        """The HF Llama/Qwen2 decoder's parts (:func:`~mobile_mllm.model.hf_decoder.hf_decoder_parts`)."""
        from mobile_mllm.model.hf_decoder import hf_decoder_parts

        return hf_decoder_parts(model.text_decoder, model.token_embedding)

    def read_vision_config(self, path: Path) -> VisionConfig:
        """The directory's VisionConfig without loading weights (see :func:`~mobile_mllm.model.reference.files.read_vision_config`)."""
        from mobile_mllm.model.reference.files import read_vision_config

        return read_vision_config(Path(path))

    def prompt_format(self) -> PromptFormat:
        """The family's chat template and image-token layout."""
        return REFERENCE_PROMPT
