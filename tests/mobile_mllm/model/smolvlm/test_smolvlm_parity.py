"""The smolvlm family against transformers (not against ourselves), on tiny random SmolVLM and Idefics3 checkpoints.

(a) our preprocessing == the HF image processor's ``pixel_values``, tile count and rows/cols, and
    our prompt layout == the HF processor's ``input_ids``, on several sizes and aspect ratios;
(b) our eager contract modules == the HF model: image features, last-position logits (fp32),
    and greedy tokens == ``model.generate``.
"""

from __future__ import annotations


import numpy as np
import pytest
import torch
from PIL import Image

from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.layout import TileRef, TokenRun
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session, embed_segments, prefill
from mobile_mllm.vision import preprocess

# (width, height): wide, tall, square, tiny (upscaled), extreme strip, just over a tile, odd sizes.
SIZES = [(300, 150), (40, 90), (64, 64), (13, 7), (500, 60), (65, 64), (257, 255), (123, 321)]


def _image(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed + width * 1000 + height)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def _session(model, max_new_tokens: int = 8) -> Session:
    return Session(
        EagerMethods(model, tile_batch=4, prefill_chunk=64),
        tokenizer=model.tokenizer, prompt=model.prompt, vision=model.vision, eos_ids=model.eos_ids,
        generation=GenerationConfig(max_new_tokens=max_new_tokens),
    )


def _hf_inputs(hf_processor, image: Image.Image, content: list[dict]) -> dict:
    text = hf_processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
    return hf_processor(text=text, images=[image], return_tensors="pt")


def _flat_ids(segments, image_token_id: int) -> list[int]:
    ids: list[int] = []
    for seg in segments:
        ids += list(seg.ids) if isinstance(seg, TokenRun) else [image_token_id] * seg.num_tokens
    return ids


# --------------------------------------------------------------------------- (a) preprocessing and prompt


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_tiles_equal_the_hf_image_processor(smolvlm, hf_image_processor, width: int, height: int) -> None:
    image = _image(width, height)
    hf = hf_image_processor(images=[image], return_tensors="pt", return_row_col_info=True)
    ours = preprocess(image, smolvlm.vision)
    rows, cols = hf["rows"][0][0], hf["cols"][0][0]
    assert (ours.grid.rows, ours.grid.cols) == ((rows, cols) if rows else (1, 1))
    assert ours.thumbnail_index == (rows * cols if rows else None)
    expected = hf["pixel_values"][0]
    assert ours.tiles.shape == expected.shape
    assert torch.equal(ours.tiles, expected)  # same PIL lanczos resizes, same arithmetic: bit-identical here


@pytest.mark.parametrize("longest_edge", [64, 128, 192])
def test_a_token_budget_gives_the_hf_grid_of_a_smaller_longest_edge(
    smolvlm, hf_image_processor, longest_edge: int
) -> None:
    # Our budget lowers the longest edge by whole tiles: the result is HF's with that size.
    from mobile_mllm.vision import plan_tiles
    from mobile_mllm.vision.grid import Size

    image = _image(300, 150)
    hf = hf_image_processor(images=[image], return_tensors="pt", size={"longest_edge": longest_edge})
    n_hf = hf["pixel_values"].shape[1]
    budget = n_hf * smolvlm.vision.tokens_per_tile
    plan = plan_tiles(Size(300, 150), smolvlm.vision, token_budget=budget)
    assert plan.num_tiles == n_hf
    ours = preprocess(image, smolvlm.vision, token_budget=budget)
    assert torch.equal(ours.tiles, hf["pixel_values"][0])


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_prompt_ids_equal_the_hf_processor(smolvlm, hf_processor, width: int, height: int) -> None:
    image = _image(width, height)
    hf = _hf_inputs(hf_processor, image, [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}])
    plan = _session(smolvlm)._plan("What is in the picture?", image)
    image_id = smolvlm.special_ids["<image>"]
    assert _flat_ids(plan.segments, image_id) == hf["input_ids"][0].tolist()
    assert plan.tiles.image_tokens == int((hf["input_ids"][0] == image_id).sum())


