"""The host runtime picks the image engine from the manifest; an export with --vision-engine onnxruntime end to end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from mobile_mllm import contract
from mobile_mllm.errors import ContractError
from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder, vision_engine, with_vision_engine


def test_a_manifest_without_the_key_predates_it_and_means_executorch() -> None:
    assert vision_engine({}) == "executorch"
    sentinel = object()
    assert with_vision_engine(sentinel, "/nonexistent", {"vision_engine": "executorch"}) is sentinel  # type: ignore[arg-type]


def test_unknown_engine_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ContractError, match=r"vision_engine is 'tflite', expected 'executorch' or 'onnxruntime'"):
        vision_engine({"vision_engine": "tflite"})


def test_missing_vision_onnx_says_to_reexport(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match=r"vision.onnx not found.*re-export"):
        OnnxVisionEncoder(tmp_path / "vision.onnx", max_tile_batch=4)


@pytest.fixture(scope="module")
def ort_export(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The tiny model exported with --vision-engine onnxruntime (int8 vision.onnx), verified."""
    from mobile_mllm.export.config import ExportJob, TargetConfig, VisionEngine
    from mobile_mllm.export.program import export_program
    from mobile_mllm.quant.recipe import preset
    from mobile_mllm.runtime.parity import verify_export

    context, chunk, batch = 192, 32, 4  # small static sizes keep lowering quick (as tests/mobile_mllm/export's)
    job = ExportJob(
        model=str(tiny_dir), output=str(tmp_path_factory.mktemp("export_ort")), quant=preset("w4"),
        target=TargetConfig(max_context_len=context, prefill_chunk=chunk, tile_batch=batch,
                            vision_engine=VisionEngine.ONNXRUNTIME),
        verify_tokens=8,
    )
    return export_program(job, verifier=verify_export)


@pytest.mark.slow
def test_onnxruntime_export_writes_verifies_and_declares_vision_onnx(ort_export) -> None:  # noqa: ANN001
    out = ort_export.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [contract.PROGRAM_FILE, contract.TOKENIZER_FILE, contract.MANIFEST_FILE, contract.EXPORT_REPORT_FILE,
         contract.VISION_ONNX_FILE])
    manifest = json.loads((out / contract.MANIFEST_FILE).read_text())
    assert manifest["vision_engine"] == "onnxruntime"
    assert manifest["vision_program"]["file"] == "vision.onnx"
    assert manifest["program"]["methods"] == list(contract.MODEL_METHODS)  # the .pte keeps its own vision_encoder
    section = ort_export.report["verification"][contract.VISION_ONNX_FILE]
    assert section["median_rel_err_vs_float"] <= section["tolerance"]
    assert section["num_samples"] == 1 + 4


@pytest.mark.slow
def test_session_from_the_dir_encodes_with_onnxruntime_and_answers_like_the_pte_vision(ort_export, tmp_path: Path) -> None:  # noqa: ANN001
    from mobile_mllm.runtime.onnx_vision import OnnxVisionMethods
    from mobile_mllm.runtime.parity import greedy_tokens, relative_error, sample_image
    from mobile_mllm.runtime.pte import open_program_dir

    backend = open_program_dir(ort_export.output)
    assert isinstance(backend.methods, OnnxVisionMethods)
    # the same export directory told to use the .pte's vision_encoder (the manifest alone decides)
    pte_dir = tmp_path / "pte_vision"
    shutil.copytree(ort_export.output, pte_dir)
    manifest = json.loads((pte_dir / contract.MANIFEST_FILE).read_text())
    manifest["vision_engine"] = "executorch"
    (pte_dir / contract.MANIFEST_FILE).write_text(json.dumps(manifest))
    pte_backend = open_program_dir(pte_dir)
    assert not isinstance(pte_backend.methods, OnnxVisionMethods)

    size = backend.vision.tile_size
    tiles = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(7)).clamp(-1, 1)
    ort_out, pte_out = backend.methods.vision_encoder(tiles), pte_backend.methods.vision_encoder(tiles)
    assert ort_out.shape == pte_out.shape
    assert relative_error(ort_out, pte_out) < 5e-2  # two int8 quantizations of one float tower
    image = sample_image()
    assert greedy_tokens(backend.methods, backend, 8, image) == greedy_tokens(pte_backend.methods, pte_backend, 8, image)
