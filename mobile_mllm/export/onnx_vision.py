"""``vision.onnx``: the image encoder (tower + downsampler + projector) as an ONNX Runtime program beside ``model.pte``.

Why a second engine: on the CPUs measured (``bench/RESULTS.md``, "Vision encoder vs ONNX
Runtime"), ONNX Runtime's int8 GEMMs run the same tower 1.3-1.5x faster than XNNPACK's 8da8w
kernels, and the gap is the kernels, not the graph. With ``--vision-engine onnxruntime`` the cpu
backend writes this file (its ``extra_files`` hook calls :func:`vision_files`) and says so in the manifest
(``manifest_additions``); ``model.pte`` keeps all three methods, so the stock ExecuTorch runner
still works with it alone, unless ``pte_vision_encoder`` is false (the backend then leaves the
method out to save its bytes, and the manifest says so).

The graph is ``torch.onnx.export`` (dynamo) of a copy of the float ``vision_encoder`` with matmul
attention (as the ``.pte``'s, see ``backends.xnnpack.matmul_attention``), with a dynamic tile-batch
axis, then quantized by ONNX Runtime (:func:`quantize_vision_onnx`): ``dynamic`` (int8 weights per
tensor, activations quantized per call) or ``static`` (QDQ int8 with activation ranges calibrated
on :func:`calibration_tiles`: the synthetic benchmark's images, or the user's folder), MatMuls
with constant weights only either way. Which one is the default and why: ``bench/RESULTS.md``,
"ONNX Runtime image engine, session 2".

Deliberately not here: running it (``runtime/onnx_vision.py``), checking it against the eager
model (``runtime/parity.py``).
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from mobile_mllm.export.config import OnnxQuantization, TargetConfig
    from mobile_mllm.model.adapter import MultimodalModel
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = [
    "CALIBRATION_SEED",
    "CALIBRATION_TILES",
    "calibration_tiles",
    "export_vision_onnx",
    "manifest_additions",
    "quantize_vision_onnx",
    "vision_files",
    "write_vision_onnx",
]

CALIBRATION_SEED = 0
"""Seed of the synthetic benchmark stream whose images calibrate static int8 (``eval.synthetic``)."""

CALIBRATION_TILES = 16
"""Tiles static int8 is calibrated on: the first and the last tile of each image (a local tile and the thumbnail)."""

"""Files of a calibration folder that are read as images (others are skipped)."""


def _wants_onnx(cfg: TargetConfig) -> bool:
    from mobile_mllm.export.config import VisionEngine

    return cfg.vision_engine == VisionEngine.ONNXRUNTIME


def export_vision_onnx(module: nn.Module, path: str | Path, *, tile_size: int, tile_batch: int) -> Path:
    """``torch.onnx.export`` a float vision encoder to ``path`` (fp32, one file, dynamic tile batch).

    Args:
        module (nn.Module): ``tiles [B, 3, S, S] -> [B, N, D]`` (e.g. a copy of ``model.vision_encoder``).
        path (str | Path): where to write the ``.onnx``.
        tile_size (int): ``S``.
        tile_batch (int): the largest ``B`` (the graph accepts 1..tile_batch; ONNX itself does not bound it).

    Returns:
        Path: ``path``.

    Raises:
        MissingDependencyError: ``onnx``/``onnxscript`` (torch's ONNX exporter) are missing.
    """
    import torch

    try:
        import onnx  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(
            f"--vision-engine onnxruntime needs torch's ONNX exporter: pip install 'onnx>=1.23,<1.24' 'onnxscript>=0.7,<0.8' ({e})"
        ) from e
    path = Path(path)
    tiles = torch.zeros(min(2, max(tile_batch, 1)), 3, tile_size, tile_size)  # not 1: export specialises size 1
    batch = {0: torch.export.Dim("tiles", min=1, max=max(tile_batch, 2))}
    with torch.no_grad():
        torch.onnx.export(
            module.eval(), (tiles,), str(path), input_names=[contract.ONNX_VISION_INPUT],
            output_names=[contract.ONNX_VISION_OUTPUT], dynamic_shapes=(batch,), dynamo=True, external_data=False,
            verbose=False,
        )
    return path


def quantize_vision_onnx(
    src: str | Path, dst: str | Path, quantization: OnnxQuantization, *, calibration: np.ndarray | None = None
) -> Path:
    """Quantize an fp32 ``vision.onnx``: ``dynamic`` or ``static`` int8 by ONNX Runtime, or ``fp32`` (a copy).

    Only MatMuls/Gemms with constant weights are quantized (``MatMulConstBOnly``) in both int8
    modes: the attention's activation x activation MatMuls stay fp32, as in the ``.pte``. Static
    is ORT's QDQ format (u8 activations with calibrated min/max ranges, s8 weights per tensor: the
    CPU recipe ORT's documentation gives for x86 with and without VNNI and for ARM alike).

    Args:
        src (str | Path): the fp32 graph.
        dst (str | Path): where to write the quantized one.
        quantization (OnnxQuantization): which.
        calibration (np.ndarray | None): float32 tiles ``[N, 3, S, S]`` (:func:`calibration_tiles`);
            required for ``static``, ignored otherwise.

    Raises:
        ConfigError: ``static`` without calibration tiles.
    """
    import shutil

    from mobile_mllm.export.config import OnnxQuantization

    if quantization == OnnxQuantization.FP32:
        shutil.copyfile(src, dst)
        return Path(dst)
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

    root = logging.getLogger()
    root.addFilter(_drop_preprocessing_advice)  # ORT's quantizer logs it on the root logger every time
    options = {"MatMulConstBOnly": True}
    try:
        if quantization == OnnxQuantization.DYNAMIC:
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, extra_options=options)
        else:
            if calibration is None or len(calibration) == 0:
                raise ConfigError("onnx_quantization static needs calibration tiles; none were given")
            quantize_static(
                str(src), str(dst), _TileReader(calibration), quant_format=QuantFormat.QDQ,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                op_types_to_quantize=["MatMul", "Gemm"], extra_options=options,
            )
    finally:
        root.removeFilter(_drop_preprocessing_advice)
    return Path(dst)


class _TileReader:
    """ORT's ``CalibrationDataReader`` protocol over an array of tiles, one tile per call (bounded memory)."""

    def __init__(self, tiles: np.ndarray) -> None:
        self._tiles = iter(tiles)

    def get_next(self) -> dict[str, np.ndarray] | None:
        tile = next(self._tiles, None)
        return None if tile is None else {contract.ONNX_VISION_INPUT: tile[None]}


def calibration_tiles(vision: VisionConfig, folder: str | Path | None = None, *, num_tiles: int = CALIBRATION_TILES) -> np.ndarray:
    """Preprocessed tiles to calibrate static int8 on: the first and last tile of each image, until ``num_tiles``.

    Why these images: the issue's choice, the synthetic benchmark's (``eval.synthetic``, stream
    :data:`CALIBRATION_SEED`; shapes, text, charts on plain canvases: what the built-in model sees),
    unless the user gives a folder of their own images (what their model will see). Each image
    goes through the model's own preprocessing (``vision.preprocess``), so the tiles are normalised
    exactly as at run time.

    Args:
        vision (VisionConfig): the model's tiling and normalisation.
        folder (str | Path | None): a folder of images (files ending in :data:`mobile_mllm.vision.io.IMAGE_SUFFIXES`,
            sorted by name). Default None: the synthetic benchmark's images.
        num_tiles (int): how many tiles. Default :data:`CALIBRATION_TILES`.

    Returns:
        np.ndarray: float32 ``[num_tiles, 3, S, S]`` (fewer if the folder has fewer images).

    Raises:
        ConfigError: ``folder`` is not a folder or holds no image.
        ImageError: an image in it cannot be read.
    """
    import numpy as np

    from mobile_mllm.vision import preprocess

    if folder is None:
        # eval.synthetic draws with PIL and imports nothing of export: this function-level import adds no cycle
        from mobile_mllm.eval.synthetic import generate_samples

        images: Any = (s.image for s in generate_samples(CALIBRATION_SEED, num_tiles))
    else:
        from mobile_mllm.vision import image_files

        images = iter(image_files(folder, what="target.calibration"))
    tiles: list[Any] = []
    for image in images:
        cut = preprocess(image, vision).tiles.numpy()
        tiles.extend(cut[[0, -1]] if len(cut) > 1 else cut)
        if len(tiles) >= num_tiles:
            break
    return np.stack(tiles[:num_tiles]).astype(np.float32)


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Filter out ORT's advice to pre-process first: measured, it does not make this graph faster (bench/RESULTS.md)."""
    return "pre-processing before quantization" not in record.getMessage()


def write_vision_onnx(module: nn.Module, path: Path, *, vision: VisionConfig, cfg: TargetConfig) -> None:
    """Export + quantize to ``path`` (the fp32 intermediate lives in a temporary directory).

    Args:
        module (nn.Module): the float tower to export.
        path (Path): where ``vision.onnx`` goes.
        vision (VisionConfig): the model's tiling (tile size; calibration images are preprocessed with it).
        cfg (TargetConfig): quantization, calibration folder, tile batch.
    """
    from mobile_mllm.export.config import OnnxQuantization

    quantization = OnnxQuantization(cfg.onnx_quantization)
    calibration = None
    if quantization == OnnxQuantization.STATIC:
        calibration = calibration_tiles(vision, cfg.calibration or None)
        logger.info("%s: calibrating static int8 on %d tiles of %s", contract.VISION_ONNX_FILE, len(calibration),
                    cfg.calibration or "the synthetic benchmark's images")
    with tempfile.TemporaryDirectory(prefix="vision_onnx_") as tmp:
        fp32 = export_vision_onnx(module, Path(tmp) / "fp32.onnx", tile_size=vision.tile_size,
                                  tile_batch=cfg.tile_batch)
        quantize_vision_onnx(fp32, path, quantization, calibration=calibration)
    logger.info("%s: %s, %.2f MB", contract.VISION_ONNX_FILE, quantization.value, os.path.getsize(path) / 1e6)


def vision_files(
    model: MultimodalModel, cfg: TargetConfig, *, prepare: Callable[[nn.Module], nn.Module]
) -> dict[str, Callable[[Path], None]]:
    """A backend's ``extra_files``: ``vision.onnx`` when ``cfg.vision_engine`` is onnxruntime, else nothing.

    Args:
        model (MultimodalModel): the float model; its ``vision_encoder`` is copied (the export's
            own modules are torchao-quantized in place by then).
        cfg (TargetConfig): engine, quantization, tile batch.
        prepare (Callable): the backend's rewrite of the copy before export (the cpu backend's
            ``matmul_attention``, so both programs compute the same attention).
    """
    import copy

    if not _wants_onnx(cfg):
        return {}
    def write(path: Path) -> None:
        write_vision_onnx(prepare(copy.deepcopy(model.vision_encoder)), path, vision=model.vision, cfg=cfg)

    return {contract.VISION_ONNX_FILE: write}


def manifest_additions(model: MultimodalModel, cfg: TargetConfig) -> dict[str, Any]:
    """The cpu backend's ``manifest_additions`` hook: which engine encodes images, and ``vision.onnx``'s facts."""
    from mobile_mllm.export.config import OnnxQuantization, VisionEngine

    del model
    engine = VisionEngine(cfg.vision_engine)
    out: dict[str, Any] = {contract.M_VISION_ENGINE: engine.value}
    if engine == VisionEngine.ONNXRUNTIME:
        out[contract.M_VISION_PROGRAM] = {
            contract.M_VISION_PROGRAM_FILE: contract.VISION_ONNX_FILE,
            contract.M_VISION_PROGRAM_QUANTIZATION: OnnxQuantization(cfg.onnx_quantization).value,
            contract.M_VISION_PROGRAM_INPUT: contract.ONNX_VISION_INPUT,
            contract.M_VISION_PROGRAM_OUTPUT: contract.ONNX_VISION_OUTPUT,
            contract.M_VISION_PROGRAM_PTE_VISION: cfg.pte_vision_encoder,
        }
    return out
