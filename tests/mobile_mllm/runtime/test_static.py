"""The static-shape runner: mask and RoPE rows by hand, tile batching 4+4+1, and the same logits as the eager model.

The decoder graphs here are the eager static shards (``export/static_decoder.py``) before any
export, so these tests check the runner's logic alone (padding, masking, KV writes) against the
independent eager decoder, in seconds; the exported and quantized graphs are tested in
``tests/mobile_mllm/export/test_static_program.py``.
"""

from __future__ import annotations

import pytest
import torch

from mobile_mllm.errors import ContextOverflowError, ContractError
from mobile_mllm.export.static_decoder import MASK_VALUE, build_shards
from mobile_mllm.model.registry import decoder_parts
from mobile_mllm.runtime import session as loop
from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.static import StaticLayout, StaticMethods, attention_mask, rope_rows

CONTEXT, PROMPT_LEN = 96, 16


def test_mask_lets_each_row_see_the_cache_prefix_and_itself_causally() -> None:
    m = attention_mask(start=2, length=3, max_context_len=4, mask_value=-1.0)[0, 0]
    expected = torch.tensor([
        # cache: positions 0,1 written, 2,3 not | the call's own 3 columns, causal
        [0, 0, -1, -1, 0, -1, -1],
        [0, 0, -1, -1, 0, 0, -1],
        [0, 0, -1, -1, 0, 0, 0],
    ], dtype=torch.float32)
    assert torch.equal(m, expected)


def test_rope_rows_past_the_table_are_zero_padding() -> None:
    table = torch.arange(10.0).reshape(5, 2)
    assert rope_rows(table, 3, 4).tolist() == [[6.0, 7.0], [8.0, 9.0], [0.0, 0.0], [0.0, 0.0]]


def _static(tiny, layers_per_shard: int, vision=None) -> StaticMethods:  # noqa: ANN001
    parts = decoder_parts(tiny)
    shards = build_shards(parts, layers_per_shard)
    cos, sin = parts.rope_tables(CONTEXT)
    layout = StaticLayout(CONTEXT, PROMPT_LEN, 4, tuple((s.first, s.last) for s in shards), parts.num_kv_heads,
                          parts.head_dim, MASK_VALUE)
    with torch.no_grad():
        table = parts.embedding(torch.arange(tiny.vocab_size).unsqueeze(0))[0]
    vision = vision or {4: tiny.vision_encoder, 1: tiny.vision_encoder}
    return StaticMethods(layout, vision=vision, prompt=shards, generate=shards, embedding=table, rope_cos=cos, rope_sin=sin)


@pytest.mark.parametrize("layers_per_shard", [0, 1])
def test_padded_chunks_and_decode_give_the_eager_logits(tiny, layers_per_shard: int) -> None:  # noqa: ANN001
    static = _static(tiny, layers_per_shard)
    eager = EagerMethods(tiny, prefill_chunk=PROMPT_LEN)
    embeds = torch.randn(1, 37, tiny.hidden_size, generator=torch.Generator().manual_seed(0))  # 16 + 16 + 5 (padded)
    got, want = loop.prefill(static, embeds, 3, PROMPT_LEN), loop.prefill(eager, embeds, 3, PROMPT_LEN)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    pos = 40
    for _ in range(4):
        token = int(want.argmax())
        got, want = loop.decode_one_token(static, token, pos), loop.decode_one_token(eager, token, pos)
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
        pos += 1


def test_nine_tiles_run_as_four_four_one(tiny) -> None:  # noqa: ANN001
    calls: list[int] = []

    def graph(tiles: torch.Tensor) -> torch.Tensor:
        calls.append(tiles.shape[0])
        return tiny.vision_encoder(tiles)

    static = _static(tiny, 0, vision={4: graph, 1: graph})
    size = tiny.vision.tile_size
    tiles = torch.randn(9, 3, size, size, generator=torch.Generator().manual_seed(1))
    out, _ = loop.encode_tiles(static, tiles, 4)
    assert calls == [4, 4, 1]
    with torch.no_grad():
        torch.testing.assert_close(out, tiny.vision_encoder(tiles), rtol=1e-4, atol=1e-5)


def test_limits_are_checked_before_any_graph_runs(tiny) -> None:  # noqa: ANN001
    static = _static(tiny, 0)
    with pytest.raises(ContractError, match="1 to 16 positions"):
        static.text_decoder(torch.zeros(1, 17, tiny.hidden_size), torch.tensor([0]))
    with pytest.raises(ContextOverflowError, match="do not fit the KV cache of 96"):
        static.text_decoder(torch.zeros(1, 8, tiny.hidden_size), torch.tensor([90]))
