"""Model directories: save -> load is bitwise, random init is seeded, and every broken file is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from mobile_mllm.errors import ModelLoadError, UnsupportedModelError
from mobile_mllm.model import load_model
from mobile_mllm.model.reference.checkpoint import save_reference, write_random_reference
from mobile_mllm.model.reference.presets import reference_tiny
from reference_models import randomize, tiny_qwen2


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_random_reference(reference_tiny(), tmp_path_factory.mktemp("tiny") / "m", seed=0)


@pytest.fixture()
def broken(tiny_dir: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tiny directory for a test to break."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "copy"))


@torch.no_grad()
def _outputs(model) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tiles = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ids = torch.tensor([[2, 300, 301, 302, 5, 3]])
    embeds = model.token_embedding(ids)
    logits = model.text_decoder(embeds, torch.tensor([0]))
    return model.vision_encoder(tiles), embeds, logits


@pytest.mark.parametrize("make_cfg", [reference_tiny, tiny_qwen2], ids=["llama", "qwen2-tied"])
def test_save_then_load_gives_bitwise_identical_outputs(tmp_path: Path, make_cfg) -> None:
    src = write_random_reference(make_cfg(), tmp_path / "src", seed=1)
    model = load_model(src, max_context_len=32)
    randomize(model.vision_encoder, seed=2)  # weights that are not the file's, so the save matters
    randomize(model.extra["hf_decoder"], seed=3)
    before = _outputs(model)
    reloaded = load_model(save_reference(model, tmp_path / "dst"), max_context_len=32)
    for a, b in zip(before, _outputs(reloaded)):
        assert torch.equal(a, b)
    if make_cfg is tiny_qwen2:  # tied: stored once, shared again after loading
        hf = reloaded.extra["hf_decoder"]
        assert hf.lm_head.weight is hf.model.embed_tokens.weight
        with safe_open(str(tmp_path / "dst" / "model.safetensors"), "pt") as fh:
            assert "language_model.lm_head.weight" not in set(fh.keys())


def test_loaded_decoder_matches_its_hf_model(tiny_dir: Path) -> None:
    model = load_model(tiny_dir, max_context_len=16)
    ids = torch.tensor([[2, 40, 41, 42, 3]])
    with torch.no_grad():
        ref = model.extra["hf_decoder"](input_ids=ids).logits[:, -1]
        out = model.text_decoder(model.token_embedding(ids), torch.tensor([0]))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-6)


def test_model_fields_follow_the_tokenizer_and_prompt(tiny_dir: Path) -> None:
    model = load_model(tiny_dir, max_context_len=16)
    tok = model.tokenizer
    assert model.eos_ids == (tok.token_to_id("<|end|>"), tok.token_to_id("<|endoftext|>"))
    assert model.special_ids["<img>"] == tok.token_to_id("<img>")
    assert (model.vision.tile_size, model.vision.tokens_per_tile) == (64, 16)
    assert (model.hidden_size, model.vocab_size, model.max_context_len) == (128, 2048, 16)
    assert model.text_decoder.kv_caches()[0][0].shape[2] == 16


def test_random_weights_are_deterministic_in_the_seed(tmp_path: Path, tiny_dir: Path) -> None:
    again = write_random_reference(reference_tiny(), tmp_path / "again", seed=0)
    other = write_random_reference(reference_tiny(), tmp_path / "other", seed=1)
    data = (tiny_dir / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == data
    assert (other / "model.safetensors").read_bytes() != data


def test_random_weights_follow_the_init_scheme(tiny_dir: Path) -> None:
    with safe_open(str(tiny_dir / "model.safetensors"), "pt") as fh:
        norm = fh.get_tensor("language_model.model.norm.weight")
        bias = fh.get_tensor("multi_modal_projector.fc1.bias")
        weight = fh.get_tensor("language_model.model.layers.0.mlp.up_proj.weight")
    assert torch.equal(norm, torch.ones(128)) and torch.equal(bias, torch.zeros(128))
    assert abs(weight.std().item() - 0.02) < 0.002 and abs(weight.mean().item()) < 0.002


def test_bf16_checkpoint_loads_in_float32_and_bf16(tmp_path: Path) -> None:
    d = write_random_reference(reference_tiny(), tmp_path / "bf16", seed=0, dtype=torch.bfloat16)
    assert json.loads((d / "config.json").read_text())["torch_dtype"] == "bfloat16"
    m32 = load_model(d, max_context_len=8)
    m16 = load_model(d, dtype=torch.bfloat16, max_context_len=8)
    assert m32.extra["hf_decoder"].lm_head.weight.dtype == torch.float32
    assert torch.equal(m32.extra["hf_decoder"].lm_head.weight.to(torch.bfloat16), m16.extra["hf_decoder"].lm_head.weight)
    with torch.no_grad():
        out = m16.text_decoder(m16.token_embedding(torch.tensor([[1, 2, 3]])), torch.tensor([0]))
    assert out.dtype == torch.bfloat16 and out.shape == (1, 2048)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["config.json", "model.safetensors", "tokenizer.json", "preprocessor_config.json"])
def test_missing_file_is_named(broken: Path, name: str) -> None:
    (broken / name).unlink()
    with pytest.raises(ModelLoadError, match=rf"missing {name}"):
        load_model(broken)


def test_unknown_family_lists_known_families(broken: Path) -> None:
    cfg = json.loads((broken / "config.json").read_text())
    cfg["mobile_mllm_family"] = "internv1"
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UnsupportedModelError, match=r"no family 'internv1'; known: internvl, reference, smolvlm"):
        load_model(broken)


def test_corrupted_config_json_is_named(broken: Path) -> None:
    (broken / "config.json").write_text('{"mobile_mllm_family": "reference", ')
    with pytest.raises(ModelLoadError, match=r"config.json is not valid JSON"):
        load_model(broken)


def test_unknown_and_mistyped_config_keys_are_all_listed(broken: Path) -> None:
    cfg = json.loads((broken / "config.json").read_text())
    cfg["decoder"]["num_layerz"] = 3
    cfg["tower"]["hidden_size"] = "wide"
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"(?s)(?=.*decoder\.num_layerz: unknown key)(?=.*tower\.hidden_size: must be an integer)"):
        load_model(broken)


def test_unmapped_weight_key_is_named(broken: Path) -> None:
    f = broken / "model.safetensors"
    with safe_open(str(f), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    tensors["mm_projector.0.weight"] = torch.zeros(2, 2)
    save_file(tensors, str(f))
    with pytest.raises(ModelLoadError, match=r"unmapped weight key 'mm_projector\.0\.weight'"):
        load_model(broken)


def test_missing_weight_is_named(broken: Path) -> None:
    f = broken / "model.safetensors"
    with safe_open(str(f), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys() if k != "downsampler.linear.bias"}
    save_file(tensors, str(f))
    with pytest.raises(ModelLoadError, match=r"missing \['downsampler\.linear\.bias'\]"):
        load_model(broken)


def test_weight_of_wrong_shape_is_named(broken: Path) -> None:
    cfg = json.loads((broken / "config.json").read_text())
    cfg["projector_dim"] = 96  # the file's projector is 128 wide
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match=r"multi_modal_projector\.fc1\.(weight|bias) has shape \(128(, 64)?,?\), config\.json implies \(96"):
        load_model(broken)


def test_truncated_weights_file_is_reported(broken: Path) -> None:
    f = broken / "model.safetensors"
    f.write_bytes(f.read_bytes()[:1000])
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is not a readable safetensors file"):
        load_model(broken)


def test_preprocessor_inconsistent_with_architecture_is_refused(broken: Path) -> None:
    pre = json.loads((broken / "preprocessor_config.json").read_text())
    pre["tokens_per_tile"] = 196
    (broken / "preprocessor_config.json").write_text(json.dumps(pre))
    with pytest.raises(ModelLoadError, match=r"tokens_per_tile 196 do not match"):
        load_model(broken)


def test_tokenizer_without_special_tokens_is_refused(broken: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel()
    tok.save(str(broken / "tokenizer.json"))
    with pytest.raises(ModelLoadError, match=r"special token '<\|endoftext\|>' is missing"):
        load_model(broken)


def test_kv_cache_longer_than_the_rotary_range_is_refused(tiny_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"max_context_len 5000 must be in 1\.\.4096"):
        load_model(tiny_dir, max_context_len=5000)


def test_hf_metadata_keys_in_config_are_accepted(broken: Path) -> None:
    cfg = json.loads((broken / "config.json").read_text())
    cfg.update({"architectures": ["MobileMLLMReference"], "transformers_version": "5.24.0"})
    (broken / "config.json").write_text(json.dumps(cfg))
    assert load_model(broken, max_context_len=8).extra["config"].variant == "tiny"
