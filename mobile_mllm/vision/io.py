"""Load an image from a path, bytes, a PIL image or a numpy array as an upright RGB PIL image.

Every source ends up the same way: EXIF orientation applied, any mode converted to 8-bit RGB
(transparency composited on ``VisionConfig.background``), and the pixel count checked against
``VisionConfig.max_pixels`` from the header, before the pixels are decoded, so a
decompression bomb is refused without allocating it. Everything that goes wrong raises
:class:`~mobile_mllm.errors.ImageError` naming the problem and the source.

Accepted numpy arrays (decided here, documented for callers):

- ``uint8`` ``H x W`` (grayscale), ``H x W x 1`` (grayscale), ``H x W x 3`` (RGB) or
  ``H x W x 4`` (RGBA, composited on the background);
- floating point with the same shapes and every value in ``[0, 1]`` (scaled by 255 and rounded);
- anything else (other dtypes, CHW layout, NaN, values outside ``[0, 1]``) is refused.

Modes: ``I;16*`` is scaled from 0..65535 to 0..255; ``I`` and ``F`` are scaled the same way when
their maximum exceeds 255 (``F`` with maximum <= 1 is read as 0..1), else taken as 0..255.

Deliberately not here: resizing or tiling (``tiling.py``), colour management (ICC profiles are
ignored, as in the reference image processors).
"""

from __future__ import annotations

import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from mobile_mllm.errors import ImageError
from mobile_mllm.vision.grid import Size

if TYPE_CHECKING:
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_SUFFIXES", "ImageSource", "describe_source", "image_files", "load_image", "read_image_size"]

ImageSource = Union[str, Path, bytes, bytearray, memoryview, Image.Image, np.ndarray]
"""What :func:`load_image` accepts."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
"""File endings :func:`image_files` takes as images (case-insensitive)."""

_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 or 270 degrees
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


def image_files(folder: str | Path, *, what: str) -> list[Path]:
    """The image files of a folder (by :data:`IMAGE_SUFFIXES`), sorted by name, e.g. a calibration set.

    Args:
        folder (str | Path): the folder.
        what (str): how the caller names the folder (e.g. ``"target.calibration"``), for the error.

    Raises:
        ConfigError: ``folder`` is not a folder or holds no image.
    """
    from mobile_mllm.errors import ConfigError

    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"{what} {str(path)!r} is not a folder; give a folder of images")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"{what} {str(path)!r} holds no image ({', '.join(IMAGE_SUFFIXES)})")
    return files


def describe_source(source: ImageSource) -> str:
    """A short human name for an image source, used in every error message."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return f"<{len(source)} bytes>"
    if isinstance(source, Image.Image):
        return f"<PIL image {source.width}x{source.height} {source.mode}>"
    if isinstance(source, np.ndarray):
        return f"<array {tuple(source.shape)} {source.dtype}>"
    return f"<{type(source).__name__}>"


def read_image_size(source: ImageSource, cfg: VisionConfig) -> Size:
    """The upright size of an image without decoding its pixels (header and EXIF only).

    Lets the CLI and the runtime pick a grid and check a token budget before paying for the
    decode. The size is after EXIF orientation, i.e. what :func:`load_image` would return.

    Args:
        source (ImageSource): a path, encoded bytes, a PIL image or a numpy array.
        cfg (VisionConfig): supplies ``max_pixels``.

    Returns:
        Size: width x height after EXIF orientation.

    Raises:
        ImageError: missing, empty or non-image file, or more than ``cfg.max_pixels`` pixels.
    """
    if isinstance(source, np.ndarray):
        return _check_pixels(_array_size(source), cfg, source)
    img = _open(source, cfg)
    try:
        size = Size(img.width, img.height)
        if _orientation(img) in _SWAPS_SIDES:
            size = Size(size.height, size.width)
        return size
    finally:
        if img is not source:
            img.close()