def test_text_before_the_image_follows_the_chat_template(smolvlm, hf_processor) -> None:
    # "User: Describe<image>" (a space after the colon when the turn opens with text), not "User:Describe".
    image = _image(300, 150)
    hf = _hf_inputs(hf_processor, image, [{"type": "text", "text": "Describe"}, {"type": "image"}])
    plan = _session(smolvlm)._plan("Describe<image>", image)
    assert _flat_ids(plan.segments, smolvlm.special_ids["<image>"]) == hf["input_ids"][0].tolist()


def test_smolvlm_processor_expands_an_image_like_our_layout(smolvlm, hf_image_processor) -> None:
    # SmolVLMProcessor's own expansion function (its processor object needs torchvision for video).
    from transformers.models.smolvlm.processing_smolvlm import get_image_prompt_string

    for width, height in SIZES[:4]:
        image = _image(width, height)
        hf = hf_image_processor(images=[image], return_tensors="pt", return_row_col_info=True)
        n = smolvlm.vision.tokens_per_tile
        text = get_image_prompt_string(
            hf["rows"][0][0], hf["cols"][0][0], n, fake_token_around_image="<fake_token_around_image>",
            image_token="<image>", global_image_token="<global-img>",
        )
        expected = smolvlm.tokenizer.encode(text, add_special_tokens=False).ids
        plan = _session(smolvlm)._plan("<image>", image)
        ids = _flat_ids(plan.segments, smolvlm.special_ids["<image>"])
        head = smolvlm.tokenizer.encode("<|im_start|>User:", add_special_tokens=False).ids
        assert ids[len(head): len(head) + len(expected)] == expected


# --------------------------------------------------------------------------- (b) forward and generate


def test_image_features_equal_hf(smolvlm, hf_model, hf_image_processor) -> None:
    assert not any(isinstance(m, torch.nn.LayerNorm) for m in smolvlm.vision_encoder.modules())  # rewritten for XNNPACK
    pixels = hf_image_processor(images=[_image(300, 150)], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        expected = hf_model.model.get_image_features(pixel_values=pixels).pooler_output[0]
        ours = smolvlm.vision_encoder(pixels[0])
    assert ours.reshape(-1, ours.shape[-1]).shape == expected.shape
    torch.testing.assert_close(ours.reshape(-1, ours.shape[-1]), expected, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(("width", "height"), [(300, 150), (40, 90), (13, 7)])
def test_prefill_logits_equal_hf_forward(smolvlm, hf_model, hf_processor, width: int, height: int) -> None:
    image = _image(width, height)
    question = "What colour is the square?"
    hf = _hf_inputs(hf_processor, image, [{"type": "image"}, {"type": "text", "text": question}])
    with torch.no_grad():
        expected = hf_model(**hf).logits[0, -1]
    session = _session(smolvlm)
    plan = session._plan(question, image)
    features = session.methods.vision_encoder(preprocess(image, smolvlm.vision).tiles[:4])
    rest = preprocess(image, smolvlm.vision).tiles[4:]
    while rest.shape[0]:
        features = torch.cat([features, session.methods.vision_encoder(rest[:4])])
        rest = rest[4:]
    embeds = embed_segments(session.methods, plan.segments, features)
    logits = prefill(session.methods, embeds, 0, session.methods.prefill_chunk)[0]
    assert logits.shape == expected.shape
    torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4)
    assert sum(isinstance(s, TileRef) for s in plan.segments) == plan.tiles.num_tiles


def test_greedy_tokens_equal_hf_generate(smolvlm, hf_model, hf_processor) -> None:
    image = _image(300, 150)
    question = "What is in the picture?"
    hf = _hf_inputs(hf_processor, image, [{"type": "image"}, {"type": "text", "text": question}])
    n = 12
    with torch.no_grad():
        out = hf_model.generate(
            **hf, max_new_tokens=n, do_sample=False, eos_token_id=list(smolvlm.eos_ids), pad_token_id=0
        )
    expected = out[0, hf["input_ids"].shape[1]:].tolist()
    answer = _session(smolvlm, max_new_tokens=n).ask(question, image)
    assert list(answer.tokens) == expected
    assert len(set(expected)) > 1  # a degenerate repeat would not tell decoders apart
