"""The ``reference`` family: a BlueLM-V-style model built from transformers parts.

SigLIP vision tower -> 2x2 token downsampler -> 2-layer GELU projector -> Llama or Qwen2
decoder, in presets ``tiny`` (tests), ``mid`` (~0.5B) and ``bluelm-v-3b`` (~3.1B). Submodules
import torch; this package's ``__init__`` does not.
"""

from mobile_mllm.model.reference.config import (
    FAMILY,
    DecoderArchitecture,
    DecoderConfig,
    ReferenceConfig,
    TowerConfig,
    default_vision_config,
)
from mobile_mllm.model.reference.prompt import REFERENCE_PROMPT, SPECIAL_TOKENS

__all__ = [
    "FAMILY",
    "REFERENCE_PROMPT",
    "SPECIAL_TOKENS",
    "DecoderArchitecture",
    "DecoderConfig",
    "ReferenceConfig",
    "TowerConfig",
    "default_vision_config",
]
