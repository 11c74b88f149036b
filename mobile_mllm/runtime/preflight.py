"""Check a run's inputs before anything heavy loads: the model reference, its preprocessing, the image, the question.

Loading a model takes seconds (the built-in one ~3.5 s on 2 cores, an exported program longer
on a phone-sized one); a typo in a path, a truncated JPEG or an empty question should not cost
that. Everything here reads only small files (``config.json``/``preprocessor_config.json`` of a
model directory, ``manifest.json`` of an exported program) and the image itself, and raises the
same errors the full run would, so ``mobile-mllm run`` and ``grid`` fail in milliseconds.

Deliberately not here: whether a prompt fits the context (that needs the tokenizer and the
program's sizes: :meth:`Session.check <mobile_mllm.runtime.session.Session.check>`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image

    from mobile_mllm.vision.io import ImageSource
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = ["check_image", "check_question", "read_vision_config"]


def read_vision_config(model: str | Path) -> VisionConfig:
    """How a model turns images into tiles, read without loading any weights or program.

    Args:
        model (str | Path): an exported program directory (``model.pte`` + ``manifest.json``),
            a model directory, or ``builtin:NAME`` (what ``run`` and ``export`` take).

    Returns:
        VisionConfig: the manifest's ``vision`` for a program (what the phone uses), else the
        model directory's preprocessing.

    Raises:
        ContractError: a program directory whose manifest is missing or malformed.
        UnsupportedModelError: an unknown family or built-in name; ``ModelLoadError`` for a
            missing directory or a missing or malformed config file.
    """
    from mobile_mllm.config import from_dict  # noqa: PLC0415
    from mobile_mllm.model.registry import BUILTIN_PREFIX, read_vision_config as read_model_vision  # noqa: PLC0415
    from mobile_mllm.vision.config import VisionConfig  # noqa: PLC0415

    from mobile_mllm.export.manifest import is_program_dir  # noqa: PLC0415

    text = str(model)
    if not text.startswith(BUILTIN_PREFIX) and is_program_dir(text):
        from mobile_mllm.export.manifest import read_manifest  # noqa: PLC0415

        manifest = read_manifest(Path(text))
        return from_dict(VisionConfig, manifest[contract.M_VISION], source=str(Path(text) / contract.MANIFEST_FILE))
    return read_model_vision(text)


def check_question(question: str) -> str:
    """Refuse an empty or whitespace-only question; return it unchanged otherwise.

    With an image, an empty question would be an image-only prompt, which no model's prompt
    style defines yet (the reference model answers ``,, red`` to one), so it is refused too.

    Raises:
        ConfigError: the question has no visible character.

    Example:
        >>> check_question("What colour is the star?")
        'What colour is the star?'
    """
    if not question.strip():
        raise ConfigError(
            f"the question is empty ({question!r}); ask something, e.g. --prompt \"What is in the image?\" "
            "(an image-only prompt is not defined by the model's prompt style)"
        )
    return question


def check_image(image: ImageSource, vision: VisionConfig) -> Image.Image:
    """Decode an image completely and plan its tiles, so that any problem shows before a model loads.

    The decoded image is returned for the run to use, so the file is read once more at most.

    Args:
        image (ImageSource): a path, bytes, a PIL image or an array.
        vision (VisionConfig): the model's preprocessing (``max_pixels``, the grid rules).

    Returns:
        PIL.Image.Image: the upright RGB image.

    Raises:
        ImageError: missing, a directory, empty, truncated, not an image, zero-size or too large.
    """
    from mobile_mllm.vision.grid import Size  # noqa: PLC0415
    from mobile_mllm.vision.io import load_image, read_image_size  # noqa: PLC0415
    from mobile_mllm.vision.processor import plan_tiles  # noqa: PLC0415

    plan = plan_tiles(read_image_size(image, vision), vision)  # the header: a bomb is refused undecoded
    rgb = load_image(image, vision)
    logger.debug("image %s: grid %s before any budget", Size(rgb.width, rgb.height), plan.grid)
    return rgb