def load_image(source: ImageSource, cfg: VisionConfig) -> Image.Image:
    """Load any supported source as an upright 8-bit RGB PIL image.

    Args:
        source (ImageSource): a path (``str``/``Path``), encoded bytes, a PIL image, or a
            numpy array (see the module docstring for accepted dtypes and shapes).
        cfg (VisionConfig): supplies ``max_pixels`` and the ``background`` colour that
            transparent pixels are composited on.

    Returns:
        PIL.Image.Image: mode ``RGB``, EXIF orientation applied. A PIL input is never modified.

    Raises:
        ImageError: missing path, empty or truncated file, not an image, unsupported array,
            unsupported mode, or more pixels than ``cfg.max_pixels`` (checked before decoding).

    Example:
        >>> from mobile_mllm.vision.config import VisionConfig
        >>> load_image(np.zeros((2, 3), dtype=np.uint8), VisionConfig()).size
        (3, 2)
    """
    name = describe_source(source)
    if isinstance(source, np.ndarray):
        _check_pixels(_array_size(source), cfg, source)
        img = _from_array(source, name)
    else:
        img = _open(source, cfg)
        try:
            img.load()
        except (OSError, EOFError, SyntaxError, ValueError) as e:
            raise ImageError(
                f"image file is truncated or corrupt: {name} ({e}); re-export or re-download it"
            ) from e
    upright = ImageOps.exif_transpose(img)  # always a new image: a PIL input stays untouched
    if img is not source:
        img.close()
    return _to_rgb(upright, cfg, name)


def _open(source: ImageSource, cfg: VisionConfig) -> Image.Image:
    """Open without decoding pixels and check the header's size against ``cfg.max_pixels``."""
    name = describe_source(source)
    if isinstance(source, Image.Image):
        _check_pixels(Size(source.width, source.height), cfg, source)
        return source
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise ImageError(f"image file not found: {name} (check the path)")
        if not path.is_file():
            raise ImageError(f"image path is not a file: {name}")
        if path.stat().st_size == 0:
            raise ImageError(f"image file is empty (0 bytes): {name}")
        fp: str | io.BytesIO = str(path)
    elif isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise ImageError("image bytes are empty (0 bytes); pass the encoded file's content")
        fp = io.BytesIO(bytes(source))
    else:
        raise ImageError(
            f"unsupported image source {name}; pass a path, bytes, a PIL image or a numpy array"
        )
    try:
        with warnings.catch_warnings():
            # our own limit (cfg.max_pixels) decides, checked just below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except Image.DecompressionBombError as e:
        raise ImageError(
            f"image is too large: {name} ({e}); refusing to decode a possible decompression bomb"
        ) from e
    except UnidentifiedImageError as e:
        raise ImageError(f"not a readable image file: {name} (unknown or corrupt format)") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot read image header of {name}: {e}") from e
    try:
        _check_pixels(Size(img.width, img.height), cfg, source)
    except ImageError:
        img.close()
        raise
    return img


def _check_pixels(size: Size, cfg: VisionConfig, source: ImageSource) -> Size:
    if size.width <= 0 or size.height <= 0:
        raise ImageError(f"image has zero size ({size}): {describe_source(source)}")
    if size.area > cfg.max_pixels:
        raise ImageError(
            f"image is too large: {describe_source(source)} is {size} = {size.area} pixels, over "
            f"vision.max_pixels={cfg.max_pixels} (decompression-bomb guard); downscale it or raise max_pixels"
        )
    return size


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_EXIF_ORIENTATION, 1))
    except (OSError, SyntaxError, ValueError, TypeError) as e:  # malformed EXIF: ignore it, as viewers do
        logger.debug("ignoring unreadable EXIF: %s", e)
        return 1


def _array_size(arr: np.ndarray) -> Size:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(
            f"unsupported array shape {tuple(arr.shape)}; expected H x W, or H x W x C with C in 1, 3, 4 "
            "(channels last)"
        )
    return Size(int(arr.shape[1]), int(arr.shape[0]))


def _from_array(arr: np.ndarray, name: str) -> Image.Image:
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
            raise ImageError(
                f"float image array {name} must hold finite values in [0, 1]; "
                "scale it (or pass uint8 0..255)"
            )
        arr = np.rint(arr * 255.0).astype(np.uint8)
    elif arr.dtype != np.uint8:
        raise ImageError(f"unsupported array dtype {arr.dtype} for {name}; pass uint8 0..255 or float 0..1")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)


def _to_rgb(img: Image.Image, cfg: VisionConfig, name: str) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I") or img.mode == "F":
        return _rescale_wide(img).convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*cfg.background, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as e:
        raise ImageError(f"cannot convert image mode {img.mode!r} of {name} to RGB: {e}") from e


def _rescale_wide(img: Image.Image) -> Image.Image:
    """16/32-bit integer or float grayscale -> 8-bit ``L`` (see the module docstring)."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        top = 65535.0
    else:
        peak = float(arr.max()) if arr.size else 0.0
        top = 65535.0 if peak > 255 else (1.0 if img.mode == "F" and peak <= 1 else 255.0)
    scaled = np.clip(np.rint(arr * (255.0 / top)), 0, 255).astype(np.uint8)
    return Image.fromarray(scaled, mode="L")
