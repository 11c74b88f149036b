"""The demo's device backend against the loopback ADB device: the phone's answers equal the host program's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_mllm.chat import Conversation, DemoConfig, ModelSlot, ask_streaming
from mobile_mllm.errors import ConfigError
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session
from tests.mobile_mllm.device.conftest import loopback, make_loopback  # noqa: F401 (fixtures)

SAMPLE = str(Path(__file__).resolve().parents[3] / "demo" / "sample.png")
QUESTIONS = ("What colour is the star?", "What shape is red?")


def test_device_answers_equal_the_host_program_and_follow_ups_start_afresh(tiny_program: Path, loopback) -> None:  # noqa: F811
    slot = ModelSlot(str(tiny_program), DemoConfig(backend="device", serial=loopback.address, max_new_tokens=4))
    assert slot.kind == "device"
    conv = Conversation()
    first = list(ask_streaming(slot, conv, QUESTIONS[0], image=SAMPLE))[-1].turn
    follow = list(ask_streaming(slot, conv, QUESTIONS[1]))[-1].turn
    assert first.error is None and follow.error is None, (first.error, follow.error)

    def fresh(question: str) -> str:  # what the phone does: each question a new conversation about the image
        return Session.from_dir(tiny_program, generation=GenerationConfig(max_new_tokens=4)).ask(question, SAMPLE).text

    assert (first.answer, follow.answer) == (fresh(QUESTIONS[0]), fresh(QUESTIONS[1]))
    assert follow.stats["num_cached_tokens"] == 0 and follow.stats["num_tiles"] > 0 and follow.replayed_turns == 0


def test_device_backend_needs_a_program_folder() -> None:
    with pytest.raises(ConfigError, match="--backend device needs an exported program folder"):
        ModelSlot("builtin:synth-small", DemoConfig(backend="device"))
