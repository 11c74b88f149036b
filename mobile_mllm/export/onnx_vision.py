"""``vision.onnx``: the image encoder (tower + downsampler + projector) as an ONNX Runtime program beside ``model.pte``.

Why a second engine: on the CPUs measured (``bench/RESULTS.md``, "Vision encoder vs ONNX
Runtime"), ONNX Runtime's int8 GEMMs run the same tower 1.3-1.5x faster than XNNPACK's 8da8w
kernels, and the gap is the kernels, not the graph. With ``--vision-engine onnxruntime`` the cpu
backend writes this file (its ``extra_files`` hook calls :func:`vision_files`) and says so in the manifest
(``manifest_additions``); ``model.pte`` keeps all three methods, so the stock ExecuTorch runner
still works with it alone.

The graph is ``torch.onnx.export`` (dynamo) of a copy of the float ``vision_encoder`` with matmul
attention (as the ``.pte``'s, see ``backends.xnnpack.matmul_attention``), with a dynamic tile-batch
axis, then ``onnxruntime.quantization.quantize_dynamic`` (int8 weights per tensor, activations
quantized per call, MatMuls with constant weights only). Static QDQ calibration was measured in
``bench/bench_vision.py`` and not shipped (see RESULTS).

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
from mobile_mllm.errors import MissingDependencyError

if TYPE_CHECKING:
    from torch import nn

    from mobile_mllm.export.config import OnnxQuantization, TargetConfig
    from mobile_mllm.model.adapter import MultimodalModel

logger = logging.getLogger(__name__)

__all__ = ["export_vision_onnx", "manifest_additions", "quantize_vision_onnx", "vision_files", "write_vision_onnx"]


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


def quantize_vision_onnx(src: str | Path, dst: str | Path, quantization: OnnxQuantization) -> Path:
    """Quantize an fp32 ``vision.onnx`` (``dynamic``: ORT's dynamic int8; ``fp32``: a copy).

    Only MatMuls/Gemms with constant weights are quantized (``MatMulConstBOnly``): the attention's
    activation x activation MatMuls stay fp32, as in the ``.pte``.
    """
    import shutil

    from mobile_mllm.export.config import OnnxQuantization

    if quantization == OnnxQuantization.FP32:
        shutil.copyfile(src, dst)
        return Path(dst)
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    root.addFilter(_drop_preprocessing_advice)  # ORT's quantizer logs it on the root logger every time
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, extra_options={"MatMulConstBOnly": True})
    finally:
        root.removeFilter(_drop_preprocessing_advice)
    return Path(dst)


def _drop_preprocessing_advice(record: logging.LogRecord) -> bool:
    """Filter out ORT's advice to pre-process first: measured, it does not make this graph faster (bench/RESULTS.md)."""
    return "pre-processing before quantization" not in record.getMessage()


def write_vision_onnx(module: nn.Module, path: Path, *, tile_size: int, cfg: TargetConfig) -> None:
    """Export + quantize to ``path`` (the fp32 intermediate lives in a temporary directory)."""
    from mobile_mllm.export.config import OnnxQuantization

    with tempfile.TemporaryDirectory(prefix="vision_onnx_") as tmp:
        fp32 = export_vision_onnx(module, Path(tmp) / "fp32.onnx", tile_size=tile_size,
                                  tile_batch=cfg.tile_batch)
        quantize_vision_onnx(fp32, path, OnnxQuantization(cfg.onnx_quantization))
    logger.info("%s: %s, %.2f MB", contract.VISION_ONNX_FILE, OnnxQuantization(cfg.onnx_quantization).value,
                os.path.getsize(path) / 1e6)


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
    size = model.vision.tile_size

    def write(path: Path) -> None:
        write_vision_onnx(prepare(copy.deepcopy(model.vision_encoder)), path, tile_size=size, cfg=cfg)

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
        }
    return out
