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
        "vision_program": {"file": "vision.onnx", "quantization": "fp32", "input": "tiles", "output": "embeddings"},
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
