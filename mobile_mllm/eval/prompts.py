"""The text half of VLMEvalKit's default prompts for MCQ, Y/N and VQA benchmarks.

VLMEvalKit puts the image(s) first and then one text message; these functions build that text,
character for character, so a model run here sees what it would see on the leaderboard. The
model-running code (a later step) pairs the text with the images and the model's chat template.

Deliberately not here: per-model custom prompts (VLMEvalKit lets some models override these) and
dataset-specific prompts (MMMU's interleaved images, AMBER's suffix).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "MCQ_INSTRUCTION",
    "VQA_INSTRUCTION",
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
