"""The contract modules against independent references: hand-computed grids and HF's own forward."""

from __future__ import annotations

import pytest
import torch

from mobile_mllm.model.reference.modules import TokenDownsampler, space_to_channel_2x2

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# --------------------------------------------------------------------------- downsampler


def test_space_to_channel_pads_3x3_to_4x4_and_orders_tl_tr_bl_br() -> None:
    # grid values v[r][c] = 10*r + c + 1 (so 0 is only ever padding), two channels: (v, -v)
    grid = torch.tensor([[10 * r + c + 1 for c in range(3)] for r in range(3)], dtype=torch.float32)
    x = torch.stack([grid.reshape(9), -grid.reshape(9)], dim=-1).unsqueeze(0)  # [1, 9, 2]
    out = space_to_channel_2x2(x, 3)
    assert out.shape == (1, 4, 8)
    expected_blocks = [  # (TL, TR, BL, BR) per output token, row-major over the 2x2 block grid
        (1, 2, 11, 12),
        (3, 0, 13, 0),
        (21, 22, 0, 0),
        (23, 0, 0, 0),
    ]
    for token, block in enumerate(expected_blocks):
        want = [v for b in block for v in (b, -b)]
        assert out[0, token].tolist() == [float(v) for v in want]


def test_space_to_channel_even_grid_needs_no_padding_and_keeps_batches_apart() -> None:
    x = torch.arange(2 * 16 * 1, dtype=torch.float32).reshape(2, 16, 1)
    out = space_to_channel_2x2(x, 4)
    assert out.shape == (2, 4, 4)
    assert out[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    assert out[1, 3].tolist() == [16 + 10.0, 16 + 11.0, 16 + 14.0, 16 + 15.0]


def test_downsampler_is_layernorm_then_linear_over_merged_channels() -> None:
    torch.manual_seed(0)
    ds = TokenDownsampler(grid_side=3, in_dim=5, out_dim=7)
    with torch.no_grad():
        for p in ds.parameters():
            p.normal_()
    x = torch.randn(2, 9, 5)
    merged = space_to_channel_2x2(x, 3)
    ref = torch.nn.functional.layer_norm(merged, (20,), ds.norm.weight, ds.norm.bias, 1e-6) @ ds.linear.weight.T
    ref = ref + ds.linear.bias
    torch.testing.assert_close(ds(x), ref)


# --------------------------------------------------------------------------- vision encoder


def test_vision_encoder_equals_siglip_then_downsampler_then_projector(tiny_mods) -> None:
    enc = tiny_mods.vision_encoder
    tiles = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden = enc.tower(pixel_values=tiles).last_hidden_state  # HF SigLIP, post-LayerNorm
        assert hidden.shape == (3, 64, 64)  # 8x8 patches of width 64
        merged = space_to_channel_2x2(hidden, 8)
        down = enc.downsampler.linear(enc.downsampler.norm(merged))
        proj = enc.projector.fc2(torch.nn.functional.gelu(enc.projector.fc1(down)))
        out = enc(tiles)
    assert out.shape == (3, 16, 128)
    torch.testing.assert_close(out, proj, rtol=0, atol=1e-6)


def test_vision_encoder_batch_equals_tile_by_tile(tiny_mods) -> None:
    tiles = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        batched = tiny_mods.vision_encoder(tiles)
        single = torch.cat([tiny_mods.vision_encoder(t[None]) for t in tiles])
    torch.testing.assert_close(batched, single, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- text decoder vs HF


def _prompt(n: int, seed: int = 3) -> torch.Tensor:
    return torch.randint(0, 2048, (1, n), generator=torch.Generator().manual_seed(seed))


def _hf_last_logits(mods, ids: torch.Tensor) -> torch.Tensor:
    return mods.hf_decoder(input_ids=ids).logits[:, -1, :]


@torch.no_grad()
def test_text_decoder_matches_hf_forward_on_a_prompt(tiny_mods) -> None:
    ids = _prompt(13)
    ref = _hf_last_logits(tiny_mods, ids)
    assert ref.abs().max() > 1.0  # the weights are big enough for a mismatch to show
    out = tiny_mods.text_decoder(tiny_mods.token_embedding(ids), torch.tensor([0]))
    assert out.shape == (1, 2048)
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


@torch.no_grad()
@pytest.mark.parametrize("chunk", [1, 3, 5, 13])
def test_chunked_prefill_equals_one_call(tiny_mods, chunk: int) -> None:
    ids = _prompt(13)
    embeds = tiny_mods.token_embedding(ids)
    whole = tiny_mods.text_decoder(embeds, torch.tensor([0])).clone()
    tiny_mods.text_decoder.reset_cache()
    for start in range(0, 13, chunk):
        out = tiny_mods.text_decoder(embeds[:, start : start + chunk], torch.tensor([start]))
    torch.testing.assert_close(out, whole, rtol=0, atol=1e-5)


@torch.no_grad()
def test_decode_after_prefill_equals_hf_on_the_full_sequence(tiny_mods) -> None:
    ids = _prompt(12, seed=4)
    dec, emb = tiny_mods.text_decoder, tiny_mods.token_embedding
    dec(emb(ids[:, :8]), torch.tensor([0]))
    for pos in range(8, 12):
        out = dec(emb(ids[:, pos : pos + 1]), torch.tensor([pos]))
        torch.testing.assert_close(out, _hf_last_logits(tiny_mods, ids[:, : pos + 1]), rtol=0, atol=1e-5)


@torch.no_grad()
def test_overwriting_from_an_earlier_position_ignores_stale_cache(tiny_mods) -> None:
    dec, emb = tiny_mods.text_decoder, tiny_mods.token_embedding
    first, second = _prompt(20, seed=5), _prompt(6, seed=6)
    dec(emb(first), torch.tensor([0]))  # fills positions 0..19
    prefix = first[:, :10]
    out = dec(emb(second), torch.tensor([10]))  # a new turn overwrites from 10; 16..19 are stale
    torch.testing.assert_close(out, _hf_last_logits(tiny_mods, torch.cat([prefix, second], 1)), rtol=0, atol=1e-5)


@torch.no_grad()
def test_embeddings_from_elsewhere_match_hf_inputs_embeds(tiny_mods) -> None:
    # image embeddings reach the decoder as embeds: compare with HF's inputs_embeds path
    embeds = torch.randn(1, 9, 128, generator=torch.Generator().manual_seed(7))
    ref = tiny_mods.hf_decoder(inputs_embeds=embeds).logits[:, -1, :]
    out = tiny_mods.text_decoder(embeds, torch.tensor([0]))
    torch.testing.assert_close(out, ref, rtol=0, atol=1e-5)


def test_kv_cache_is_static_buffers_of_max_seq_len(tiny_mods) -> None:
    keys, values = tiny_mods.text_decoder.kv_caches()
    assert len(keys) == len(values) == 2
    assert all(k.shape == (1, 2, 64, 32) for k in (*keys, *values))  # 2 KV heads of 32, 64 positions
    buffer_names = {n for n, _ in tiny_mods.text_decoder.named_buffers()}
    assert {"k_cache_0", "v_cache_1"} <= buffer_names


@pytest.mark.slow
@torch.no_grad()
def test_text_decoder_exports_with_dynamic_length_and_matches_eager(tiny_mods) -> None:
    from torch.export import Dim, export

    dec = tiny_mods.text_decoder
    embeds = tiny_mods.token_embedding(_prompt(5))
    seq = Dim("seq", min=1, max=64)
    program = export(dec, (embeds, torch.tensor([0])), dynamic_shapes=({1: seq}, None), strict=False)
    exported = program.module()
    ids = _prompt(11, seed=8)
    e = tiny_mods.token_embedding(ids)
    exported(e[:, :7], torch.tensor([0]))
    out = exported(e[:, 7:], torch.tensor([7]))  # the exported module carries its own cache buffers
    torch.testing.assert_close(out, _hf_last_logits(tiny_mods, ids), rtol=0, atol=1e-5)
    one = exported(tiny_mods.token_embedding(ids[:, :1]), torch.tensor([0]))  # T=1 through the same graph
    torch.testing.assert_close(one, _hf_last_logits(tiny_mods, ids[:, :1]), rtol=0, atol=1e-5)


@pytest.mark.slow
@torch.no_grad()
def test_vision_encoder_exports_with_a_static_batch(tiny_mods) -> None:
    from torch.export import export

    tiles = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    program = export(tiny_mods.vision_encoder, (tiles,), strict=False)
    torch.testing.assert_close(program.module()(tiles), tiny_mods.vision_encoder(tiles), rtol=0, atol=1e-5)
