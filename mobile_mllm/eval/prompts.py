"""The text half of VLMEvalKit's default prompts for MCQ, Y/N and VQA benchmarks.

VLMEvalKit puts the image(s) first and then one text message; these functions build that text,
character for character, so a model run here sees what it would see on the leaderboard. The
model-running code (a later step) pairs the text with the images and the model's chat template.

A model family may override them, as VLMEvalKit lets a model's ``build_prompt`` replace the
dataset's: its adapter (``model/<family>/adapter.py``) may define
``eval_prompt(sample, form, default) -> str`` (see :data:`PromptHook`), which
:func:`build_prompt` calls with the default text. Deliberately not here: dataset-specific
prompts (MMMU's interleaved images, AMBER's suffix).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mobile_mllm.eval.data import EvalSample

__all__ = [
    "FORMS",
    "MCQ_INSTRUCTION",
    "VQA_INSTRUCTION",
    "PromptHook",
    "build_prompt",
    "build_mcq_prompt",
    "build_vqa_prompt",
    "build_yn_prompt",
]

MCQ_INSTRUCTION = "Please select the correct answer from the options above. \n"
"""Closing line of an MCQ prompt (the space before the newline is VLMEvalKit's)."""

VQA_INSTRUCTION = "\nAnswer the question using a single word or phrase."
"""Appended to a VQA question."""


def build_mcq_prompt(question: str, options: Mapping[str, str], hint: str | None = None) -> str:
    """VLMEvalKit's ``ImageMCQDataset.build_prompt`` text.

    Args:
        question (str): the question.
        options (Mapping[str, str]): letter -> option text, in letter order; absent options left out.
        hint (str | None): the ``hint`` column, or None when empty. Default None.

    Returns:
        ``Hint: …\\n`` (if any), ``Question: …\\n``, then (if there are options) ``Options:\\n``,
        one ``X. text\\n`` per option and :data:`MCQ_INSTRUCTION`.

    Example:
        >>> build_mcq_prompt("Which colour?", {"A": "red", "B": "blue"})
        'Question: Which colour?\\nOptions:\\nA. red\\nB. blue\\nPlease select the correct answer from the options above. \\n'
    """
    prompt = f"Hint: {hint}\n" if hint is not None else ""
    prompt += f"Question: {question}\n"
    if options:
        prompt += "Options:\n" + "".join(f"{letter}. {text}\n" for letter, text in options.items())
        prompt += MCQ_INSTRUCTION
    return prompt


def build_vqa_prompt(question: str) -> str:
    """VLMEvalKit's ``ImageVQADataset.build_prompt`` text: the question plus :data:`VQA_INSTRUCTION`.

    Example:
        >>> build_vqa_prompt("What is written?")
        'What is written?\\nAnswer the question using a single word or phrase.'
    """
    return question + VQA_INSTRUCTION


def build_yn_prompt(question: str) -> str:
    """VLMEvalKit's Y/N prompt text: the question unchanged (MME questions already ask for yes/no).

    Example:
        >>> build_yn_prompt("Is there a cat? Please answer yes or no.")
        'Is there a cat? Please answer yes or no.'
    """
    return question


FORMS = ("mcq", "yn", "vqa")
"""Question forms a prompt is built for (what :func:`build_prompt` takes)."""

PromptHook = Callable[["EvalSample", str, str], str]
"""A family's override: ``(sample, form, default_text) -> text`` (an adapter's ``eval_prompt``)."""


def build_prompt(sample: EvalSample, form: str, hook: PromptHook | None = None) -> str:
    """The text of one benchmark question: VLMEvalKit's default for ``form``, or the family's override.

    Args:
        sample (EvalSample): the question.
        form (str): ``"mcq"``, ``"yn"`` or ``"vqa"`` (:data:`FORMS`).
        hook (PromptHook | None): the model family's ``eval_prompt``, given the default text. Default None.

    Raises:
        ValueError: an unknown form (an internal error: callers map dataset types to forms).
    """
    if form == "mcq":
        text = build_mcq_prompt(sample.question, sample.options, sample.hint)
    elif form == "yn":
        text = build_yn_prompt(sample.question)
    elif form == "vqa":
        text = build_vqa_prompt(sample.question)
    else:
        raise ValueError(f"unknown question form {form!r}; expected one of {FORMS}")
    return hook(sample, form, text) if hook is not None else text
