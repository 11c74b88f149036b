"""The loaded InternVL model == transformers' ``InternVLForConditionalGeneration`` (vision features, logits, greedy tokens)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from internvl_models import hf_inputs, hf_processor

from mobile_mllm.errors import ModelLoadError
from mobile_mllm.model import detect_family, load_model
from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session, embed_segments, encode_tiles, prefill

QUESTION = "What is in the picture?"


@pytest.fixture(scope="module")
def model(tiny_internvl_dir: Path):  # -> MultimodalModel
    return load_model(tiny_internvl_dir, max_context_len=512)


def _image(size: tuple[int, int], seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _session(model, max_new_tokens: int = 1, prefill_chunk: int = 128) -> Session:
    return Session(
        EagerMethods(model, tile_batch=4, prefill_chunk=prefill_chunk), tokenizer=model.tokenizer, prompt=model.prompt,
        vision=model.vision, eos_ids=model.eos_ids, generation=GenerationConfig(max_new_tokens=max_new_tokens),
    )


def test_family_is_detected_from_hf_config(tiny_internvl_dir: Path) -> None:
    assert detect_family(tiny_internvl_dir) == "internvl"


def test_pixel_shuffle_orders_channels_as_hf(hf_model) -> None:
    from mobile_mllm.model.reference.modules import space_to_channel_2x2

    hf = hf_model
    x = torch.randn(3, 8, 8, 5)
    expected = hf.model.pixel_shuffle(x, scale_factor=0.5).reshape(3, 16, 20)
    torch.testing.assert_close(space_to_channel_2x2(x.reshape(3, 64, 5), 8), expected, rtol=0, atol=0)


def test_vision_encoder_equals_hf_image_features(model, hf_model) -> None:
    hf = hf_model
    tiles = torch.randn(5, 3, 28, 28)
    with torch.no_grad():
        expected = hf.model.get_image_features(pixel_values=tiles, return_dict=True).pooler_output
        ours = model.vision_encoder(tiles)
    assert ours.shape == (5, 4, 64)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(90, 50), (30, 30), (40, 160)], ids=["2x1+thumb", "1x1", "1x4+thumb"])
@pytest.mark.parametrize("prefill_chunk", [128, 7], ids=["one-chunk", "chunks-of-7"])
def test_prefill_logits_equal_hf_forward(model, hf_model, tiny_internvl_dir: Path, size, prefill_chunk: int) -> None:
    """Our eager runtime (preprocess, layout, vision encoder, chunked prefill over the static cache) vs HF's forward."""
    image = _image(size, seed=size[0])
    session = _session(model, prefill_chunk=prefill_chunk)
    plan = session._plan(QUESTION, image)
    from mobile_mllm.vision.processor import preprocess

    tiles = preprocess(image, model.vision).tiles
    embeds, _ = encode_tiles(session.methods, tiles, 4)
    logits = prefill(session.methods, embed_segments(session.methods, plan.segments, embeds), 0, prefill_chunk)
    inputs = hf_inputs(hf_processor(tiny_internvl_dir), image, QUESTION)
    assert embed_segments(session.methods, plan.segments, embeds).shape[1] == inputs["input_ids"].shape[1]
    with torch.no_grad():
        expected = hf_model(**inputs).logits[0, -1]
    torch.testing.assert_close(logits[0], expected, rtol=0, atol=1e-4)


def test_greedy_answer_equals_hf_generate(model, hf_model, tiny_internvl_dir: Path) -> None:
    image = _image((90, 50), seed=3)
    processor = hf_processor(tiny_internvl_dir)
    inputs = hf_inputs(processor, image, QUESTION)
    hf = hf_model
    n = 12
    with torch.no_grad():
        out = hf.generate(**inputs, max_new_tokens=n, do_sample=False, eos_token_id=list(model.eos_ids), pad_token_id=model.eos_ids[-1])
    expected = out[0, inputs["input_ids"].shape[1]:].tolist()
    answer = _session(model, max_new_tokens=n).ask(QUESTION, image)
    assert list(answer.tokens) == expected
    assert len(set(expected)) > 1  # a constant answer would not tell the decoders apart


def test_text_only_turn_equals_hf(model, hf_model, tiny_internvl_dir: Path) -> None:
    processor = hf_processor(tiny_internvl_dir)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
                                         add_generation_prompt=True, tokenize=False)
    ids = processor.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = hf_model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=6,
                                               do_sample=False, eos_token_id=list(model.eos_ids), pad_token_id=0)
    assert list(_session(model, max_new_tokens=6).ask(QUESTION).tokens) == out[0, ids.shape[1]:].tolist()


