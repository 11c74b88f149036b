"""The small files of a SmolVLM/Idefics3 directory: which model it is and how it preprocesses.

Read without torch or transformers, so ``grid MODEL`` and ``run``'s checks before the (slow)
load stay light. The preprocessing is the directory's own (``preprocessor_config.json``, the
HF image processor's settings) mapped onto a :class:`VisionConfig` with the ``smolvlm`` grid
policy; a setting this toolkit does not reproduce is an error naming it, never ignored.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model.json_file import read_json_object
from mobile_mllm.vision.config import GridPolicy, Resample, ThumbnailPosition, VisionConfig

__all__ = ["CONFIG_FILE", "MODEL_TYPES", "PREPROCESSOR_FILE", "read_config", "read_vision_config", "tokens_per_tile"]

CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
MODEL_TYPES = {"smolvlm": "SmolVLMForConditionalGeneration", "idefics3": "Idefics3ForConditionalGeneration"}
"""config.json ``model_type`` -> the transformers class of that checkpoint (``architectures``)."""

_PIL_RESAMPLE = {0: Resample.NEAREST, 1: Resample.LANCZOS, 2: Resample.BILINEAR, 3: Resample.BICUBIC}
"""PIL's filter numbers (what HF image processors store as ``resample``) -> ours."""


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, missing_hint="; a SmolVLM directory holds the HF checkpoint and processor files")


def read_config(path: Path) -> dict[str, Any]:
    """``config.json`` of a SmolVLM/Idefics3 directory.

    Raises:
        ModelLoadError: missing or malformed.
        UnsupportedModelError: its ``model_type`` is not smolvlm or idefics3.
    """
    config = _read_json(Path(path) / CONFIG_FILE)
    if config.get("model_type") not in MODEL_TYPES:
        raise UnsupportedModelError(
            f"{path}/{CONFIG_FILE}: model_type {config.get('model_type')!r} is not one of {', '.join(MODEL_TYPES)}"
        )
    return config


def tokens_per_tile(config: dict[str, Any]) -> int:
    """Image tokens per tile: ``(image_size / patch_size)**2 / scale_factor**2`` (the processor's ``image_seq_len``).

    Example:
        >>> tokens_per_tile({"scale_factor": 4, "vision_config": {"image_size": 512, "patch_size": 16}})
        64
    """
    vision = config.get("vision_config") or {}
    side = int(vision.get("image_size", 224)) // int(vision.get("patch_size", 32))
    scale = int(config.get("scale_factor", 2))
    if side % scale:
        raise UnsupportedModelError(f"{side} patches per side do not split into pixel-shuffle blocks of {scale}")
    return (side // scale) ** 2


def read_vision_config(path: Path) -> VisionConfig:
    """The directory's preprocessing as a :class:`VisionConfig` (policy ``smolvlm``), no weights loaded.

    ``max_image_size.longest_edge`` is the tile, ``size.longest_edge`` the first resize; the
    global image comes after the local tiles, an unsplit image is the global image alone.

    Raises:
        ModelLoadError: a file is missing or malformed.
        UnsupportedModelError: a setting we do not reproduce (no image splitting, another
            rescale factor, a tile that is not the vision tower's ``image_size``, ...).
    """
    path = Path(path)
    config = read_config(path)
    pre = _read_json(path / PREPROCESSOR_FILE)
    where = f"{path / PREPROCESSOR_FILE}"
    try:
        tile = int(pre.get("max_image_size", {}).get("longest_edge", 364))
        longest = int(pre.get("size", {}).get("longest_edge", 4 * tile))
        resample = _PIL_RESAMPLE[int(pre.get("resample", 1))]
        mean = tuple(float(v) for v in pre.get("image_mean", (0.5, 0.5, 0.5)))
        std = tuple(float(v) for v in pre.get("image_std", (0.5, 0.5, 0.5)))
    except (AttributeError, KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"{where}: unreadable max_image_size/size/resample/image_mean/image_std ({e})") from e
    unsupported = {
        "do_image_splitting": (pre.get("do_image_splitting", True), True),
        "do_resize": (pre.get("do_resize", True), True),
        "do_rescale": (pre.get("do_rescale", True), True),
        "do_normalize": (pre.get("do_normalize", True), True),
    }
    for key, (got, want) in unsupported.items():
        if bool(got) != want:
            raise UnsupportedModelError(f"{where}: {key}={got} is not supported (only {want}, SmolVLM's published setting)")
    if not math.isclose(float(pre.get("rescale_factor", 1 / 255)), 1 / 255):
        raise UnsupportedModelError(f"{where}: rescale_factor {pre.get('rescale_factor')} is not supported (only 1/255)")
    image_size = int((config.get("vision_config") or {}).get("image_size", 224))
    if tile != image_size:
        raise UnsupportedModelError(
            f"{where}: tiles of max_image_size {tile} px but the vision tower takes {image_size} px; they must agree"
        )
    return VisionConfig(
        policy=GridPolicy.SMOLVLM,
        tile_size=tile,
        max_side=max(1, math.ceil(longest / tile)),
        max_tiles=None,
        thumbnail=ThumbnailPosition.LAST,
        thumbnail_for_single=False,
        mean=mean,  # type: ignore[arg-type]
        std=std,  # type: ignore[arg-type]
        tokens_per_tile=tokens_per_tile(config),
        resample=resample,
        longest_edge_px=longest,
    )
