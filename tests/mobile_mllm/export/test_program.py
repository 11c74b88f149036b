"""Exporting the tiny model: every recipe exports and verifies; the report and the graph agree; bad inputs fail clearly."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from mobile_mllm import contract
from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.export.program import ExportJob, TargetConfig, export_program


# --------------------------------------------------------------------------- directories the exporter cannot handle


def _job(model: Path, out: Path) -> ExportJob:
    return ExportJob(model=str(model), output=str(out), target=TargetConfig(max_context_len=64, prefill_chunk=16))


def test_unknown_family_fails_before_any_work(tiny_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    shutil.copytree(tiny_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    config["mobile_mllm_family"] = "internv1"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="no family 'internv1'; known: internvl, reference, smolvlm"):
        export_program(_job(bad, tmp_path / "out"))
    assert not (tmp_path / "out" / contract.PROGRAM_FILE).exists()


def test_unknown_decoder_architecture_is_refused(tiny_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    shutil.copytree(tiny_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    config["decoder"]["architecture"] = "mamba"
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedModelError, match="mamba"):
        export_program(_job(bad, tmp_path / "out"))


def test_vision_width_the_heads_do_not_divide_is_refused_naming_the_fields(tiny_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    shutil.copytree(tiny_dir, bad)
    config = json.loads((bad / "config.json").read_text())
    config["tower"]["hidden_size"] = config["tower"]["num_heads"] * 16 + 2
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match=r"(?s)config\.json.*tower.hidden_size 66 is not divisible by tower.num_heads 4"):
        export_program(_job(bad, tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_missing_tokenizer_names_the_file(tiny_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "model"
    shutil.copytree(tiny_dir, bad)
    (bad / "tokenizer.json").unlink()
    with pytest.raises(ModelLoadError, match="tokenizer"):
        export_program(_job(bad, tmp_path / "out"))


def test_missing_model_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model directory not found"):
        export_program(_job(tmp_path / "nowhere", tmp_path / "out"))


# --------------------------------------------------------------------------- exported programs (slow)


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["w4", "fp32"])  # w8: tests/cli/test_export_cli.py exports and verifies it
def test_every_recipe_exports_and_verifies(exported, export_sizes, recipe: str) -> None:
    result = exported(recipe)
    out = result.output
    for name in (contract.PROGRAM_FILE, contract.TOKENIZER_FILE, contract.MANIFEST_FILE, contract.EXPORT_REPORT_FILE):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*.partial")), "temporary files left behind"
    from mobile_mllm.runtime.parity import FLOOR_FACTOR

    report = json.loads((out / contract.EXPORT_REPORT_FILE).read_text())
    assert report["quantization"]["num_unexpected_fp32"] == 0
    verification = report["verification"]
    for method, stats in verification["by_method"].items():
        assert stats["median_rel_err_vs_quantized"] <= stats["tolerance"], method
        assert stats["max_rel_err_vs_quantized"] <= stats["flip_tolerance"], method
        # the bounds applied: the fixed ones, raised only where the model's own one-ulp noise floor is higher
        assert stats["tolerance"] == max(verification["tolerance_vs_quantized"], FLOOR_FACTOR * stats["median_noise_floor"])
        assert stats["flip_tolerance"] == max(verification["flip_tolerance_vs_quantized"],
                                              FLOOR_FACTOR * stats["max_noise_floor"])
    # Every row carries its noise floor; linears are perturbed, the embedding table has none to perturb.
    floors = {m: [r["noise_floor"] for r in verification["methods"] if r["method"] == m] for m in contract.MODEL_METHODS}
    assert max(floors[contract.VISION_ENCODER]) > 0 and max(floors[contract.TEXT_DECODER]) > 0
    assert floors[contract.TOKEN_EMBEDDING] == [0.0] * len(floors[contract.TOKEN_EMBEDDING])
    methods = {row["method"] for row in verification["methods"]}
    assert methods == set(contract.MODEL_METHODS)
    # Greedy tokens of the program equal those of the eager model it was exported from.
    greedy = verification["greedy"]
    assert greedy["num_agreeing_prefix_vs_quantized"] == greedy["num_tokens"]
    manifest = json.loads((out / contract.MANIFEST_FILE).read_text())
    assert set(contract.MANIFEST_KEYS) <= set(manifest)
    assert manifest["program"]["size_bytes"] == (out / contract.PROGRAM_FILE).stat().st_size
    assert (manifest["max_context_len"], manifest["prefill_chunk"], manifest["tile_batch"]) == export_sizes


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["w4", "fp32"])
def test_vision_encoder_matches_the_eager_quantized_tower(exported, export_sizes, recipe: str) -> None:
    """The median tile is within the issue's 1e-3 (the enforced bound is 5e-3), and many tiles agree to float rounding.

    Before the tanh-GELU rewrite every w4 tile was ~7e-3 away (XNNPACK ran erf-GELU): no tile
    exact, median 7e-3. Now the others are exact and the rest carry int8 rounding flips (on
    this 64-wide random tower, with these seed-0 tiles, 4 of 9 tiles are off by 2e-3 to 5e-3).
    """
    from mobile_mllm.runtime.parity import QUANTIZED_TOLERANCE

    assert QUANTIZED_TOLERANCE == 5e-3
    verification = exported(recipe).report["verification"]
    tiles = [row["rel_err_vs_quantized"] for row in verification["methods"] if row["method"] == contract.VISION_ENCODER]
    assert len(tiles) == 1 + 2 * export_sizes[2]  # a batch-1 call and two full-batch calls
    assert verification["by_method"][contract.VISION_ENCODER]["median_rel_err_vs_quantized"] <= 1e-3
    assert sum(err <= 1e-5 for err in tiles) >= len(tiles) / 3


@pytest.mark.slow
def test_fp32_program_matches_the_float_model_exactly(exported) -> None:
    verification = exported("fp32").report["verification"]
    assert verification["max_rel_err_vs_float"] < 1e-4
    greedy = verification["greedy"]
    assert greedy["program_tokens"] == greedy["float_tokens"]


@pytest.mark.slow
def test_w4_report_precisions_and_sizes(exported) -> None:
    report = exported("w4").report
    q = report["quantization"]
    layers = {row["name"]: row for row in q["layers"]}
    q_proj = layers["text_decoder.layers.0.self_attn.q_proj"]
    assert (q_proj["precision"], q_proj["group_size"], q_proj["activation"]) == ("w4", 32, "int8_asym_per_token")
    assert layers["text_decoder.lm_head"]["precision"] == "w8"
    assert layers["vision_encoder.projector.fc1"]["precision"] == "w8"
    assert layers["vision_encoder.projector.fc1"]["group_size"] == layers["vision_encoder.projector.fc1"]["shape"][1]
    assert layers["token_embedding.embedding"]["precision"] == "w8"
    assert q["by_method"]["text_decoder"] == {"w4": 14, "w8": 1}  # 2 layers x 7 linears + lm_head
    # Smaller than fp32: int4 decoder, int8 elsewhere.
    assert report["program"]["size_bytes"] < 0.45 * exported("fp32").report["program"]["size_bytes"]
    assert report["bytes_per_parameter"] < 1.8


def test_exported_graph_carries_int4_groups_and_int8_channels(tiny_dir: Path) -> None:
    """Independent of the report: the dequantize ops torch.export records for a few layers."""
    from mobile_mllm.export.backends.xnnpack import method_inputs, prepare
    from mobile_mllm.model import load_model
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import QuantConfig, build_recipe

    model = load_model(tiny_dir, max_context_len=64)
    cfg = TargetConfig(max_context_len=64, prefill_chunk=16)
    modules = prepare(model, cfg)
    quantize_modules(modules, build_recipe(QuantConfig(), vision_method="vision_encoder",
                                           decoder_method="text_decoder", embedding_method="token_embedding"))
    inputs = method_inputs(model, cfg)[contract.TEXT_DECODER]
    ep = torch.export.export(modules[contract.TEXT_DECODER], inputs.args, dynamic_shapes=inputs.dynamic_shapes, strict=False)
    params = ep.graph_signature.inputs_to_parameters  # placeholder name -> parameter FQN
    weights: dict[str, tuple[tuple[int, ...], int, int]] = {}
    for node in ep.graph.nodes:
        if node.op != "call_function" or "dequantize_affine" not in str(node.target):
            continue
        source = node.args[0]
        while getattr(source, "op", None) == "call_function":  # access_subclass_inner_tensor(param, "qdata")
            source = source.args[0]
        if getattr(source, "name", None) in params:
            weights[params[source.name]] = (tuple(node.args[1]), node.args[5], node.args[6])
    assert weights["layers.0.self_attn.q_proj.weight"] == ((1, 32), -8, 7), weights
    assert weights["layers.1.mlp.down_proj.weight"] == ((1, 32), -8, 7)
    assert weights["lm_head.weight"] == ((1, model.hidden_size), -128, 127)
    linear_weights = [name for name in weights if name.endswith(("proj.weight", "lm_head.weight"))]
    assert len(linear_weights) == 15  # every linear of the decoder (2 x 7 + lm_head) is dequantized from ints


def test_vision_width_the_group_does_not_divide_falls_back_and_is_reported(tmp_path: Path) -> None:
    """A 48-wide SigLIP with 4-bit vision: group 32 does not divide 48, so those layers get per-channel int8, reported."""
    import dataclasses

    from mobile_mllm.export.backends.xnnpack import prepare
    from mobile_mllm.model import load_model
    from mobile_mllm.model.reference.checkpoint import write_random_reference
    from mobile_mllm.model.reference.presets import reference_tiny
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import Precision, QuantConfig, build_recipe

    cfg = reference_tiny()
    cfg = dataclasses.replace(cfg, tower=dataclasses.replace(cfg.tower, hidden_size=48, intermediate_size=96))
    model = load_model(write_random_reference(cfg, tmp_path / "odd"), max_context_len=32)
    modules = prepare(model, TargetConfig(max_context_len=32, prefill_chunk=16))
    recipe = build_recipe(QuantConfig(vision=Precision.W4), vision_method="vision_encoder",
                          decoder_method="text_decoder", embedding_method="token_embedding")
    report = quantize_modules(modules, recipe)
    q_proj = report.get("vision_encoder.tower.encoder.layers.0.self_attn.q_proj")
    assert (q_proj.requested, q_proj.precision, q_proj.group_size) == ("w4", "w8", 48)
    assert "group size 32 does not divide in_features 48" in q_proj.reason
    fc2 = report.get("vision_encoder.tower.encoder.layers.0.mlp.fc2")  # in_features 96 = 3 x 32
    assert (fc2.precision, fc2.group_size) == ("w4", 32)
    assert report.unexpected_fp32() == []
    assert all(f.name.startswith("vision_encoder.") for f in report.fallbacks())


def test_export_max_tiles_means_what_grid_max_tiles_means(tiny_dir: Path, tmp_path: Path) -> None:
    """``export --max-tiles 6`` alone lifts the side bound exactly as ``grid --max-tiles 6`` does."""
    from mobile_mllm.export.program import _load
    from mobile_mllm.vision.config import with_grid_limits

    job = ExportJob(model=str(tiny_dir), output=str(tmp_path), target=TargetConfig(max_context_len=64, prefill_chunk=16, max_tiles=6))
    model = _load(job)
    assert (model.vision.max_tiles, model.vision.max_side) == (6, None)
    default = _load(dataclasses.replace(job, target=TargetConfig(max_context_len=64, prefill_chunk=16)))
    assert model.vision == with_grid_limits(default.vision, max_tiles=6, max_side=None)
