"""Turn a free-form model answer into an option letter or Yes/No, as VLMEvalKit's exact matching does.

VLMEvalKit (the harness behind the OpenCompass leaderboard) scores a multiple-choice answer by
first trying cheap rules and, only if they fail, an LLM judge. Its rules have quirks that change
scores, so they are reproduced here exactly:

* option letters are case-sensitive (``c`` is not ``C``) and must be the only option letter among
  the whitespace tokens, first seen among the last four tokens; a leading capital article
  (``A bird.``) therefore counts as option A;
* the ``answer is x`` pattern is case-insensitive and has no word boundary after the letter
  (``The answer is dog`` picks D);
* option *text* matching needs exactly one option text (lowercased) inside the lowercased answer,
  and is skipped when the answer is longer than twice the total option text;
* a few refusal phrases, or a lone ``Z`` token, map to ``Z`` (never a correct answer).

Deliberately not here: VLMEvalKit's ``VERBOSE`` environment switch (which rejects a lone ``A`` in
long answers) and the LLM judge (see :mod:`mobile_mllm.eval.judge`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

logger = logging.getLogger(__name__)

__all__ = [
    "REFUSAL_PHRASES",
    "extract_option",
    "extract_yes_no",
    "infer_option_letter",
    "infer_option_text",
    "process_punctuation",
]

REFUSAL_PHRASES: tuple[str, ...] = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
"""Substrings that make VLMEvalKit score an answer as the refusal option ``Z``."""

_API_FAILURE = "Failed to obtain answer via API"
_LETTER_SEPARATORS = ".()[],:;!*#{}"
_ANSWER_IS = re.compile(r"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**")


def _tokens(prediction: str) -> list[str]:
    for ch in _LETTER_SEPARATORS:
        prediction = prediction.replace(ch, " ")
    return prediction.split()


def infer_option_letter(prediction: str, choices: Mapping[str, object]) -> str | None:
    """The option letter a prediction names, by VLMEvalKit's letter rules, or None.

    Args:
        prediction (str): the model's answer.
        choices (Mapping[str, object]): option letter -> option text (only the letters matter).

    Returns:
        A letter from ``choices``, ``"Z"`` for a refusal, or None when no rule applies.

    Example:
        >>> infer_option_letter("The answer is (B).", {"A": "cat", "B": "dog"})
        'B'
        >>> infer_option_letter("c", {"A": "x", "B": "y", "C": "z"}) is None
        True
    """
    if _API_FAILURE in prediction:
        return None
    if any(phrase in prediction for phrase in REFUSAL_PHRASES):
        return "Z"
    tokens = _tokens(prediction)
    present = [letter for letter in choices if letter in tokens]
    if len(present) == 1:
        letter = present[0]
        if tokens.index(letter) > len(tokens) - 5:
            return letter
    elif not present and "Z" in tokens:
        return "Z"
    match = _ANSWER_IS.search(prediction)
    if match and match.group(1).upper() in choices:
        return match.group(1).upper()
    return None


def infer_option_text(prediction: str, choices: Mapping[str, object]) -> str | None:
    """The option whose text alone occurs in the prediction (case-insensitive), or None.

    VLMEvalKit skips this rule when the prediction is longer than twice the summed length of the
    option texts, so a long explanation that happens to quote one option does not count.

    Example:
        >>> infer_option_text("a Dog", {"A": "cat", "B": "dog"})
        'B'
        >>> infer_option_text("I think it is a dog", {"A": "cat", "B": "dog"}) is None  # 19 > 2 * 6 characters
        True
    """
    lowered = prediction.lower()
    if len(lowered) > 2 * sum(len(str(v)) for v in choices.values()):
        return None
    hits = [letter for letter, text in choices.items() if str(text).lower() in lowered]
    return hits[0] if len(hits) == 1 else None


def extract_option(prediction: object, choices: Mapping[str, object]) -> str | None:
    """VLMEvalKit's ``can_infer``: the letter rules, then the option-text rule.

    Args:
        prediction (object): the model's answer (``str()`` is applied, so a missing value is ``"nan"``).
        choices (Mapping[str, object]): option letter -> option text, in letter order.

    Returns:
        The chosen letter, ``"Z"`` for a refusal, or None (unanswered: scored wrong).

    Example:
        >>> extract_option("A bird.", {"A": "bird", "B": "cat"})
        'A'
    """
    text = str(prediction)
    return infer_option_letter(text, choices) or infer_option_text(text, choices)


_PUNCT = (";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`", ",", "?", "!")
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_IN_NUMBER = re.compile(r"(?<!\d)\.(?!\d)")
_PERIOD_STRIP_COUNT = int(re.UNICODE)  # VLMEvalKit passes re.UNICODE as sub()'s count: at most 32 periods go


def process_punctuation(text: str) -> str:
    """The VQA punctuation normalisation shared by VLMEvalKit's Y/N extraction and VQA scores.

    Each mark is deleted when it touches a space anywhere in the text, or when the text has a
    digit-comma-digit anywhere; otherwise it becomes a space. Periods not inside a number are
    deleted (at most 32 of them, a VLMEvalKit quirk).

    Example:
        >>> process_punctuation("yes, it is.")
        'yes it is'
        >>> process_punctuation("1,000 red-cars")
        '1000 redcars'
    """
    out = text
    has_digit_comma = _COMMA_BETWEEN_DIGITS.search(text) is not None
    for p in _PUNCT:
        if p + " " in text or " " + p in text or has_digit_comma:
            out = out.replace(p, "")
        else:
            out = out.replace(p, " ")
    return _PERIOD_NOT_IN_NUMBER.sub("", out, count=_PERIOD_STRIP_COUNT)


def extract_yes_no(prediction: object) -> str:
    """VLMEvalKit's ``YOrN_Extraction``: ``"Yes"``, ``"No"`` or ``"Unknown"``.

    The answer is lowercased, punctuation-normalised and split into words; ``yes`` without
    ``no`` is Yes, ``no`` without ``yes`` is No, anything else is Unknown (scored wrong).

    Example:
        >>> extract_yes_no("Yes, there is a dog.")
        'Yes'
        >>> extract_yes_no("Not sure")
        'Unknown'
    """
    words = process_punctuation(str(prediction).lower()).split()
    has_yes, has_no = "yes" in words, "no" in words
    if has_yes and not has_no:
        return "Yes"
    if has_no and not has_yes:
        return "No"
    return "Unknown"
