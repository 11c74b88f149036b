"""Checks before a model loads: questions, images, the model's preprocessing read from small files."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_mllm.errors import ConfigError, ContextOverflowError, ContractError, ImageError
from mobile_mllm.runtime.preflight import check_image, check_question, read_vision_config
from mobile_mllm.vision.processor import VisionConfig


@pytest.mark.parametrize("question", ["", " ", "\t\n", "\u3000"])
def test_blank_questions_are_refused(question: str) -> None:
    with pytest.raises(ConfigError, match=r"the question is empty .* image-only prompt is not defined"):
        check_question(question)


def test_check_image_decodes_everything_and_returns_the_upright_image(tmp_path: Path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (80, 120, 3), dtype=np.uint8)).save(buf, "JPEG")
    data = buf.getvalue()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])  # the header survives: only decoding can tell
    with pytest.raises(ImageError, match="truncated or corrupt"):
        check_image(tmp_path / "cut.jpg", VisionConfig())
    rgb = check_image(data, VisionConfig())
    assert rgb.mode == "RGB" and rgb.size == (120, 80)
    with pytest.raises(ImageError, match="image has zero size"):
        check_image(np.zeros((0, 5, 3), dtype=np.uint8), VisionConfig())


def test_a_program_directory_is_read_from_its_manifest(tmp_path: Path) -> None:
    (tmp_path / "model.pte").write_bytes(b"not read")
    with pytest.raises(ContractError, match=r"manifest\.json not found"):
        read_vision_config(tmp_path)


def test_reading_a_models_preprocessing_imports_no_torch() -> None:
    code = ("import sys; from mobile_mllm.runtime.preflight import read_vision_config; "
            "v = read_vision_config('builtin:synth-small'); print(v.tile_size, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["96", "False"]


def test_session_check_refuses_before_computing(tiny) -> None:  # noqa: ANN001
    from mobile_mllm.runtime.eager import EagerMethods
    from mobile_mllm.runtime.session import Session

    class Counting(EagerMethods):
        calls = 0

        def text_decoder(self, *args):  # noqa: ANN002, ANN202
            Counting.calls += 1
            return super().text_decoder(*args)

    session = Session(Counting(tiny), tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision, eos_ids=tiny.eos_ids)
    with pytest.raises(ContextOverflowError, match="max_context_len 512"):
        session.check("describe the red square " * 200)
    with pytest.raises(ConfigError, match="the question is empty"):
        session.ask("  ")
    session.check("What shape is on the left?")
    assert Counting.calls == 0 and session.position == 0
