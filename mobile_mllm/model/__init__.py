"""Model families behind one interface (:class:`MultimodalModel`), and the registry that loads them.

Importing this package loads no torch; :func:`load_model` imports what a family needs.
"""

from mobile_mllm.model.adapter import ModelAdapter, MultimodalModel, PromptFormat
from mobile_mllm.model.registry import detect_family, known_families, load_model, read_vision_config, resolve_model_path

__all__ = [
    "ModelAdapter",
    "MultimodalModel",
    "PromptFormat",
    "detect_family",
    "known_families",
    "load_model",
    "read_vision_config",
    "resolve_model_path",
]
