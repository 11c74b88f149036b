"""The bundled byte-level BPE tokenizer: special tokens are single ids, text round-trips, the asset is reproducible."""

from __future__ import annotations

import pytest

from mobile_mllm.model.reference.prompt import REFERENCE_PROMPT, SPECIAL_TOKENS
from mobile_mllm.model.reference.tokenizer import bundled_tokenizer, train_tokenizer


@pytest.fixture(scope="module")
def tok():
    return bundled_tokenizer()


def test_special_tokens_have_the_first_ids(tok) -> None:
    assert [tok.token_to_id(t) for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))


@pytest.mark.parametrize("token", SPECIAL_TOKENS)
def test_special_token_inside_text_encodes_to_its_single_id(tok, token: str) -> None:
    ids = tok.encode(f"the red{token}square").ids
    assert ids.count(tok.token_to_id(token)) == 1
    assert tok.decode(ids, skip_special_tokens=False) == f"the red{token}square"


def test_chat_turn_encodes_template_tokens_as_single_ids(tok) -> None:
    text = REFERENCE_PROMPT.user_template.format(content=REFERENCE_PROMPT.image_placeholder + "What colour is it?")
    pieces = tok.encode(text).tokens
    assert pieces[:3] == ["<|user|>", "Ċ", "<image>"]  # Ċ is byte-level's newline
    assert pieces[-4:] == ["<|end|>", "Ċ", "<|assistant|>", "Ċ"]


@pytest.mark.parametrize(
    "text",
    [
        "Is the blue circle above the green triangle? Yes.",
        "Answer: C. 42 tiles, 3x2 grid",
        "Unicode too: naïve café — 東京 🙂\n\ttabs and  double  spaces",
        "",
    ],
)
def test_text_round_trips(tok, text: str) -> None:
    assert tok.decode(tok.encode(text).ids, skip_special_tokens=False) == text


def test_common_vqa_words_are_single_tokens(tok) -> None:
    # the corpus teaches the merges, so these words cost one token each (with their leading space)
    for word in ["red", "blue", "green", "circle", "square", "triangle", "left", "right", "top", "yes", "no", "three"]:
        assert len(tok.encode(" " + word).ids) == 1, word


def test_vocabulary_fits_the_tiny_preset(tok) -> None:
    from mobile_mllm.model.reference.presets import reference_tiny

    assert 1800 < tok.get_vocab_size() <= reference_tiny().decoder.vocab_size


def test_bundled_tokenizer_is_reproducible_from_the_corpus(tok) -> None:
    assert train_tokenizer().get_vocab() == tok.get_vocab()
