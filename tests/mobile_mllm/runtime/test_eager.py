"""EagerMethods and the loop's pieces against independent references on the tiny preset.

References: tile-by-tile encoding for batched encoding; the HF decoder's own forward over the
whole embedding sequence (``inputs_embeds``, no cache) for chunked prefill and for greedy
decoding with the static KV cache.
"""

from __future__ import annotations

import pytest
import torch

from mobile_mllm.errors import ContextOverflowError, ContractError
from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.layout import TileRef, TokenRun, count_positions, first_turn, image_block, special_token_ids
from mobile_mllm.runtime.session import decode_n_tokens, embed_segments, encode_tiles, prefill
from mobile_mllm.vision import Grid


def _tiles(model, n: int) -> torch.Tensor:
    s = model.vision.tile_size
    return torch.randn(n, 3, s, s, generator=torch.Generator().manual_seed(n))


def test_batched_encoding_equals_tile_by_tile(tiny, counting) -> None:
    methods = counting(EagerMethods(tiny, tile_batch=4))
    tiles = _tiles(tiny, 9)
    batched, times = encode_tiles(methods, tiles, 4)
    assert methods.tile_batches == [4, 4, 1]
    assert len(times) == 3
    single = torch.cat([methods.inner.vision_encoder(tiles[i : i + 1]) for i in range(9)])
    assert batched.shape == (9, tiny.vision.tokens_per_tile, tiny.hidden_size)
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=1e-5)


def test_vision_encoder_refuses_batch_over_limit(tiny) -> None:
    with pytest.raises(ContractError, match=r"B <= 2 tiles, got \(3, 3"):
        EagerMethods(tiny, tile_batch=2).vision_encoder(_tiles(tiny, 3))


def _long_prompt(model) -> tuple[list, torch.Tensor]:
    """A ~300-position prompt: a 3x3 grid + thumbnail image block and a long question."""
    fmt = model.prompt
    ids = special_token_ids(model.tokenizer, fmt)
    block = image_block(fmt, grid=Grid(3, 3), thumbnail_index=9, tokens_per_tile=model.vision.tokens_per_tile, token_ids=ids)
    question = "Describe the red square, the blue circle and the green triangle in the picture. " * 8
    encode = lambda s: model.tokenizer.encode(s, add_special_tokens=False).ids  # noqa: E731
    segments = first_turn(fmt, question, encode=encode, token_ids=ids, image=block)
    while count_positions(segments) % 7 == 0 or count_positions(segments) % 128 == 0:  # keep the last chunk partial
        segments.append(TokenRun(tuple(encode("!"))))
    return segments, _tiles(model, 10)


def _hf_last_logits(model, embeds: torch.Tensor) -> torch.Tensor:
    with torch.inference_mode():
        return model.extra["hf_decoder"](inputs_embeds=embeds, use_cache=False).logits[:, -1].float()


@pytest.mark.parametrize("chunk", [128, 7, 512])
def test_chunked_prefill_matches_hf_full_forward(tiny, counting, chunk: int) -> None:
    methods = counting(EagerMethods(tiny, prefill_chunk=chunk))
    segments, tiles = _long_prompt(tiny)
    image, _ = encode_tiles(methods, tiles, methods.max_tile_batch)
    embeds = embed_segments(methods, segments, image)
    length = embeds.shape[1]
    assert 250 < length < 512 and length % 128 and length % 7  # chunks that do not divide the prompt
    logits = prefill(methods, embeds, 0, chunk)
    assert [n for _, n in methods.decoder_positions] == [min(chunk, length - i) for i in range(0, length, chunk)]
    reference = _hf_last_logits(tiny, embeds)
    torch.testing.assert_close(logits, reference, atol=1e-4, rtol=1e-4)
    assert logits.argmax().item() == reference.argmax().item()


def test_embed_segments_places_tiles_and_tokens(tiny) -> None:
    methods = EagerMethods(tiny)
    image = torch.randn(2, tiny.vision.tokens_per_tile, tiny.hidden_size)
    n = tiny.vision.tokens_per_tile
    embeds = embed_segments(methods, [TokenRun((5, 6)), TileRef(1, n), TokenRun((7,))], image)
    assert embeds.shape == (1, 3 + n, tiny.hidden_size)
    torch.testing.assert_close(embeds[0, 2 : 2 + n], image[1])
    torch.testing.assert_close(embeds[0, :2], methods.token_embedding(torch.tensor([[5, 6]]))[0])
    with pytest.raises(ContractError, match="tokens_per_tile"):
        embed_segments(methods, [TileRef(0, n + 1)], image)


def test_greedy_with_kv_cache_equals_recomputing_full_sequence(tiny) -> None:
    methods = EagerMethods(tiny)
    segments, tiles = _long_prompt(tiny)
    image, _ = encode_tiles(methods, tiles, 4)
    embeds = embed_segments(methods, segments, image)
    steps = 16
    cached, reason = decode_n_tokens(
        methods, prefill(methods, embeds, 0, 128), embeds.shape[1], steps, pick=lambda x: int(x.argmax()), stop_ids=()
    )
    assert reason == "max_new_tokens"
    # Reference: no cache, the HF forward over prompt + generated tokens at every step.
    seq, reference = embeds, []
    for _ in range(steps):
        token = int(_hf_last_logits(tiny, seq).argmax())
        reference.append(token)
        seq = torch.cat([seq, methods.token_embedding(torch.tensor([[token]]))], dim=1)
    assert cached == reference
    assert len(set(cached)) > 1  # not a degenerate constant answer


def test_decoder_refuses_positions_past_the_cache(tiny) -> None:
    methods = EagerMethods(tiny, prefill_chunk=8)
    embeds = methods.token_embedding(torch.tensor([[1, 2, 3, 4]]))
    with pytest.raises(ContextOverflowError, match=r"positions 510\.\.513 do not fit the KV cache of 512"):
        methods.text_decoder(embeds, torch.tensor([510]))
    with pytest.raises(ContractError, match="at most 8 positions per call, got 9"):
        methods.text_decoder(methods.token_embedding(torch.zeros(1, 9, dtype=torch.long)), torch.tensor([0]))
