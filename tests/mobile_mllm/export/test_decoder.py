"""The export decoder (custom KV-cache ops, built from the family's parts) is the same model as the eager decoder and the HF forward."""

from __future__ import annotations

import pytest
import torch

from mobile_mllm.export.decoder import build_kv_decoder
from mobile_mllm.model.registry import decoder_parts


@pytest.fixture(scope="module")
def tiny(tiny_dir):  # -> MultimodalModel
    from mobile_mllm.model import load_model

    return load_model(tiny_dir, max_context_len=64)


@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):  # -> MultimodalModel with a Qwen2 decoder (q/k/v biases, tied head, rope_theta 1e6)
    import dataclasses

    from mobile_mllm.model import load_model
    from mobile_mllm.model.reference.checkpoint import write_random_reference
    from mobile_mllm.model.reference.config import DecoderArchitecture
    from mobile_mllm.model.reference.presets import reference_tiny

    cfg = reference_tiny()
    decoder = dataclasses.replace(cfg.decoder, architecture=DecoderArchitecture.QWEN2, tie_word_embeddings=True,
                                  rope_theta=1e6)
    path = write_random_reference(dataclasses.replace(cfg, variant="custom", decoder=decoder),
                                  tmp_path_factory.mktemp("qwen2") / "model")
    return load_model(path, max_context_len=64)


@pytest.mark.parametrize("family_model", ["tiny", "tiny_qwen2"])
def test_chunked_prefill_and_decode_match_the_hf_forward(family_model: str, request: pytest.FixtureRequest) -> None:
    tiny = request.getfixturevalue(family_model)
    torch.manual_seed(0)
    decoder = build_kv_decoder(decoder_parts(tiny), 64)
    hf = tiny.extra["hf_decoder"]
    assert type(hf).__name__ == ("Qwen2ForCausalLM" if family_model == "tiny_qwen2" else "LlamaForCausalLM")
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
    decoder = build_kv_decoder(decoder_parts(tiny), 64)
    embeds = torch.randn(1, 13, tiny.hidden_size) * 0.05
    with torch.no_grad():
        tiny.text_decoder.reset_cache()
        for start, end in ((0, 12), (12, 13)):
            pos = torch.tensor([start])
            torch.testing.assert_close(
                decoder(embeds[:, start:end], pos), tiny.text_decoder(embeds[:, start:end], pos), atol=1e-4, rtol=1e-4
            )


def test_shares_weights_with_the_eager_decoder(tiny) -> None:
    decoder = build_kv_decoder(decoder_parts(tiny), 64)
    assert decoder.layers[0].self_attn.q_proj is tiny.text_decoder.layers[0].self_attn.q_proj
    assert decoder.lm_head is tiny.text_decoder.lm_head
