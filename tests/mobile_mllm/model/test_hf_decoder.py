"""HF Llama/Qwen2 decoders hand over their parts; anything else is refused, naming what is missing."""

from __future__ import annotations

import pytest
import torch

from mobile_mllm.errors import UnsupportedModelError
from mobile_mllm.model.hf_decoder import hf_decoder_parts


@pytest.fixture(scope="module")
def tiny(tiny_dir):  # -> MultimodalModel
    from mobile_mllm.model import load_model

    return load_model(tiny_dir, max_context_len=64)


def test_parts_are_the_decoders_own_modules(tiny) -> None:
    parts = hf_decoder_parts(tiny.text_decoder, tiny.token_embedding)
    hf_layer = tiny.text_decoder.layers[1]
    assert parts.layers[1].q_proj is hf_layer.self_attn.q_proj and parts.layers[1].mlp is hf_layer.mlp
    assert parts.layers[0].attention_norm is tiny.text_decoder.layers[0].input_layernorm
    assert parts.lm_head is tiny.text_decoder.lm_head and parts.embedding is tiny.token_embedding
    assert len(parts.layers) == len(tiny.text_decoder.layers)


def test_rope_tables_are_hf_rotary_embedding(tiny) -> None:
    """Independent reference: cos/sin from HF's rotary module at explicit positions."""
    parts = hf_decoder_parts(tiny.text_decoder, tiny.token_embedding)
    cos, sin = parts.rope_tables(10)
    ref_cos, ref_sin = tiny.text_decoder.rotary_emb(torch.zeros(1), position_ids=torch.arange(10).unsqueeze(0))
    assert cos.shape == (10, parts.head_dim)
    torch.testing.assert_close(cos, ref_cos[0].float())
    torch.testing.assert_close(sin, ref_sin[0].float())
    assert torch.all(cos[0] == 1) and torch.all(sin[0] == 0)  # position 0 rotates nothing


def test_a_decoder_without_hf_parts_is_unsupported() -> None:
    with pytest.raises(UnsupportedModelError, match="has no layers, norm, rotary_emb, lm_head"):
        hf_decoder_parts(torch.nn.Linear(2, 2), torch.nn.Embedding(2, 2))


def test_unknown_layer_class_is_named(tiny) -> None:
    class FancyLayer(torch.nn.Module):
        pass

    class Fake(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([FancyLayer()])
            self.norm = tiny.text_decoder.norm
            self.rotary_emb = tiny.text_decoder.rotary_emb
            self.lm_head = tiny.text_decoder.lm_head

    with pytest.raises(UnsupportedModelError, match="layer 0 is a FancyLayer.*LlamaDecoderLayer, Qwen2DecoderLayer"):
        hf_decoder_parts(Fake(), tiny.token_embedding)
