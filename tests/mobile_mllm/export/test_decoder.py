"""The export decoder (custom KV-cache ops) is the same model as the eager decoder and the HF forward."""

from __future__ import annotations

import pytest
import torch

from mobile_mllm.errors import UnsupportedModelError
from mobile_mllm.export.decoder import build_kv_decoder


@pytest.fixture(scope="module")
def tiny(tiny_dir):  # -> MultimodalModel
    from mobile_mllm.model import load_model

    return load_model(tiny_dir, max_seq_len=64)


def test_chunked_prefill_and_decode_match_the_hf_forward(tiny) -> None:
    torch.manual_seed(0)
    decoder = build_kv_decoder(tiny.text_decoder, 64)
    hf = tiny.extra["hf_decoder"]
    ids = torch.randint(0, tiny.vocab_size, (1, 21))
    with torch.no_grad():
        reference = hf(input_ids=ids).logits[0]  # [21, V], no cache
        embeds = tiny.token_embedding(ids)
        got = [decoder(embeds[:, :9], torch.tensor([0])), decoder(embeds[:, 9:20], torch.tensor([9]))]
        got.append(decoder(embeds[:, 20:21], torch.tensor([20])))
    for logits, position in zip(got, (8, 19, 20)):
        torch.testing.assert_close(logits[0], reference[position], atol=1e-4, rtol=1e-4)


def test_matches_the_eager_static_cache_decoder(tiny) -> None:
    torch.manual_seed(1)
    decoder = build_kv_decoder(tiny.text_decoder, 64)
    embeds = torch.randn(1, 13, tiny.hidden_size) * 0.05
    with torch.no_grad():
        tiny.text_decoder.reset_cache()
        for start, end in ((0, 12), (12, 13)):
            pos = torch.tensor([start])
            torch.testing.assert_close(
                decoder(embeds[:, start:end], pos), tiny.text_decoder(embeds[:, start:end], pos), atol=1e-4, rtol=1e-4
            )


def test_shares_weights_with_the_eager_decoder(tiny) -> None:
    decoder = build_kv_decoder(tiny.text_decoder, 64)
    assert decoder.layers[0].self_attn.q_proj is tiny.text_decoder.layers[0].self_attn.q_proj
    assert decoder.lm_head is tiny.text_decoder.lm_head


def test_a_decoder_without_hf_parts_is_unsupported() -> None:
    with pytest.raises(UnsupportedModelError, match="has no layers, norm, rotary_emb, lm_head"):
        build_kv_decoder(torch.nn.Linear(2, 2), 16)


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
        build_kv_decoder(Fake(), 16)


def test_rotate_half_matrix_is_hf_rotate_half() -> None:
    from transformers.models.qwen2.modeling_qwen2 import rotate_half

    from mobile_mllm.export.decoder import rotate_half_matrix

    x = torch.randn(2, 3, 4, 64)
    torch.testing.assert_close(torch.nn.functional.linear(x, rotate_half_matrix(64)), rotate_half(x), atol=0, rtol=0)


def test_rms_norm_as_matmul_matches_hf_rmsnorm(tiny) -> None:
    decoder = build_kv_decoder(tiny.text_decoder, 64)
    hf_norm = tiny.text_decoder.layers[0].input_layernorm
    with torch.no_grad():
        hf_norm.weight.copy_(torch.linspace(0.5, 1.5, hf_norm.weight.numel()))  # not all ones: the weight must count
        x = torch.randn(1, 7, tiny.hidden_size) * 3
        torch.testing.assert_close(decoder.layers[0].input_layernorm(x), hf_norm(x), atol=1e-5, rtol=1e-5)
    assert decoder.layers[0].input_layernorm.weight is hf_norm.weight  # shared, not copied


@pytest.mark.slow
def test_lowered_decoder_has_one_delegate_per_layer_chain(tiny) -> None:
    """Norm, RoPE and the linears lower together: per layer only the KV-cache ops split delegates."""
    from torch.export import Dim

    from mobile_mllm.export.backends import get_backend
    from mobile_mllm.export.program import TargetConfig, _delegation_counts, lower_methods
    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import build_recipe, preset

    decoder = build_kv_decoder(tiny.text_decoder, 64).eval()
    recipe = build_recipe(preset("w4"), vision_method="v", decoder_method="text_decoder", embedding_method="e")
    quantize_modules({"text_decoder": decoder}, recipe)
    with torch.no_grad():
        exported = torch.export.export(
            decoder, (torch.zeros(1, 2, tiny.hidden_size), torch.tensor([0])),
            dynamic_shapes=({1: Dim("positions", min=1, max=32)}, None), strict=False,
        )
    cfg = TargetConfig(max_context=64, prefill_chunk=32)
    edge = lower_methods({"text_decoder": exported}, {"text_decoder": get_backend("cpu").partitioners("text_decoder", cfg)}, {})
    counts = _delegation_counts(edge, ["text_decoder"])["text_decoder"]
    outside = {
        str(n.target) for n in edge.exported_program("text_decoder").graph_module.graph.nodes
        if n.op == "call_function" and "executorch_call_delegate" not in str(n.target)
    }
    assert not [t for t in outside if "mean" in t or "aten.cat" in t], outside
    # before: ~12 delegate calls per layer (dq linears and fp32 ops in separate partitions, cut by mean/slice)
    assert counts["delegate_calls"] <= 2 * len(decoder.layers) + 2, counts
