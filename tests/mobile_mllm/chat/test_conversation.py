"""The demo's chat logic against an independent reference: a plain Session asked the same questions."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_mllm.chat import Conversation, DemoConfig, GridSettings, ModelSlot, ask_streaming, grid_preview
from mobile_mllm.errors import ConfigError
from mobile_mllm.runtime.methods import RuntimeConfig
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session
from mobile_mllm.vision.config import GridPolicy

SAMPLE = str(Path(__file__).resolve().parents[3] / "demo" / "sample.png")
MODEL = "builtin:synth-small"
CONFIG = DemoConfig(max_new_tokens=12, max_context_len=1024)
QUESTIONS = ("What colour is the star?", "What shape is red?")


@pytest.fixture(scope="module")
def slot() -> ModelSlot:
    return ModelSlot(MODEL, CONFIG)


@pytest.fixture(scope="module")
def reference() -> list:
    """The answers an uninterrupted Session gives: first turn with the image, then a follow-up."""
    session = Session.from_dir(MODEL, runtime=RuntimeConfig(max_context_len=1024),
                               generation=GenerationConfig(max_new_tokens=12))
    return [session.ask(QUESTIONS[0], SAMPLE), session.ask(QUESTIONS[1])]


def _final(updates) -> tuple[list[str], object]:
    texts = [u.text for u in updates]
    return texts, texts and updates[-1].turn


def test_streamed_answer_and_follow_up_equal_a_plain_session(slot: ModelSlot, reference: list) -> None:
    conv = Conversation()
    first = list(ask_streaming(slot, conv, QUESTIONS[0], image=SAMPLE))
    assert first[-1].done and first[-1].turn.answer == reference[0].text
    assert all(u.text == reference[0].text[: len(u.text)] for u in first)  # every partial is a prefix
    follow = list(ask_streaming(slot, conv, QUESTIONS[1]))
    turn = follow[-1].turn
    assert turn.answer == reference[1].text
    assert turn.stats["num_cached_tokens"] == reference[1].stats.num_cached_tokens > 0  # image not encoded again
    assert turn.stats["num_tiles"] == 0 and turn.replayed_turns == 0
    assert [t.question for t in conv.turns] == list(QUESTIONS)


def test_follow_up_after_another_user_is_replayed_to_the_same_answer(slot: ModelSlot, reference: list) -> None:
    mine, other = Conversation(), Conversation()
    list(ask_streaming(slot, mine, QUESTIONS[0], image=SAMPLE))
    list(ask_streaming(slot, other, "What colour is the hexagon?", image=SAMPLE))  # the cache now holds other
    turn = list(ask_streaming(slot, mine, QUESTIONS[1]))[-1].turn
    assert turn.replayed_turns == 1
    assert turn.answer == reference[1].text


def test_stop_abandons_the_answer_and_next_follow_up_is_exact(slot: ModelSlot, reference: list) -> None:
    conv, stop = Conversation(), threading.Event()
    stop.set()  # pressed before the first token: deterministic, however fast the model is
    turn = list(ask_streaming(slot, conv, QUESTIONS[0], image=SAMPLE, stop=stop))[-1].turn
    assert turn.stopped and turn.stats is None and turn.answer == ""
    assert slot.owner is None  # a half-written cache belongs to nobody
    follow = list(ask_streaming(slot, conv, QUESTIONS[1]))[-1].turn
    assert follow.replayed_turns == 1 and follow.answer == reference[1].text


def test_new_grid_settings_start_over_and_token_budget_shrinks_the_grid(slot: ModelSlot) -> None:
    conv = Conversation()
    list(ask_streaming(slot, conv, QUESTIONS[0], image=SAMPLE))
    budget = GridSettings(token_budget=100)
    turn = list(ask_streaming(slot, conv, QUESTIONS[0], settings=budget))[-1].turn
    assert len(conv.turns) == 1  # started over about the same image
    assert turn.stats["num_image_tokens"] <= 100 and turn.stats["reduced_by_budget"]
    session = Session.from_dir(MODEL, runtime=RuntimeConfig(max_context_len=1024), generation=GenerationConfig(max_new_tokens=12))
    assert turn.answer == session.ask(QUESTIONS[0], SAMPLE, token_budget=100).text


@pytest.mark.parametrize(
    ("content", "words"),
    [(b"not an image at all", "image"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "image")],
)
def test_bad_image_is_a_message_and_history_is_unchanged(slot: ModelSlot, tmp_path: Path, content: bytes, words: str) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    conv = Conversation()
    turn = list(ask_streaming(slot, conv, QUESTIONS[0], image=str(bad)))[-1].turn
    assert turn.error and words in turn.error.lower() and conv.turns == []


def test_over_long_prompt_and_empty_prompt_are_messages(slot: ModelSlot) -> None:
    conv = Conversation()
    turn = list(ask_streaming(slot, conv, "colour " * 3000, image=SAMPLE))[-1].turn
    assert turn.error and "positions" in turn.error


def test_odd_images_get_answers(slot: ModelSlot, tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    Image.open(SAMPLE).convert("CMYK").save(cmyk)
    deep = tmp_path / "deep.png"
    Image.fromarray((np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20)).save(deep)
    strip = tmp_path / "strip.png"
    Image.new("RGB", (1, 5000), (200, 10, 10)).save(strip)
    for path in (cmyk, deep, strip):
        turn = list(ask_streaming(slot, Conversation(), QUESTIONS[0], image=str(path)))[-1].turn
        assert turn.error is None and turn.stats["num_tiles"] >= 1, (path, turn.error)


def test_grid_preview_matches_the_tiles_the_answer_used(slot: ModelSlot) -> None:
    settings = GridSettings(policy=GridPolicy.LLAVA_NEXT)
    drawn, caption = grid_preview(slot, SAMPLE, settings)
    turn = list(ask_streaming(slot, Conversation(), QUESTIONS[0], image=SAMPLE, settings=settings))[-1].turn
    cols, rows = turn.stats["grid"]
    assert caption.startswith(f"llava_next {cols}x{rows}:")
    assert f"= {turn.stats['num_image_tokens']} image tokens" in caption
    assert drawn.size == Image.open(SAMPLE).size


def test_backend_mismatch_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs an exported program folder"):
        ModelSlot(MODEL, DemoConfig(backend="pte"))
    (tmp_path / "model.pte").write_bytes(b"")
    with pytest.raises(ConfigError, match="is an exported program"):
        ModelSlot(str(tmp_path), DemoConfig(backend="eager"))
