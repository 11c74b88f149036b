"""vision.onnx: the config rule, the manifest keys, and the ONNX graph against the eager tower (any tile batch)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from mobile_mllm import contract
from mobile_mllm.errors import ConfigError
from mobile_mllm.export.config import OnnxQuantization, Target, TargetConfig, VisionEngine
from mobile_mllm.export.onnx_vision import manifest_additions, vision_files


def test_onnxruntime_engine_refused_for_the_npu_target_naming_both_fields() -> None:
    with pytest.raises(ConfigError, match=r"vision_engine onnxruntime .* target.target is mediatek"):
        TargetConfig(target=Target.MEDIATEK, vision_engine=VisionEngine.ONNXRUNTIME)


def test_manifest_says_which_engine_and_names_the_onnx_file_only_when_used(tiny) -> None:  # noqa: ANN001
    assert manifest_additions(tiny, TargetConfig()) == {contract.M_VISION_ENGINE: "executorch"}
    assert vision_files(tiny, TargetConfig(), prepare=lambda m: m) == {}
    added = manifest_additions(tiny, TargetConfig(vision_engine=VisionEngine.ONNXRUNTIME,
                                                  onnx_quantization=OnnxQuantization.FP32))
    assert added == {
        "vision_engine": "onnxruntime",
        "vision_program": {"file": "vision.onnx", "quantization": "fp32", "input": "tiles", "output": "embeddings",
                           "pte_vision_encoder": True},
    }


@pytest.fixture(scope="module")
def fp32_onnx(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: ANN001
    from mobile_mllm.export.backends.xnnpack import matmul_attention

    cfg = TargetConfig(tile_batch=4, vision_engine=VisionEngine.ONNXRUNTIME, onnx_quantization=OnnxQuantization.FP32)
    path = tmp_path_factory.mktemp("onnx") / contract.VISION_ONNX_FILE
    vision_files(tiny, cfg, prepare=matmul_attention)[contract.VISION_ONNX_FILE](path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("batch", [1, 3, 4])
def test_fp32_graph_equals_the_eager_tower_at_every_batch(tiny, fp32_onnx: Path, batch: int) -> None:  # noqa: ANN001
    from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder
    from mobile_mllm.runtime.parity import relative_error

    encoder = OnnxVisionEncoder(fp32_onnx, max_tile_batch=4)
    tiles = torch.randn(batch, 3, tiny.vision.tile_size, tiny.vision.tile_size, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        expected = tiny.vision_encoder(tiles)  # the float eager model with its own (SDPA) attention
    got = encoder(tiles)
    assert got.shape == expected.shape == (batch, tiny.vision.tokens_per_tile, tiny.hidden_size)
    assert relative_error(got, expected) < 1e-5


@pytest.mark.slow
def test_dynamic_int8_is_close_to_the_tower_and_smaller(tiny, fp32_onnx: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from mobile_mllm.export.onnx_vision import quantize_vision_onnx
    from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder
    from mobile_mllm.runtime.parity import relative_error

    int8 = quantize_vision_onnx(fp32_onnx, tmp_path / "int8.onnx", OnnxQuantization.DYNAMIC)
    tiles = torch.randn(2, 3, tiny.vision.tile_size, tiny.vision.tile_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = tiny.vision_encoder(copy.deepcopy(tiles))
    err = relative_error(OnnxVisionEncoder(int8, max_tile_batch=4)(tiles), expected)
    assert 1e-4 < err < 5e-2  # quantized (not a copy of the fp32 graph), and still the same function
    assert int8.stat().st_size < 0.5 * fp32_onnx.stat().st_size


def test_recipe_key_and_flag_choose_the_engine_flag_wins(tmp_path: Path) -> None:
    from mobile_mllm.config import resolve
    from mobile_mllm.export.config import ExportJob

    recipe = tmp_path / "r.toml"
    recipe.write_text('[target]\nvision_engine = "onnxruntime"\n')
    assert resolve(ExportJob, recipe=recipe).target.vision_engine is VisionEngine.ONNXRUNTIME
    job = resolve(ExportJob, recipe=recipe, overrides={"target.vision_engine": "executorch"})
    assert job.target.vision_engine is VisionEngine.EXECUTORCH
    with pytest.raises(ConfigError, match="vision_engine"):
        resolve(ExportJob, recipe={"target": {"vision_engine": "tflite"}})


def test_dropping_the_pte_vision_needs_the_onnx_engine_and_calibration_needs_static() -> None:
    with pytest.raises(ConfigError, match=r"pte_vision_encoder false .*vision_engine executorch; add --vision-engine onnxruntime"):
        TargetConfig(pte_vision_encoder=False)
    with pytest.raises(ConfigError, match=r"calibration '/imgs' is only used by --target mediatek and by .*static"):
        TargetConfig(vision_engine=VisionEngine.ONNXRUNTIME, calibration="/imgs")
    TargetConfig(vision_engine=VisionEngine.ONNXRUNTIME, pte_vision_encoder=False,
                 onnx_quantization=OnnxQuantization.STATIC, calibration="/imgs")


def test_without_the_pte_vision_the_program_has_two_methods_and_the_manifest_says_so(tiny) -> None:  # noqa: ANN001
    from mobile_mllm.export.backends.xnnpack import prepare

    cfg = TargetConfig(max_context_len=64, prefill_chunk=16, vision_engine=VisionEngine.ONNXRUNTIME,
                       pte_vision_encoder=False)
    assert list(prepare(tiny, cfg)) == [contract.TOKEN_EMBEDDING, contract.TEXT_DECODER]
    assert list(prepare(tiny, TargetConfig(max_context_len=64, prefill_chunk=16))) == list(contract.MODEL_METHODS)
    assert manifest_additions(tiny, cfg)["vision_program"]["pte_vision_encoder"] is False


def _write_images(folder: Path, sizes: list[tuple[int, int]]) -> None:
    from PIL import Image

    folder.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i, (w, h) in enumerate(sizes):
        pixels = torch.randint(0, 256, (h, w, 3), generator=rng, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")


def test_calibration_tiles_are_each_images_first_and_last_tile_as_preprocessed(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    from mobile_mllm.export.onnx_vision import calibration_tiles
    from mobile_mllm.vision import preprocess

    folder = tmp_path / "imgs"
    _write_images(folder, [(900, 300), (64, 64), (300, 700)])
    tiles = calibration_tiles(tiny.vision, folder, num_tiles=5)
    expected = []
    for name in ("0.png", "1.png", "2.png"):
        cut = preprocess(folder / name, tiny.vision).tiles
        expected += [cut[0], cut[-1]] if len(cut) > 1 else [cut[0]]
    assert len(expected) >= 5 and tiles.shape == (5, 3, tiny.vision.tile_size, tiny.vision.tile_size)
    assert torch.equal(torch.from_numpy(tiles), torch.stack(expected[:5]))
    synthetic = calibration_tiles(tiny.vision, num_tiles=4)  # the default: the synthetic benchmark's images
    assert synthetic.shape == (4, 3, tiny.vision.tile_size, tiny.vision.tile_size) and synthetic.std() > 0.1


def test_a_calibration_folder_without_images_is_refused_naming_it(tiny, tmp_path: Path) -> None:  # noqa: ANN001
    from mobile_mllm.export.onnx_vision import calibration_tiles

    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match=rf"calibration '{tmp_path}' holds no image"):
        calibration_tiles(tiny.vision, tmp_path)
    with pytest.raises(ConfigError, match="is not a folder"):
        calibration_tiles(tiny.vision, tmp_path / "a.txt")


@pytest.mark.slow
def test_static_int8_is_qdq_calibrated_and_close_to_the_tower(tiny, fp32_onnx: Path, tmp_path: Path) -> None:  # noqa: ANN001
    import onnx

    from mobile_mllm.export.onnx_vision import calibration_tiles, quantize_vision_onnx
    from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder
    from mobile_mllm.runtime.parity import relative_error

    with pytest.raises(ConfigError, match="static needs calibration tiles"):
        quantize_vision_onnx(fp32_onnx, tmp_path / "x.onnx", OnnxQuantization.STATIC)
    static = quantize_vision_onnx(fp32_onnx, tmp_path / "static.onnx", OnnxQuantization.STATIC,
                                  calibration=calibration_tiles(tiny.vision, num_tiles=8))
    ops = {n.op_type for n in onnx.load(str(static)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "DynamicQuantizeLinear" not in ops  # fixed, calibrated scales
    tiles = torch.randn(3, 3, tiny.vision.tile_size, tiny.vision.tile_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = tiny.vision_encoder(tiles.clamp(-1, 1))
    err = relative_error(OnnxVisionEncoder(static, max_tile_batch=4)(tiles.clamp(-1, 1)), expected)
    assert 1e-4 < err < 5e-2


@pytest.mark.parametrize("target", [
    TargetConfig(vision_engine=VisionEngine.ONNXRUNTIME, onnx_quantization=OnnxQuantization.STATIC),
    TargetConfig(target=Target.MEDIATEK, simulate=True),
])
def test_a_bad_calibration_folder_fails_before_any_work_and_writes_nothing(target: TargetConfig, tmp_path: Path) -> None:
    import dataclasses

    from mobile_mllm.export.config import ExportJob
    from mobile_mllm.export.program import export_program

    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "notes.txt").write_text("no image here")
    job = ExportJob(model="builtin:synth-small", output=str(tmp_path / "out"),
                    target=dataclasses.replace(target, calibration=str(tmp_path / "cal")))
    with pytest.raises(ConfigError, match=r"target.calibration .* holds no image"):
        export_program(job, on_progress=lambda *a: pytest.fail(f"a stage started: {a}"))
    assert not (tmp_path / "out").exists()
