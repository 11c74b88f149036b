"""Host predictions take eval's prompts as written, whatever the model's own prompt style.

Reference: the same tiny weights with the identity ``question_template`` asked the same prompt.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image

from mobile_mllm.eval.predict import HostPredictor, HostSpec, Request
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session

PROMPT = "What colour is the square?\nAnswer the question using a single word or phrase."


def test_host_prediction_does_not_style_eval_prompts_twice(tiny_dir: Path, tmp_path: Path) -> None:
    styled_dir = tmp_path / "styled"
    shutil.copytree(tiny_dir, styled_dir)
    config = json.loads((styled_dir / "config.json").read_text())
    config["question_template"] = "{question}\nAnswer the question using a single word or phrase."
    (styled_dir / "config.json").write_text(json.dumps(config))
    image = Image.new("RGB", (96, 64), "white")
    reference = HostPredictor(HostSpec(str(tiny_dir), max_new_tokens=4))(Request("0", PROMPT, image))
    styled = HostPredictor(HostSpec(str(styled_dir), max_new_tokens=4))(Request("0", PROMPT, image))
    assert styled.error is None and styled.text == reference.text
    assert styled.stats["num_prompt_tokens"] == reference.stats["num_prompt_tokens"]  # the instruction once, not twice
    # the styled model does style a chat question (so the equality above is not a model that ignores its template)
    session = Session.from_dir(styled_dir, generation=GenerationConfig(max_new_tokens=4))
    chat = session.ask(PROMPT, image).stats.num_prompt_tokens
    assert chat > session.ask(PROMPT, image, styled=False).stats.num_prompt_tokens == reference.stats["num_prompt_tokens"]
