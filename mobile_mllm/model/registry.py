"""Model families by name, and loading a model directory through the right one.

Adding a family is one line in :data:`_FAMILIES` (name -> ``module:Adapter``); the adapter
module is imported only when used, so importing this module stays light. Detection reads
``config.json``'s ``mobile_mllm_family`` key and looks the name up exactly (no guessing);
a directory without that key is offered to each adapter's ``can_load`` in turn.

``builtin:NAME`` model references resolve through :data:`BUILTIN_MODELS` (NAME -> a function
returning the directory); an unknown ``builtin:`` name is an error that lists the known ones.
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.adapter import FAMILY_KEY, ModelAdapter

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.adapter import MultimodalModel
    from mobile_mllm.model.parts import DecoderParts
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = [
    "BUILTIN_MODELS",
    "BUILTIN_PREFIX",
    "DEFAULT_MODEL",
    "decoder_parts",
    "detect_family",
    "get_adapter",
    "known_families",
    "load_model",
    "read_vision_config",
    "resolve_model_path",
]

_FAMILIES: dict[str, str] = {
    "internvl": "mobile_mllm.model.internvl.adapter:InternVLAdapter",
    "reference": "mobile_mllm.model.reference.adapter:ReferenceAdapter",
    "smolvlm": "mobile_mllm.model.smolvlm.adapter:SmolVLMAdapter",
}
"""Family name (== folder name under model/) -> "module:class" of its ModelAdapter."""

BUILTIN_PREFIX = "builtin:"
"""Prefix of a built-in model reference (``builtin:NAME``)."""
BUILTIN_MODELS: dict[str, Callable[[], Path]] = {
    "synth-small": lambda: Path(__file__).parent / "reference" / "builtin" / "synth-small",  # trained: bench/train_reference.md
}
"""Built-in model name -> a function returning its bundled directory."""

DEFAULT_MODEL = "builtin:synth-small"
"""What every command runs when no model is named: the small reference VLM trained on synthetic images."""


def known_families() -> list[str]:
    """Registered family names, sorted."""
    return sorted(_FAMILIES)


def get_adapter(family: str) -> ModelAdapter:
    """The adapter of a family, by exact name.

    Raises:
        UnsupportedModelError: for an unknown name, listing the known families.
    """
    target = _FAMILIES.get(family)
    if target is None:
        raise UnsupportedModelError(f"no family {family!r}; known: {', '.join(known_families())}")
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)()


def resolve_model_path(model: str | Path) -> Path:
    """Turn a model reference (a directory, or ``builtin:NAME``) into a directory.

    Raises:
        UnsupportedModelError: for an unknown ``builtin:`` name (listing the known ones).
        ModelLoadError: when the directory does not exist.
    """
    text = str(model)
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_MODELS:
            known = ", ".join(sorted(BUILTIN_MODELS)) or "none yet (build one with `mobile-mllm init-model`)"
            raise UnsupportedModelError(f"no built-in model {name!r}; known: {known}")
        return BUILTIN_MODELS[name]()
    path = Path(model)
    if path.exists() and not path.is_dir():
        raise ModelLoadError(f"{path} is a file; MODEL is a model directory (or builtin:NAME)")
    if not path.is_dir():
        raise ModelLoadError(f"model directory not found: {path}")
    return path


def read_vision_config(model: str | Path) -> VisionConfig:
    """How a model directory (or ``builtin:NAME``) turns images into tiles, without loading its weights.

    Raises:
        UnsupportedModelError: unknown family or built-in name (``ModelLoadError`` for a missing
            directory or a missing or malformed file).
    """
    directory = resolve_model_path(model)
    return get_adapter(detect_family(directory)).read_vision_config(directory)


def detect_family(path: Path) -> str:
    """Name the family of a model directory.

    Raises:
        ModelLoadError: when config.json is missing or unreadable.
        UnsupportedModelError: when it names an unknown family or no adapter recognises it.
    """
    config = Path(path) / "config.json"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelLoadError(f"{path}: missing config.json; is this a model directory?") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{config} is not valid JSON: {e}") from e
    family = data.get(FAMILY_KEY) if isinstance(data, dict) else None
    if family is not None:
        if family not in _FAMILIES:
            raise UnsupportedModelError(
                f"{config}: no family {family!r}; known: {', '.join(known_families())}"
            )
        return str(family)
    for name in known_families():
        if get_adapter(name).can_load(Path(path)):
            return name
    model_type = data.get("model_type") if isinstance(data, dict) else None
    architectures = data.get("architectures") if isinstance(data, dict) else None
    names = ", ".join(map(str, architectures)) if isinstance(architectures, list) and architectures else "none named"
    raise UnsupportedModelError(
        f"{config}: no {FAMILY_KEY} key and no family recognises model_type {model_type!r} (architectures: {names}); "
        f"known families: {', '.join(known_families())}"
    )


def load_model(
    path: str | Path, *, dtype: torch.dtype | None = None, max_context_len: int = 2048
) -> MultimodalModel:
    """Load a model directory (or ``builtin:NAME``) through its family's adapter.

    Args:
        path (str | Path): the model directory or a built-in name.
        dtype (torch.dtype | None): parameter/activation dtype. Default None: float32.
        max_context_len (int): KV-cache positions of ``text_decoder``. Default 2048.

    Returns:
        MultimodalModel: the three contract modules (eval mode) plus tokenizer, prompt and vision config.

    Raises:
        UnsupportedModelError: unknown family or built-in name (``ModelLoadError``, a subclass,
            for a missing or inconsistent file).
    """
    import torch

    directory = resolve_model_path(path)
    family = detect_family(directory)
    logger.debug("%s: family %s", directory, family)
    return get_adapter(family).load(directory, dtype=dtype or torch.float32, max_context_len=max_context_len)


def decoder_parts(model: MultimodalModel) -> DecoderParts:
    """The decoder parts of a loaded model, from its family's adapter (what export backends build on).

    Raises:
        UnsupportedModelError: the family cannot hand its decoder over in parts.
    """
    return get_adapter(model.family).decoder_parts(model)
