"""Read an InternVL-hf directory's small files (no torch): architecture check and preprocessing.

An InternVL-hf checkpoint directory (e.g. ``OpenGVLab/InternVL3-1B-hf`` as downloaded by the
user) holds ``config.json`` (``InternVLConfig``), ``preprocessor_config.json`` (the
``GotOcr2ImageProcessor`` settings), ``processor_config.json`` (``image_seq_length``), the
tokenizer files and the weights. From these :func:`read_vision_config` builds the
:class:`~mobile_mllm.vision.config.VisionConfig` that reproduces HF's processor:

- tile side = ``size`` (448), the grid = InternVL's closest-aspect-ratio rule over all grids
  of ``min_patches``..``max_patches`` tiles (``policy=internvl``, ``max_tiles=max_patches``,
  no side bound), the image stretched to the canvas, tiles row-major;
- a thumbnail (the whole image stretched to one tile) after the local tiles, none for 1 tile;
- ``image_mean``/``image_std`` and the ``resample`` filter of the file;
- tokens per tile = ``(image_size / patch_size)**2 * downsample_ratio**2`` (256 at 448/14/0.5).

Deliberately not here: weights and modules (``checkpoint.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.json_file import read_json_object
from mobile_mllm.vision.config import GridPolicy, Resample, ThumbnailPosition, VisionConfig

__all__ = [
    "ARCHITECTURE",
    "CONFIG_FILE",
    "MODEL_TYPE",
    "PREPROCESSOR_FILE",
    "PROCESSOR_FILE",
    "is_internvl_config",
    "read_json",
    "read_vision_config",
    "tokens_per_tile",
]

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
PROCESSOR_FILE = "processor_config.json"
ARCHITECTURE = "InternVLForConditionalGeneration"
MODEL_TYPE = "internvl"

_OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
"""GotOcr2ImageProcessor's defaults, used only when the file names no mean/std (as HF does)."""
_RESAMPLE = {0: Resample.NEAREST, 2: Resample.BILINEAR, 3: Resample.BICUBIC}
"""PIL filter numbers (``PILImageResampling``) the tiler can reproduce."""


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object file of an InternVL-hf directory, or a ModelLoadError naming the file."""
    return read_json_object(path, missing_hint="; is this an InternVL-hf directory?")


def is_internvl_config(data: dict[str, Any]) -> bool:
    """Whether a config.json dict describes an HF InternVL model (``model_type`` or ``architectures``)."""
    architectures = data.get("architectures") or []
    return data.get("model_type") == MODEL_TYPE or (isinstance(architectures, list) and ARCHITECTURE in architectures)


def _pair(value: Any, name: str, source: Path) -> int:
    """A square size given as an int, [h, w] or {"height", "width"}; non-square is an error."""
    if isinstance(value, dict):
        value = [value.get("height"), value.get("width")]
    if isinstance(value, int):
        return value
    if isinstance(value, list) and len(value) == 2 and value[0] == value[1] and isinstance(value[0], int):
        return value[0]
    raise ModelLoadError(f"{source}: {name} must be a square size, got {value!r}")


def tokens_per_tile(config: dict[str, Any], source: Path) -> int:
    """Image tokens per tile after the pixel shuffle: ``(image_size / patch_size)**2 * downsample_ratio**2``.

    Example:
        >>> tokens_per_tile({"downsample_ratio": 0.5, "vision_config": {"image_size": 448, "patch_size": 14}}, Path("."))
        256
    """
    vision = config.get("vision_config") or {}
    side = _pair(vision.get("image_size", 448), "vision_config.image_size", source)
    patch = _pair(vision.get("patch_size", 14), "vision_config.patch_size", source)
    ratio = float(config.get("downsample_ratio", 0.5))
    if ratio != 0.5:
        raise UnsupportedModelError(
            f"{source}: downsample_ratio {ratio} is not supported; the vision encoder implements InternVL's 2x2 "
            "pixel shuffle (downsample_ratio 0.5)"
        )
    per_side = side // patch
    if side % patch or per_side % 2:
        raise ModelLoadError(
            f"{source}: vision_config.image_size {side} / patch_size {patch} must give an even number of patches per side"
        )
    return (per_side // 2) ** 2


def _image_processor_settings(path: Path) -> dict[str, Any]:
    """preprocessor_config.json, or the ``image_processor`` table of processor_config.json (newer saves)."""
    if (path / PREPROCESSOR_FILE).is_file():
        return read_json(path / PREPROCESSOR_FILE)
    if (path / PROCESSOR_FILE).is_file():
        nested = read_json(path / PROCESSOR_FILE).get("image_processor")
        if isinstance(nested, dict):
            return nested
    raise ModelLoadError(f"{path}: missing {PREPROCESSOR_FILE}; the image processor settings are needed to tile images")


def read_vision_config(path: Path, *, policy: GridPolicy = GridPolicy.INTERNVL) -> VisionConfig:
    """The VisionConfig that reproduces the directory's HF image processor (see the module docstring).

    Args:
        path (Path): the InternVL-hf directory.
        policy (GridPolicy): the grid rule. Default internvl (the family's own); relaxed (or
            llava_next) keep the tiles, thumbnail and normalisation but pick the grid by that
            rule and pad instead of stretching.

    Raises:
        ModelLoadError: a missing or malformed file, a size that is not square, a tile size that
            differs from the vision tower's, or ``image_seq_length`` disagreeing with the tower.
        UnsupportedModelError: settings this toolkit cannot reproduce (min_patches > 1, a
            resample filter other than nearest/bilinear/bicubic, downsample_ratio != 0.5).
    """
    path = Path(path)
    config = read_json(path / CONFIG_FILE)
    pre = _image_processor_settings(path)
    source = path / PREPROCESSOR_FILE
    tile = _pair(pre.get("size", {"height": 384, "width": 384}), "size", source)
    tower = _pair((config.get("vision_config") or {}).get("image_size", 448), "vision_config.image_size", path / CONFIG_FILE)
    if tile != tower:
        raise ModelLoadError(f"{source}: size {tile} differs from the vision tower's image_size {tower} in {CONFIG_FILE}")
    per_tile = tokens_per_tile(config, path / CONFIG_FILE)
    if (path / PROCESSOR_FILE).is_file():
        seq = read_json(path / PROCESSOR_FILE).get("image_seq_length")
        if seq is not None and seq != per_tile:
            raise ModelLoadError(
                f"{path / PROCESSOR_FILE}: image_seq_length {seq} but the vision tower gives {per_tile} tokens per tile"
            )
    min_patches, max_patches = int(pre.get("min_patches", 1)), int(pre.get("max_patches", 12))
    if min_patches != 1:
        raise UnsupportedModelError(f"{source}: min_patches {min_patches} is not supported (only 1, InternVL's default)")
    crop = bool(pre.get("crop_to_patches", True))  # InternVLProcessor turns it on for images
    resample = _RESAMPLE.get(int(pre.get("resample", 3)))
    if resample is None:
        raise UnsupportedModelError(f"{source}: resample {pre.get('resample')} is not supported; use 0, 2 or 3 (nearest, bilinear, bicubic)")
    return VisionConfig(
        policy=policy,
        tile_size=tile,
        max_side=None,
        max_tiles=max_patches if crop and max_patches > 1 else 1,
        thumbnail=ThumbnailPosition.LAST,
        thumbnail_for_single=False,
        mean=tuple(float(x) for x in pre.get("image_mean", _OPENAI_CLIP_MEAN)),
        std=tuple(float(x) for x in pre.get("image_std", _OPENAI_CLIP_STD)),
        tokens_per_tile=per_tile,
        resample=resample,
    )
