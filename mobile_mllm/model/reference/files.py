"""Read the small files of a ``reference`` model directory (no torch): ``config.json`` and ``preprocessor_config.json``.

Split from ``checkpoint.py`` (which needs torch for the weights) so that ``grid MODEL`` and the
checks ``run`` makes before loading read a model's preprocessing in milliseconds. Every failure
names the file and what is wrong with it.

Deliberately not here: weights and the tokenizer (``checkpoint.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobile_mllm.config import from_dict
from mobile_mllm.errors import ConfigError, ModelLoadError
from mobile_mllm.model.adapter import FAMILY_KEY
from mobile_mllm.model.json_file import read_json_object
from mobile_mllm.model.reference.config import CONFIG_FILE, FAMILY, ReferenceConfig
from mobile_mllm.vision.config import VisionConfig

__all__ = [
    "PREPROCESSOR_FILE",
    "TOKENIZER_FILE",
    "WEIGHTS_FILE",
    "read_reference_config",
    "read_vision_config",
]

WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
_META_KEYS = (FAMILY_KEY, "model_type", "torch_dtype", "dtype", "architectures", "transformers_version")
"""config.json keys that describe the file, not the architecture (HF tools add the last three)."""


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, missing_hint=f" (a reference model directory needs {CONFIG_FILE}, {WEIGHTS_FILE}, "
                                               f"{TOKENIZER_FILE}, {PREPROCESSOR_FILE})")


def read_reference_config(path: Path) -> ReferenceConfig:
    """Read ``config.json`` of a model directory into a :class:`ReferenceConfig`.

    Raises:
        ModelLoadError: missing or malformed file, wrong family, unknown keys or bad values
            (the message lists each one).
    """
    data = _read_json(Path(path) / CONFIG_FILE)
    family = data.get(FAMILY_KEY)
    if family != FAMILY:
        raise ModelLoadError(f"{Path(path) / CONFIG_FILE}: {FAMILY_KEY} is {family!r}, expected {FAMILY!r}")
    body = {k: v for k, v in data.items() if k not in _META_KEYS}
    try:
        return from_dict(ReferenceConfig, body, source=str(Path(path) / CONFIG_FILE))
    except ConfigError as e:
        raise ModelLoadError(str(e)) from e


def read_vision_config(path: Path, cfg: ReferenceConfig | None = None) -> VisionConfig:
    """The directory's preprocessing (``preprocessor_config.json``, checked against the architecture), no weights read.

    Args:
        path (Path): the model directory.
        cfg (ReferenceConfig | None): its architecture when already read. Default None: read ``config.json``.

    Raises:
        ModelLoadError: a missing or malformed file, or a tile size / tokens per tile the
            architecture contradicts.
    """
    path = Path(path)
    cfg = cfg or read_reference_config(path)
    file = path / PREPROCESSOR_FILE
    try:
        vision = from_dict(VisionConfig, _read_json(file), source=str(file))
    except ConfigError as e:
        raise ModelLoadError(str(e)) from e
    if vision.tile_size != cfg.tower.image_size or vision.tokens_per_tile != cfg.tokens_per_tile:
        raise ModelLoadError(
            f"{file}: tile_size {vision.tile_size} / tokens_per_tile {vision.tokens_per_tile} do not match the "
            f"architecture in {CONFIG_FILE} (tower.image_size {cfg.tower.image_size}, "
            f"{cfg.tokens_per_tile} tokens per tile after the downsampler)"
        )
    return vision
