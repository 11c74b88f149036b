"""Chat-style training turns from a synthetic sample's ground truth: plain questions and a short description.

The benchmark forms (``eval.prompts``) ask with an answer-format instruction; a user of the chat
types "What color is the circle?" or "Describe the image." and asks follow-ups about the same
image. Everything here is derived from what the generator drew (``SyntheticSample.description``,
``kind``, ``detail``), so every answer is true of the image:

- :func:`plain_turns`: questions without the instruction, in varied wording (``colour``/``color``),
  each with its short answer.
- :func:`describe_sentence`: a short true sentence naming every object's colour and shape (one by
  one, in reading order), the text it shows, or a chart's number of bars and their colour
  (:func:`chart_bars`: what the model can see; it cannot read a chart's small labels reliably).
- :func:`described_objects`: the (colour, shape) pairs a sentence names, for scoring descriptions.
- :func:`extreme_objects`: which object is clearly on the left (right, top, bottom), for "What
  shape is on the left?".

Deliberately not here: tokenisation and layout (``data.build_dialogue``), scoring (``evaluate``).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Sequence

from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.synthetic import COLOURS, SHAPES, Kind, SyntheticSample

__all__ = [
    "DESCRIBE_PROMPTS",
    "OBJECT_KINDS",
    "chart_bars",
    "described_objects",
    "describe_sentence",
    "describe_turn",
    "extreme_objects",
    "is_side_question",
    "plain_question",
    "plain_turns",
    "sample_objects",
    "side_turn",
]

DESCRIBE_PROMPTS: tuple[str, ...] = ("Describe the image.", "Describe this image.", "What is in the image?",
                                     "What do you see in the image?")
"""How users ask for a description (the first is the benchmark's)."""

OBJECT_KINDS = frozenset({Kind.COLOUR, Kind.SHAPE, Kind.COUNT, Kind.POSITION, Kind.EXISTS})
"""Kinds whose image is coloured shapes (``description`` lists ``colour shape`` items)."""

_INSTRUCTIONS = (" Please answer yes or no.", " Answer yes or no.", " Answer left, right, above or below.")
_OBJECT_RE = re.compile(rf"\b({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})s?\b")


def sample_objects(sample: SyntheticSample) -> list[tuple[str, str]]:
    """The (colour, shape) of every drawn object, in the description's order (reading order, or
    along the asked axis for a position question); empty for text and chart images."""
    if sample.kind not in OBJECT_KINDS:
        return []
    return [tuple(item.split(" ", 1)) for item in sample.description.split(", ")]  # type: ignore[misc]


def described_objects(text: str) -> set[tuple[str, str]]:
    """The (colour, shape) pairs a sentence names ("two red circles" names ("red", "circle")).

    Example:
        >>> sorted(described_objects("The image shows two red circles and a blue star."))
        [('blue', 'star'), ('red', 'circle')]
    """
    return {(m.group(1), m.group(2)) for m in _OBJECT_RE.finditer(text.lower())}


_SIDES = {"on the left": (0, -1), "on the right": (0, 1), "at the top": (1, -1), "at the bottom": (1, 1)}
"""Where a plain question points ("What shape is on the left?"): (axis of the box, direction)."""


def extreme_objects(sample: SyntheticSample) -> dict[str, int]:
    """Sides of the image with one object clearly there: "on the left" -> index into :func:`sample_objects`.

    An object is clearly on the left when its whole extent lies left of every other object's (so
    "What shape is on the left?" has one answer anyone would give); likewise right, top, bottom.
    Images of one object, text and charts have none.

    Example:
        >>> from mobile_mllm.eval.synthetic import Form
        >>> s = SyntheticSample(0, None, "Q", "A", (), Kind.EXISTS, Form.VQA, "x", "black diamond, red hexagon, purple star",
        ...                     ((35, 130, 17), (266, 45, 17), (260, 155, 17)))
        >>> extreme_objects(s)
        {'on the left': 0, 'at the top': 1}
    """
    boxes = sample.boxes if sample.kind in OBJECT_KINDS else ()
    found: dict[str, int] = {}
    for side, (axis, direction) in _SIDES.items():
        for i, box in enumerate(boxes):
            near = box[axis] - direction * box[2]  # the extent's edge that faces the others
            others = [b[axis] + direction * b[2] for j, b in enumerate(boxes) if j != i]  # theirs facing it
            if others and all(direction * (near - edge) > 0 for edge in others):
                found[side] = i
    return found


def side_turn(side: str, shape: str, rng: random.Random) -> tuple[str, str]:
    """("What shape is on the left?", ``shape``) for a ``side`` of :func:`extreme_objects` and the shape there."""
    return rng.choice((f"What shape is {side}?", f"Which shape is {side}?")), shape


def is_side_question(question: str) -> bool:
    """Whether ``question`` asks what is on a side (:func:`side_turn`)."""
    return any(question.endswith(f" {side}?") for side in _SIDES)


def chart_bars(sample: SyntheticSample) -> tuple[int, str]:
    """(number of bars, their colour) of a chart sample: what a description can say without reading its labels.

    The colour is read off the image where the generator drew the first bar (all bars of a chart
    share one colour of ``COLOURS``), so it is true of the pixels, not of a separate record.
    """
    if sample.kind is not Kind.CHART or not sample.boxes:
        raise EvalDataError(f"sample {sample.id} is a {sample.kind.value} sample without bars; chart_bars needs a chart")
    x, y, _ = sample.boxes[0]
    image = sample.image if sample.image.mode == "RGB" else sample.image.convert("RGB")  # the generator's are RGB
    pixel = image.getpixel((round(x), round(y)))
    names = [name for name, rgb in COLOURS.items() if rgb == pixel]
    if not names:
        raise EvalDataError(f"sample {sample.id}: pixel {pixel} at the first bar's centre is no colour of COLOURS")
    return len(sample.boxes), names[0]


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def describe_sentence(sample: SyntheticSample) -> str:
    """A short true sentence about the sample's image (the answer to "Describe the image.").

    Objects are named one by one in reading order (the order of ``SyntheticSample.description``),
    each exactly once: a model that writes such a sentence only has to step along the image, while
    a grouped "two red circles, ..." asks it to count each group before naming it (models trained
    on the grouped form left objects out or named one twice: ``bench/train_reference.md``).

    Example:
        >>> from mobile_mllm.eval.synthetic import Form
        >>> s = SyntheticSample(0, None, "Q", "A", (), Kind.COUNT, Form.VQA, "few", "red circle, orange star, red circle")
        >>> describe_sentence(s)
        'The image shows a red circle, an orange star and a red circle.'
    """
    if sample.kind is Kind.TEXT:
        what = "number" if sample.description.isdigit() else "word"
        return f'The image shows the {what} "{sample.description}".'
    if sample.kind is Kind.CHART:
        bars, colour = chart_bars(sample)
        return f"The image shows a bar chart with {bars} {colour} bars."  # a digit, as "How many bars?" is answered
    return f"The image shows {_join([f'{_article(c)} {c} {s}' for c, s in sample_objects(sample)])}."


def describe_turn(sample: SyntheticSample, rng: random.Random) -> tuple[str, str]:
    """A request for a description in one of the users' wordings (:data:`DESCRIBE_PROMPTS`) and its answer."""
    return rng.choice(DESCRIBE_PROMPTS), describe_sentence(sample)


def plain_question(sample: SyntheticSample) -> str:
    """The sample's own question as a user would type it: no answer-format instruction."""
    question = sample.question
    for suffix in _INSTRUCTIONS:
        question = question.removesuffix(suffix)
    return question


def _spell(text: str, rng: random.Random) -> str:
    return text.replace("colour", "color") if rng.random() < 0.5 else text


def plain_turns(sample: SyntheticSample, rng: random.Random) -> list[tuple[str, str]]:
    """Plainly worded questions about the sample's image with their (true) short answers.

    Returns:
        list[tuple[str, str]]: (question, answer) pairs; the sample's own question in plain
        words first (unless it is multiple choice), then questions drawn from the ground truth.
    """
    turns: list[tuple[str, str]] = []
    if not sample.options:
        turns.append((_spell(plain_question(sample), rng), sample.answer.capitalize()
                      if sample.answer in ("yes", "no") else sample.answer))
    if sample.kind is Kind.TEXT:
        what = "number" if sample.description.isdigit() else "word"
        asked = rng.choice(("What is written in the image?", "What does the text say?", f"What {what} is shown?",
                            f"Which {what} is in the image?"))
        return [*turns, (asked, sample.description)]
    if sample.kind is Kind.CHART:
        bars, colour = chart_bars(sample)
        turns += [(rng.choice(("How many bars are there?", "How many bars does the chart have?")), str(bars)),
                  (_spell(rng.choice(("What colour are the bars?", "Which colour are the bars?")), rng), colour)]
        rng.shuffle(turns)
        return turns
    objects = sample_objects(sample)
    if not objects:
        return turns
    shapes = Counter(s for _, s in objects)
    colours = Counter(c for c, _ in objects)
    if len(objects) == 1:
        colour, shape = objects[0]
        turns += [(rng.choice(("What shape is in the image?", "What shape is this?", "What shape do you see?")), shape),
                  (_spell(rng.choice(("What colour is the shape?", "What colour is it?")), rng), colour)]
    unique_shapes = [s for s, n in shapes.items() if n == 1 or len({c for c, t in objects if t == s}) == 1]
    if unique_shapes:
        shape = rng.choice(unique_shapes)
        colour = next(c for c, s in objects if s == shape)
        turns.append((_spell(f"What colour is the {shape}?", rng), colour))
    unique_colours = [c for c, n in colours.items() if len({s for t, s in objects if t == c}) == 1]
    if unique_colours:
        colour = rng.choice(unique_colours)
        shape = next(s for c, s in objects if c == colour)
        turns.append((rng.choice((f"What shape is the {colour} object?", f"What shape is {colour}?",
                                  f"Which shape is {colour}?")), shape))
    turns.append((rng.choice(("How many shapes are there?", "How many objects are in the image?",
                              "How many shapes are in the image?")), str(len(objects))))
    shape = rng.choice(SHAPES)
    turns.append((rng.choice((f"Is there a {shape} in the image?", f"Is there a {shape}?")),
                  "Yes" if shape in shapes else "No"))
    sides = extreme_objects(sample)
    if sides:
        side = rng.choice(sorted(sides))
        turns.append(side_turn(side, objects[sides[side]][1], rng))
    rng.shuffle(turns)
    return turns
