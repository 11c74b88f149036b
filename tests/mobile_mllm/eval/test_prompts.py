"""Prompt text must equal VLMEvalKit's default prompts character for character."""

from __future__ import annotations

from mobile_mllm.eval.prompts import build_mcq_prompt, build_vqa_prompt, build_yn_prompt


def test_mcq_prompt_with_hint() -> None:
    got = build_mcq_prompt("What colour is the ball?", {"A": "red", "B": "blue", "C": "green"}, hint="Look closely.")
    assert got == (
        "Hint: Look closely.\n"
        "Question: What colour is the ball?\n"
        "Options:\n"
        "A. red\n"
        "B. blue\n"
        "C. green\n"
        "Please select the correct answer from the options above. \n"
    )


def test_mcq_prompt_without_hint() -> None:
    assert build_mcq_prompt("Q?", {"A": "1", "B": "2"}) == (
        "Question: Q?\nOptions:\nA. 1\nB. 2\nPlease select the correct answer from the options above. \n"
    )


def test_mcq_prompt_without_options_is_just_the_question() -> None:
    assert build_mcq_prompt("Q?", {}) == "Question: Q?\n"


def test_vqa_prompt() -> None:
    assert build_vqa_prompt("What is written on the sign?") == (
        "What is written on the sign?\nAnswer the question using a single word or phrase."
    )


def test_yn_prompt_is_the_question() -> None:
    q = "Is there a red car in the image? Please answer yes or no."
    assert build_yn_prompt(q) == q
