"""Image -> tiles: grid policies, image loading, tiling, normalisation, the preprocess pipeline.

Names load lazily (PEP 562) so that importing ``mobile_mllm.vision.processor`` for
``VisionConfig`` (as ``mobile-mllm --help`` does) pulls in neither numpy, PIL nor torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "Grid": "grid",
    "GridChoice": "grid",
    "GridPolicy": "config",
    "Resolution": "grid",
    "Size": "grid",
    "ThumbnailPosition": "config",
    "candidate_grids": "grid",
    "count_tiles": "grid",
    "has_thumbnail": "grid",
    "resolution_on": "grid",
    "select_grid": "grid",
    "select_internvl": "grid",
    "select_llava_next": "grid",
    "select_relaxed": "grid",
    "IMAGE_SUFFIXES": "io",
    "ImageSource": "io",
    "image_files": "io",
    "load_image": "io",
    "read_image_size": "io",
    "normalize": "normalize",
    "Box": "tiling",
    "CanvasLayout": "tiling",
    "Resample": "config",
    "layout_canvas": "tiling",
    "render_tiles": "tiling",
    "tile_boxes": "tiling",
    "ImageTiles": "processor",
    "TilePlan": "processor",
    "VisionConfig": "config",
    "parse_size": "processor",
    "plan_grid": "processor",
    "plan_tiles": "processor",
    "preprocess": "processor",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
