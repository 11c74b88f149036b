"""``mobile-mllm init-model``: write a random-weight model directory of a preset.

For tests, and for users who want speed and memory numbers before they have weights. The
directory is a normal reference-family checkpoint (``load_model`` reads it); weights are
deterministic in (preset, seed, dtype) and streamed to disk, so the 3B preset needs little
more RAM than its largest tensor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from mobile_mllm.errors import ConfigError
from mobile_mllm.model.reference.presets import PRESET_STORAGE_DTYPES, preset_config

logger = logging.getLogger(__name__)

__all__ = ["STORAGE_DTYPES", "InitModelResult", "init_model"]

STORAGE_DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")
"""dtypes a checkpoint may be stored in."""


@dataclass(frozen=True)
class InitModelResult:
    """What ``init_model`` wrote."""

    path: Path
    preset: str
    seed: int
    dtype: str
    num_parameters: int
    weights_bytes: int
    tokens_per_tile: int


def init_model(preset: str, out: Path, *, seed: int = 0, dtype: str | None = None) -> InitModelResult:
    """Write a random-weight model directory for ``preset``.

    Args:
        preset (str): a name of :data:`~mobile_mllm.model.reference.presets.PRESETS`.
        out (Path): the directory (created; files of the layout are replaced).
        seed (int): random seed. Default 0.
        dtype (str | None): storage dtype, one of :data:`STORAGE_DTYPES`; None picks the
            preset's default (bfloat16 for bluelm-v-3b, float32 otherwise). Default None.

    Returns:
        InitModelResult: where it went and how big it is.

    Raises:
        UnsupportedModelError: unknown preset (listing the known ones).
        ConfigError: unknown dtype.
    """
    import torch

    from mobile_mllm.model.reference.builders import count_parameters
    from mobile_mllm.model.reference.checkpoint import WEIGHTS_FILE, write_random_reference

    cfg = preset_config(preset)
    dtype_name = dtype or PRESET_STORAGE_DTYPES[preset]
    if dtype_name not in STORAGE_DTYPES:
        raise ConfigError(f"dtype {dtype_name!r} is not one of {', '.join(STORAGE_DTYPES)}")
    num_parameters = count_parameters(cfg)["total"]
    logger.info("init-model: %s (%d parameters) as %s, seed %d -> %s", preset, num_parameters, dtype_name, seed, out)
    write_random_reference(cfg, Path(out), seed=seed, dtype=getattr(torch, dtype_name))
    return InitModelResult(
        path=Path(out),
        preset=preset,
        seed=seed,
        dtype=dtype_name,
        num_parameters=num_parameters,
        weights_bytes=(Path(out) / WEIGHTS_FILE).stat().st_size,
        tokens_per_tile=cfg.tokens_per_tile,
    )
