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


@pytest.fixture(scope="module")
def no_pte_vision_export(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """The tiny model exported with --vision-engine onnxruntime --no-pte-vision-encoder --onnx-quantization static."""
    from mobile_mllm.export.config import ExportJob, OnnxQuantization, TargetConfig, VisionEngine
    from mobile_mllm.export.program import export_program
    from mobile_mllm.quant.recipe import preset
    from mobile_mllm.runtime.parity import verify_export

    job = ExportJob(
        model=str(tiny_dir), output=str(tmp_path_factory.mktemp("export_no_pte_vision")), quant=preset("w4"),
        target=TargetConfig(max_context_len=192, prefill_chunk=32, tile_batch=4, vision_engine=VisionEngine.ONNXRUNTIME,
                            onnx_quantization=OnnxQuantization.STATIC, pte_vision_encoder=False),
        verify_tokens=8,
    )
    return export_program(job, verifier=verify_export)


@pytest.mark.slow
def test_without_the_pte_vision_the_program_is_smaller_and_verified_against_the_int8_tower(
    no_pte_vision_export, ort_export  # noqa: ANN001
) -> None:
    out = no_pte_vision_export.output
    manifest = json.loads((out / contract.MANIFEST_FILE).read_text())
    assert manifest["program"]["methods"] == [contract.TOKEN_EMBEDDING, contract.TEXT_DECODER]
    assert manifest["vision_program"] == {"file": "vision.onnx", "quantization": "static", "input": "tiles",
                                          "output": "embeddings", "pte_vision_encoder": False}
    assert (out / contract.PROGRAM_FILE).stat().st_size < (ort_export.output / contract.PROGRAM_FILE).stat().st_size
    section = no_pte_vision_export.report["verification"][contract.VISION_ONNX_FILE]
    assert section["reference"] == "eager_int8_tower"
    assert 0 < section["pte_median_rel_err_vs_float"] and section["median_rel_err_vs_float"] <= section["tolerance"]
    assert contract.VISION_ENCODER not in no_pte_vision_export.report["verification"]["by_method"]


@pytest.mark.slow
def test_without_the_pte_vision_images_go_through_vision_onnx_and_pte_only_paths_say_so(
    no_pte_vision_export, tmp_path: Path  # noqa: ANN001
) -> None:
    from mobile_mllm.device.run import HOST_RUNNER, check_runner_images
    from mobile_mllm.runtime.parity import greedy_tokens
    from mobile_mllm.runtime.pte import PteMethods, open_program_dir

    out = no_pte_vision_export.output
    backend = open_program_dir(out)
    size = backend.vision.tile_size
    tiles = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    assert torch.equal(backend.methods.vision_encoder(tiles),
                       OnnxVisionEncoder(out / contract.VISION_ONNX_FILE, max_tile_batch=4)(tiles))
    # the session over the directory answers as the exporter's verification did (it ran vision.onnx too)
    assert greedy_tokens(backend.methods, backend, 8) == no_pte_vision_export.report["verification"]["greedy"]["program_tokens"]
    with pytest.raises(ContractError, match=r"has no vision_encoder .*vision.onnx.*open the export directory"):
        PteMethods(out / contract.PROGRAM_FILE, tile_batch=4).vision_encoder(tiles)
    check_runner_images(HOST_RUNNER, out, "img.png")  # the host runner opens vision.onnx
    check_runner_images("/data/local/tmp/mobile_mllm/x/runner-arm64-v8a", out, None)  # a text question is fine
    with pytest.raises(ContractError, match=r"has no vision_encoder .*runner-arm64-v8a runs only model.pte"):
        check_runner_images("/data/local/tmp/mobile_mllm/x/runner-arm64-v8a", out, "img.png")
    engine_less = tmp_path / "engine_less"  # a hand-edited manifest that points images at the missing method
    shutil.copytree(out, engine_less)
    manifest = json.loads((engine_less / contract.MANIFEST_FILE).read_text())
    manifest["vision_engine"] = "executorch"
    (engine_less / contract.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ContractError, match="has no vision_encoder and the manifest's vision_engine is 'executorch'"):
        open_program_dir(engine_less)