def test_tokenizer_without_image_tokens_is_refused(tiny_internvl_dir: Path, tmp_path: Path) -> None:
    bad = shutil.copytree(tiny_internvl_dir, tmp_path / "bad")
    data = json.loads((bad / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] != "<img>"]
    (bad / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ModelLoadError, match="special token '<img>' is missing"):
        load_model(bad, max_context_len=64)


def test_missing_weight_is_an_error_not_a_random_tensor(tiny_internvl_dir: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    bad = shutil.copytree(tiny_internvl_dir, tmp_path / "bad")
    weights = load_file(str(bad / "model.safetensors"))
    dropped = next(k for k in weights if "multi_modal_projector.linear_1.weight" in k)
    del weights[dropped]
    save_file(weights, str(bad / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="missing keys"):
        load_model(bad, max_context_len=64)


def test_export_grid_policy_option_replaces_the_native_rule(tiny_internvl_dir: Path) -> None:
    """``mobile-mllm export --grid-policy relaxed``: the model the program (and its manifest) is built from tiles by BlueLM's rule."""
    from mobile_mllm.export.config import ExportJob, TargetConfig
    from mobile_mllm.export.program import _load
    from mobile_mllm.vision.config import GridPolicy

    native = _load(ExportJob(model=str(tiny_internvl_dir), target=TargetConfig(max_context_len=64, prefill_chunk=32)))
    relaxed = _load(ExportJob(model=str(tiny_internvl_dir), target=TargetConfig(max_context_len=64, prefill_chunk=32, grid_policy=GridPolicy.RELAXED)))
    assert (native.vision.policy, relaxed.vision.policy) == (GridPolicy.INTERNVL, GridPolicy.RELAXED)
    assert relaxed.vision == dataclasses.replace(native.vision, policy=GridPolicy.RELAXED)


def test_unsupported_decoder_is_refused_before_loading_weights(tiny_internvl_dir: Path, tmp_path: Path) -> None:
    from mobile_mllm.errors import UnsupportedModelError

    bad = shutil.copytree(tiny_internvl_dir, tmp_path / "bad")
    config = json.loads((bad / "config.json").read_text(encoding="utf-8"))
    config["text_config"]["model_type"] = "internlm2"
    (bad / "config.json").write_text(json.dumps(config), encoding="utf-8")
    (bad / "model.safetensors").unlink()  # never reached
    with pytest.raises(UnsupportedModelError, match="text_config.model_type 'internlm2' is not supported"):
        load_model(bad, max_context_len=64)


def test_every_norm_is_in_its_delegable_form(model) -> None:
    """No HF LayerNorm/RMSNorm is left where XNNPACK cannot take it (the parity tests above hold with the rewrite)."""
    from torch import nn

    from mobile_mllm.model.delegable import MatmulLayerNorm, MatmulRMSNorm

    modules = [m for part in (model.vision_encoder, model.text_decoder) for m in part.modules()]
    assert not [type(m).__name__ for m in modules if isinstance(m, nn.LayerNorm) or type(m).__name__.endswith("RMSNorm") and not isinstance(m, MatmulRMSNorm)]
    assert sum(isinstance(m, MatmulLayerNorm) for m in modules) == 2 * 2 + 1  # 2 per ViT layer + the projector's
    assert sum(isinstance(m, MatmulRMSNorm) for m in set(modules)) == 2 * 2 + 1  # 2 per decoder layer + the final norm


def test_follow_up_turn_equals_hf_on_the_whole_conversation(model, hf_model, tiny_internvl_dir: Path) -> None:
    """A follow-up (prefilled after the cached first turn) == HF generating from the whole two-turn prompt."""
    image = _image((40, 160), seed=9)
    processor = hf_processor(tiny_internvl_dir)
    session = _session(model, max_new_tokens=5)
    first = session.ask(QUESTION, image)
    second = session.ask("And the colour?")
    inputs = hf_inputs(processor, image, QUESTION)
    turn_end = "<|im_end|>\n<|im_start|>user\nAnd the colour?<|im_end|>\n<|im_start|>assistant\n"
    ids = torch.cat([inputs["input_ids"][0], torch.tensor(first.tokens), processor.tokenizer(turn_end, return_tensors="pt")["input_ids"][0]])
    if first.tokens[-1] in model.eos_ids:  # a stop token is replaced by turn_end, as the chat template writes it
        ids = torch.cat([inputs["input_ids"][0], torch.tensor(first.tokens[:-1]), processor.tokenizer(turn_end, return_tensors="pt")["input_ids"][0]])
    with torch.no_grad():
        out = hf_model.generate(input_ids=ids[None], attention_mask=torch.ones_like(ids)[None], pixel_values=inputs["pixel_values"],
                                max_new_tokens=5, do_sample=False, eos_token_id=list(model.eos_ids), pad_token_id=model.eos_ids[-1])
    assert list(second.tokens) == out[0, ids.shape[0]:].tolist()
