"""Synthetic visual questions from a seed: shapes, colours, counts, positions, text and bar charts.

A sample is an image plus one question in one of three forms (MCQ, yes/no, short answer) whose
answer is known exactly because the image was drawn from it. Kinds:

* ``colour`` / ``shape``: name the colour of the only triangle, the shape of the only red object;
* ``count``: how many red circles (1–6, among distractors of another colour or shape);
* ``position``: is the red circle left of / right of / above / below the blue square;
* ``exists``: is there a green star (half the time there is not);
* ``text``: a word or number, large, or small (9–13 px) on a large canvas, unreadable once the
  image is shrunk to a thumbnail: this is what dynamic-resolution tiling is for;
* ``chart``: a bar chart; which bar is tallest, or the value printed above a bar.

Images vary in size (``min_side_px``–``max_side_px`` on the long side) and aspect ratio (1:1 to 3:1,
portrait or landscape). Each sample depends only on (seed, sample number), so samples can be drawn
lazily or in parallel, and the same seed always gives byte-identical TSVs with the pinned Pillow.
Text uses Pillow's bundled scalable font (``ImageFont.load_default(size)``, needs FreeType).

:func:`generate_samples` is the sample-level API (the reference-model training reads it directly);
:func:`write_tsv` turns samples into VLMEvalKit rows. Deliberately not here: natural images, any
download, any model.
"""

from __future__ import annotations

import base64
import csv
import enum
import io
import logging
import math
import os
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.errors import ConfigError

if TYPE_CHECKING:
    from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)

__all__ = [
    "COLOURS",
    "SHAPES",
    "Form",
    "Kind",
    "SyntheticSample",
    "SyntheticSpec",
    "circular_offset",
    "encode_png",
    "generate_sample",
    "generate_sample_forms",
    "generate_samples",
    "reask_forms",
    "tsv_rows",
    "write_tsv",
]


class Kind(str, enum.Enum):
    """What a question asks about."""

    COLOUR = "colour"
    SHAPE = "shape"
    COUNT = "count"
    POSITION = "position"
    EXISTS = "exists"
    TEXT = "text"
    CHART = "chart"


class Form(str, enum.Enum):
    """How the question is asked: options A–D, yes/no, or a short free answer."""

    MCQ = "mcq"
    YN = "yn"
    VQA = "vqa"


COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 38, 38),
    "green": (34, 150, 60),
    "blue": (36, 84, 220),
    "yellow": (240, 200, 20),
    "orange": (245, 125, 15),
    "purple": (135, 55, 170),
    "black": (25, 25, 25),
    "pink": (240, 110, 185),
}
"""Colour names and the RGB they are drawn in (distinct at a glance)."""

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "diamond", "hexagon")
"""Shape names."""

_WORDS = (
    "apple", "river", "cloud", "tiger", "lemon", "piano", "rocket", "garden", "silver", "window",
    "forest", "candle", "planet", "bridge", "yellow", "dragon", "button", "castle", "pencil", "mirror",
    "orange", "spring", "winter", "market", "ocean", "violet", "jacket", "basket", "camera", "ticket",
)
_BAR_LABELS = ("apple", "pear", "plum", "kiwi", "lime", "fig", "mango", "grape")
_BACKGROUNDS = ((255, 255, 255), (246, 245, 240), (236, 241, 246), (242, 236, 226))
_ASPECTS = (1.0, 4 / 3, 3 / 2, 16 / 9, 2.0, 3.0)
_RELATIONS = {"left": "to the left of", "right": "to the right of", "above": "above", "below": "below"}
_OPPOSITE = {"left": "right", "right": "left", "above": "below", "below": "above"}
_SMALL_TEXT_CANVAS = 1000
_LETTERS = "ABCD"


@dataclass(frozen=True)
class SyntheticSpec:
    """What the generator draws (the seed and count are given per call)."""

    kinds: tuple[Kind, ...] = tuple(Kind)
    """Question kinds to draw from (uniformly)."""
    forms: tuple[Form, ...] = tuple(Form)
    """Question forms to draw from (uniformly); a TSV holds one form."""
    min_side_px: int = 256
    """Smallest long side of an image, in pixels."""
    max_side_px: int = 1536
    """Largest long side of an image, in pixels."""
    small_text_fraction: float = 0.4
    """Share of text questions drawn small (9-13 px) on a canvas of 1000+ px."""
    small_text_px: tuple[int, int] = (9, 13)
    """Font size range (pixels, inclusive) of small text; raise it for models with small tiles."""
    number_fraction: float = 0.35
    """Share of text questions that show a number instead of a word (training may raise it to drill digits).

    Keep the default for benchmarks: their streams (byte-identical TSVs) were drawn with it."""

    def __post_init__(self) -> None:
        if not self.kinds or not self.forms:
            raise ConfigError(f"synthetic: kinds and forms must be non-empty, got kinds={self.kinds!r} forms={self.forms!r}")
        if self.min_side_px < 160:
            raise ConfigError(f"synthetic.min_side_px must be >= 160 (room for the shapes), got {self.min_side_px}")
        if self.max_side_px < self.min_side_px:
            raise ConfigError(f"synthetic.max_side_px ({self.max_side_px}) must be >= synthetic.min_side_px ({self.min_side_px})")
        if not 0.0 <= self.small_text_fraction <= 1.0:
            raise ConfigError(f"synthetic.small_text_fraction must be in [0, 1], got {self.small_text_fraction}")
        if not 0.0 <= self.number_fraction <= 1.0:
            raise ConfigError(f"synthetic.number_fraction must be in [0, 1], got {self.number_fraction}")
        if not 6 <= self.small_text_px[0] <= self.small_text_px[1]:
            raise ConfigError(f"synthetic.small_text_px must be (low, high) with 6 <= low <= high, got {self.small_text_px}")


Box = tuple[float, float, float]
"""An object's place on the image: (centre x, centre y, radius) in pixels."""


@dataclass(frozen=True)
class SyntheticSample:
    """One drawn image and one question about it."""

    id: int
    """Sample number (the TSV index)."""
    image: Image.Image = field(repr=False)
    question: str
    answer: str
    """The answer text: the correct option's text, ``Yes``/``No``, or the short answer."""
    options: tuple[str, ...]
    """Option texts in letter order (MCQ only; 3 or 4), else empty."""
    kind: Kind
    form: Form
    detail: str
    """Sub-kind (e.g. ``small`` text, ``value`` chart): the TSV's ``l2-category``."""
    description: str = ""
    """Everything drawn, in reading order (``red circle, blue square``; the text; ``apple 5, pear 12``):
    a dense training target. Not part of the TSV."""
    boxes: tuple[Box, ...] = ()
    """Where each object (each bar of a chart) of ``description`` is drawn, in its order: (centre x,
    centre y, radius) in pixels, a bar's radius half its width or height, whichever is smaller; empty
    for text images. Not part of the TSV."""

    @property
    def answer_letter(self) -> str | None:
        """The correct option's letter (MCQ), else None."""
        return _LETTERS[self.options.index(self.answer)] if self.options else None


# --------------------------------------------------------------------------- drawing


def _font(size: int):  # noqa: ANN202 (PIL font types differ by backend)
    from PIL import ImageFont  # noqa: PLC0415

    return ImageFont.load_default(size=size)


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    def ring(n: int, start_deg: float, radius: float) -> list[tuple[float, float]]:
        return [
            (cx + radius * math.cos(math.radians(start_deg + k * 360 / n)), cy + radius * math.sin(math.radians(start_deg + k * 360 / n)))
            for k in range(n)
        ]

    if shape == "square":
        return ring(4, 45, r)
    if shape == "diamond":
        return ring(4, -90, r)
    if shape == "triangle":
        return ring(3, -90, r)
    if shape == "hexagon":
        return ring(6, 0, r)
    if shape == "star":
        outer, inner = ring(5, -90, r), ring(5, -54, r * 0.45)
        return [p for pair in zip(outer, inner) for p in pair]
    raise ValueError(f"unknown shape {shape!r}")


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, colour: str) -> None:
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon(_polygon(shape, cx, cy, r), fill=fill)


def _canvas(rng: random.Random, spec: SyntheticSpec, min_long: int | None = None) -> Image.Image:
    from PIL import Image  # noqa: PLC0415

    low = spec.min_side_px if min_long is None else max(spec.min_side_px, min(min_long, spec.max_side_px))
    long_side = rng.randint(low, spec.max_side_px)
    short_side = max(160, round(long_side / rng.choice(_ASPECTS)))
    size = (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)
    return Image.new("RGB", size, rng.choice(_BACKGROUNDS))


@dataclass(frozen=True)
class _Obj:
    shape: str
    colour: str


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """Indices of ``boxes`` in the order a reader lists the objects: columns left to right, each top to bottom.

    A column is the leftmost object not yet listed and every later object (by centre x) whose
    horizontal extent overlaps that first one's: objects stacked one above the other. Plain left to
    right by centre x made "the next object" a coin toss between two stacked objects a few pixels
    apart, and a model describing such an image named one of them twice.

    Example:
        >>> reading_order([(300, 40, 20), (30, 100, 20), (294, 150, 20)])  # stacked pair on the right
        [1, 0, 2]
    """
    order = sorted(range(len(boxes)), key=lambda i: boxes[i][0])
    columns: list[list[int]] = []
    for i in order:
        first = boxes[columns[-1][0]] if columns else None
        if first is not None and abs(boxes[i][0] - first[0]) < boxes[i][2] + first[2]:
            columns[-1].append(i)
        else:
            columns.append([i])
    return [i for column in columns for i in sorted(column, key=lambda j: boxes[j][1])]


def _describe(objects: Sequence[_Obj], boxes: Sequence[Box], order: Sequence[int]) -> tuple[str, tuple[Box, ...]]:
    """``colour shape`` of each object in ``order``, and their boxes in that order."""
    return ", ".join(f"{objects[i].colour} {objects[i].shape}" for i in order), tuple(boxes[i] for i in order)


def _scatter(rng: random.Random, image: Image.Image, objects: Sequence[_Obj]) -> tuple[str, tuple[Box, ...]]:
    """Draw objects at random non-overlapping places (shrinking them if the canvas is crowded).

    Returns:
        tuple[str, tuple[Box, ...]]: the objects described in :func:`reading_order`, and their
        boxes in that order.
    """
    from PIL import ImageDraw  # noqa: PLC0415

    w, h = image.size
    draw = ImageDraw.Draw(image)
    scale = 0.11
    placed: list[tuple[float, float, float]] = []
    for obj in objects:
        for attempt in range(400):
            r = max(8.0, min(w, h) * scale * rng.uniform(0.6, 1.0))
            cx, cy = rng.uniform(r + 4, w - r - 4), rng.uniform(r + 4, h - r - 4)
            if all(math.hypot(cx - x, cy - y) > r + q + 6 for x, y, q in placed):
                break
            if attempt % 50 == 49:
                scale *= 0.8
        placed.append((cx, cy, r))
        _draw_shape(draw, obj.shape, cx, cy, r, obj.colour)
    return _describe(objects, placed, reading_order(placed))


def _other(rng: random.Random, pool: Sequence[str], *exclude: str) -> str:
    return rng.choice([p for p in pool if p not in exclude])


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


@dataclass(frozen=True)
class _Question:
    """A drawn fact, askable in every form."""

    mcq: str
    """Question text for the MCQ and short-answer forms."""
    answer: str
    distractors: tuple[str, ...]
    """Wrong answers (for MCQ options and false yes/no claims)."""
    yn: str
    """Yes/no template with ``{}`` for the claimed answer."""
    detail: str
    vqa_suffix: str = ""
    description: str = ""
    boxes: tuple[Box, ...] = ()
    confusers: tuple[str, ...] = ()
    """The wrong answers the image itself suggests (another object's colour, the opposite relation,
    a neighbouring count): hard negatives for re-asked training questions. Empty: none."""


def _draw_colour(rng: random.Random, image: Image.Image) -> _Question:
    target = _Obj(rng.choice(SHAPES), rng.choice(list(COLOURS)))
    others = [_Obj(_other(rng, SHAPES, target.shape), rng.choice(list(COLOURS))) for _ in range(rng.randint(0, 2))]
    others = [o for i, o in enumerate(others) if o.shape not in {x.shape for x in others[:i]}]
    description, boxes = _scatter(rng, image, [target, *others])
    return _Question(
        f"What colour is the {target.shape}?", target.colour, tuple(c for c in COLOURS if c != target.colour),
        f"Is the {target.shape} {{}}?", "single" if not others else "among_others", description=description, boxes=boxes,
        confusers=_unique(o.colour for o in others),
    )


def _draw_shape_kind(rng: random.Random, image: Image.Image) -> _Question:
    target = _Obj(rng.choice(SHAPES), rng.choice(list(COLOURS)))
    others = [_Obj(rng.choice(SHAPES), _other(rng, list(COLOURS), target.colour)) for _ in range(rng.randint(0, 2))]
    description, boxes = _scatter(rng, image, [target, *others])
    return _Question(
        f"What shape is the {target.colour} object?", target.shape, tuple(s for s in SHAPES if s != target.shape),
        f"Is the {target.colour} object a {{}}?", "single" if not others else "among_others", description=description, boxes=boxes,
        confusers=_unique(o.shape for o in others),
    )


def _draw_count(rng: random.Random, image: Image.Image) -> _Question:
    target = _Obj(rng.choice(SHAPES), rng.choice(list(COLOURS)))
    n = rng.randint(1, 6)
    distractors = []
    for _ in range(rng.randint(0, 3)):
        if rng.random() < 0.5:
            distractors.append(_Obj(target.shape, _other(rng, list(COLOURS), target.colour)))
        else:
            distractors.append(_Obj(_other(rng, SHAPES, target.shape), target.colour))
    objects = [target] * n + distractors
    rng.shuffle(objects)
    description, boxes = _scatter(rng, image, objects)
    numbers = tuple(str(k) for k in range(1, 8) if k != n)
    return _Question(
        f"How many {target.colour} {target.shape}s are there?", str(n), numbers,
        f"Are there exactly {{}} {target.colour} {target.shape}s?", "few" if n <= 3 else "many", description=description, boxes=boxes,
        confusers=(str(n - 1), str(n + 1)),
    )


def _draw_position(rng: random.Random, image: Image.Image) -> _Question:
    from PIL import ImageDraw  # noqa: PLC0415

    a = _Obj(rng.choice(SHAPES), rng.choice(list(COLOURS)))
    b = _Obj(_other(rng, SHAPES, a.shape), _other(rng, list(COLOURS), a.colour))
    relation = rng.choice(list(_RELATIONS))
    w, h = image.size
    r = min(w, h) * rng.uniform(0.07, 0.11)
    horizontal = relation in ("left", "right")
    along, across = (w, h) if horizontal else (h, w)
    first = rng.uniform(r + 4, along / 2 - r - 4)
    second = rng.uniform(along / 2 + r + 4, along - r - 4)
    wobble = min(along * 0.08, across / 2 - r - 4)
    centre = across / 2
    pa, pb = (first, second) if relation in ("left", "above") else (second, first)
    ca = centre + rng.uniform(-wobble, wobble)
    cb = centre + rng.uniform(-wobble, wobble)
    draw = ImageDraw.Draw(image)
    placed: list[Box] = []
    for obj, p, c in ((a, pa, ca), (b, pb, cb)):
        x, y = (p, c) if horizontal else (c, p)
        placed.append((x, y, r))
        _draw_shape(draw, obj.shape, x, y, r, obj.colour)
    axis = 0 if horizontal else 1  # described along the asked axis
    description, boxes = _describe((a, b), placed, sorted(range(2), key=lambda i: placed[i][axis]))
    return _Question(
        f"Where is the {a.colour} {a.shape} relative to the {b.colour} {b.shape}?", relation,
        tuple(x for x in _RELATIONS if x != relation),
        f"Is the {a.colour} {a.shape} {{}} the {b.colour} {b.shape}?", "horizontal" if horizontal else "vertical",
        vqa_suffix=" Answer left, right, above or below.", description=description, boxes=boxes,
        confusers=(_OPPOSITE[relation],),
    )


def _draw_exists(rng: random.Random, image: Image.Image) -> _Question:
    present = [_Obj(rng.choice(SHAPES), rng.choice(list(COLOURS))) for _ in range(rng.randint(1, 4))]
    description, boxes = _scatter(rng, image, present)
    combos = {(o.colour, o.shape) for o in present}
    absent = [f"{c} {s}" for c in COLOURS for s in SHAPES if (c, s) not in combos]
    rng.shuffle(absent)
    truth = rng.choice(sorted(f"{c} {s}" for c, s in combos))
    return _Question(
        "Which of these objects is in the image?", truth, tuple(absent[:6]), "Is there a {} in the image?", "objects",
        description=description, boxes=boxes,
    )


def _fit_font(draw: ImageDraw.ImageDraw, text: str, size: int, max_width: float):  # noqa: ANN202
    while size > 8:
        font = _font(size)
        box = draw.textbbox((0, 0), text, font=font)
        if box[2] - box[0] <= max_width:
            return font, box
        size = int(size * 0.85)
    font = _font(8)
    return font, draw.textbbox((0, 0), text, font=font)


def _draw_text(rng: random.Random, image: Image.Image, small: bool, small_px: tuple[int, int],
               number_fraction: float) -> _Question:
    from PIL import ImageDraw  # noqa: PLC0415

    draw = ImageDraw.Draw(image)
    w, h = image.size
    is_number = rng.random() < number_fraction
    text = str(rng.randint(10, 9999)) if is_number else rng.choice(_WORDS)
    size = rng.randint(*small_px) if small else round(min(w, h) * rng.uniform(0.08, 0.2))
    font, box = _fit_font(draw, text, size, w * 0.9)
    tw, th = box[2] - box[0], box[3] - box[1]
    x = rng.uniform(4, max(4, w - tw - 4)) - box[0]
    y = rng.uniform(4, max(4, h - th - 4)) - box[1]
    draw.text((x, y), text, font=font, fill=COLOURS[rng.choice(["black", "blue", "red", "purple"])])
    if is_number:
        pool = tuple(str(v) for v in {int(text) + d for d in (-11, -2, -1, 1, 2, 10, 100)} if v > 0 and str(v) != text)
        return _Question("What number is written in the image?", text, tuple(sorted(pool)),
                         'Does the image show the number "{}"?', "small" if small else "large", description=text)
    return _Question("What word is written in the image?", text, tuple(x for x in _WORDS if x != text),
                     'Does the image show the word "{}"?', "small" if small else "large", description=text)


def _draw_chart(rng: random.Random, image: Image.Image) -> _Question:
    from PIL import ImageDraw  # noqa: PLC0415

    draw = ImageDraw.Draw(image)
    w, h = image.size
    k = rng.randint(3, 5)
    labels = rng.sample(_BAR_LABELS, k)
    values = rng.sample(range(1, 21), k)
    left, right, top, bottom = w * 0.08, w * 0.95, h * 0.15, h * 0.82
    draw.line((left, bottom, right, bottom), fill=(40, 40, 40), width=2)
    draw.line((left, top, left, bottom), fill=(40, 40, 40), width=2)
    slot = (right - left) / k
    font_size = max(10, round(min(slot * 0.22, h * 0.06)))
    colour = COLOURS[rng.choice(["blue", "green", "orange", "purple", "red"])]
    bars: list[Box] = []
    for i, (label, value) in enumerate(zip(labels, values)):
        x0 = left + slot * i + slot * 0.2
        x1 = x0 + slot * 0.6
        y0 = bottom - (bottom - top) * value / 20
        draw.rectangle((x0, y0, x1, bottom - 1), fill=colour)
        bars.append(((x0 + x1) / 2, (y0 + bottom - 1) / 2, min(x1 - x0, bottom - 1 - y0) / 2))
        font, box = _fit_font(draw, label, font_size, slot * 0.95)
        draw.text(((x0 + x1) / 2 - (box[2] + box[0]) / 2, bottom + 4 - box[1]), label, font=font, fill=(30, 30, 30))
        font, box = _fit_font(draw, str(value), font_size, slot * 0.95)
        draw.text(((x0 + x1) / 2 - (box[2] + box[0]) / 2, y0 - 4 - box[3]), str(value), font=font, fill=(30, 30, 30))
    description = ", ".join(f"{label} {value}" for label, value in zip(labels, values))
    if rng.random() < 0.5:
        tallest = labels[values.index(max(values))]
        by_height = [label for _, label in sorted(zip(values, labels), reverse=True)]
        return _Question("Which bar is the tallest?", tallest, tuple(x for x in labels if x != tallest),
                         "Is the {} bar the tallest?", "tallest", description=description, boxes=tuple(bars),
                         confusers=(by_height[1],))
    i = rng.randrange(k)
    others = tuple(str(v) for v in sorted(set(range(1, 21)) - {values[i]}, key=lambda v: abs(v - values[i]))[:6])
    return _Question(f"What is the value of the {labels[i]} bar?", str(values[i]), others,
                     f"Is the value of the {labels[i]} bar {{}}?", "value", description=description, boxes=tuple(bars),
                     confusers=tuple(str(v) for j, v in enumerate(values) if j != i))


# --------------------------------------------------------------------------- samples


def _relation_claim(q: _Question, value: str) -> str:
    return _RELATIONS.get(value, value) if q.detail in ("horizontal", "vertical") else value


def _draw_scene(rng: random.Random, spec: SyntheticSpec) -> tuple[Kind, Form, Image.Image, _Question]:
    """Draw a sample's kind, form, image and fact (the first draws of its stream)."""
    kind = rng.choice(spec.kinds)
    form = rng.choice(spec.forms)
    small = kind is Kind.TEXT and rng.random() < spec.small_text_fraction
    image = _canvas(rng, spec, _SMALL_TEXT_CANVAS if small else None)
    if kind is Kind.COLOUR:
        q = _draw_colour(rng, image)
    elif kind is Kind.SHAPE:
        q = _draw_shape_kind(rng, image)
    elif kind is Kind.COUNT:
        q = _draw_count(rng, image)
    elif kind is Kind.POSITION:
        q = _draw_position(rng, image)
    elif kind is Kind.EXISTS:
        q = _draw_exists(rng, image)
    elif kind is Kind.TEXT:
        q = _draw_text(rng, image, small, spec.small_text_px, spec.number_fraction)
    else:
        q = _draw_chart(rng, image)
    return kind, form, image, q


def _ask(rng: random.Random, sample_id: int, image: Image.Image, kind: Kind, form: Form, q: _Question,
         *, hard: bool = False) -> SyntheticSample:
    """Word the drawn fact ``q`` as a question of ``form`` (options, claims and answer).

    ``hard``: the MCQ options include the confusers of ``q`` (up to three) and a false yes/no
    claim is one of them, where ``q`` has any; the benchmark never sets it.
    """
    confusers = [c for c in q.confusers if c in q.distractors] if hard else []
    if form is Form.MCQ:
        wrong = confusers[:3]
        rest = [d for d in q.distractors if d not in wrong]
        options = [q.answer, *wrong, *rng.sample(rest, min(3 - len(wrong), len(rest)))]
        rng.shuffle(options)
        return SyntheticSample(sample_id, image, q.mcq, q.answer, tuple(options), kind, form, q.detail, q.description, q.boxes)
    if form is Form.YN:
        truthful = rng.random() < 0.5
        claim = q.answer if truthful else rng.choice(confusers or q.distractors)
        question = q.yn.format(_relation_claim(q, claim)) + " Please answer yes or no."
        return SyntheticSample(sample_id, image, question, "Yes" if truthful else "No", (), kind, form, q.detail, q.description, q.boxes)
    if kind is Kind.EXISTS:  # "which of these" has no short answer: ask yes/no in words instead
        present = rng.random() < 0.5
        question = q.yn.format(q.answer if present else q.distractors[0]) + " Answer yes or no."
        return SyntheticSample(sample_id, image, question, "yes" if present else "no", (), kind, form, q.detail, q.description, q.boxes)
    return SyntheticSample(sample_id, image, q.mcq + q.vqa_suffix, q.answer, (), kind, form, q.detail, q.description, q.boxes)


def generate_sample(seed: int, sample_id: int, spec: SyntheticSpec) -> SyntheticSample:
    """Draw sample number ``sample_id`` of the stream for ``seed`` (independent of other samples)."""
    rng = random.Random(f"mobile-mllm-synthetic/{seed}/{sample_id}")
    kind, form, image, q = _draw_scene(rng, spec)
    return _ask(rng, sample_id, image, kind, form, q)


def reask_forms(spec: SyntheticSpec) -> tuple[Form, ...]:
    """The forms of ``spec`` whose wording is drawn (MCQ options, yes/no claims), so asking again asks anew."""
    return tuple(f for f in spec.forms if f in (Form.MCQ, Form.YN))


def generate_sample_forms(seed: int, sample_id: int, spec: SyntheticSpec, *, reasks: int = 0,
                          hard_reasks: bool = False) -> tuple[SyntheticSample, ...]:
    """Sample ``sample_id`` as :func:`generate_sample` draws it, then the same fact asked in every other form.

    All share one image object (drawn once). The first element is exactly ``generate_sample(seed,
    sample_id, spec)``; the others (one per remaining form of ``spec.forms``, in order) draw their
    options and claims from a separate stream, so adding them changes no sample of the benchmark.
    Training asks several questions of one drawn image this way (one render and tiling, several
    answers to learn from).

    ``reasks`` more samples follow: the fact asked again in the forms whose wording is drawn (MCQ
    with other options in another order, yes/no with another claim), cycling through those forms of
    ``spec.forms``. They teach the option letters and claims themselves, the step a small model
    gets wrong while it already knows the short answer. They continue the separate stream, so the
    samples before them do not change. With ``hard_reasks`` their options and false claims are the
    wrong answers the image suggests (another object's colour, the opposite relation: hard negatives).

    Raises:
        ConfigError: ``reasks`` is negative, or positive while ``spec.forms`` has no MCQ or yes/no form.
    """
    redrawn = reask_forms(spec)
    if reasks < 0 or (reasks and not redrawn):
        raise ConfigError(f"synthetic: reasks must be >= 0 and needs an MCQ or yes/no form in spec.forms, got {reasks} "
                          f"with forms {[f.value for f in spec.forms]}")
    rng = random.Random(f"mobile-mllm-synthetic/{seed}/{sample_id}")
    kind, form, image, q = _draw_scene(rng, spec)
    first = _ask(rng, sample_id, image, kind, form, q)
    more = random.Random(f"mobile-mllm-synthetic-forms/{seed}/{sample_id}")
    others = [_ask(more, sample_id, image, kind, other, q) for other in spec.forms if other is not form]
    again = [_ask(more, sample_id, image, kind, redrawn[i % len(redrawn)], q, hard=hard_reasks) for i in range(reasks)]
    return (first, *others, *again)


def generate_samples(seed: int, count: int, spec: SyntheticSpec = SyntheticSpec(), *, start: int = 0) -> Iterator[SyntheticSample]:
    """Draw ``count`` samples (numbers ``start`` … ``start + count - 1``) for ``seed``.

    Args:
        seed (int): the stream; the same seed and spec always give the same samples.
        count (int): how many.
        spec (SyntheticSpec): kinds, forms and image sizes. Default SyntheticSpec().
        start (int): first sample number (to continue a stream). Default 0.

    Example:
        >>> s = next(generate_samples(0, 1, SyntheticSpec(kinds=(Kind.COUNT,), forms=(Form.VQA,))))
        >>> s.question.startswith("How many"), s.answer.isdigit()
        (True, True)
    """
    for i in range(start, start + count):
        yield generate_sample(seed, i, spec)


# --------------------------------------------------------------------------- TSV


def encode_png(image: Image.Image) -> str:
    """Base64 of the image as PNG (lossless: small text stays readable at full resolution)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def circular_offset(max_index: int) -> int:
    """MMBench's rotation offset: 1e6, times 10 until it exceeds every index."""
    offset = 1_000_000
    while offset <= max_index:
        offset *= 10
    return offset


def tsv_rows(samples: Iterable[SyntheticSample], *, circular: bool = False) -> tuple[list[str], list[list[str]]]:
    """VLMEvalKit columns and rows for samples of one form.

    MCQ rows carry options ``A``–``D`` and the answer letter; with ``circular`` every question is
    repeated once per rotation of its options at ``index + k·offset`` with ``g_index`` and an
    image pointer to the original row. Y/N answers are ``Yes``/``No``; VQA answers are a list
    literal holding the answer ten times (TextVQA's 10 annotators, so VQA accuracy is 1 for a match).

    Raises:
        ConfigError: the samples mix forms, or ``circular`` is set for a non-MCQ form.
    """
    items = list(samples)
    forms = {s.form for s in items}
    if len(forms) > 1:
        raise ConfigError(f"one TSV holds one question form; got {sorted(f.value for f in forms)} (set forms to one value)")
    form = forms.pop() if forms else Form.MCQ
    if circular and form is not Form.MCQ:
        raise ConfigError(f"circular layout needs the mcq form, got {form.value}")
    base = ["index", "image", "question"]
    tail = ["answer", "category", "l2-category"]
    if form is Form.MCQ:
        columns = base + list(_LETTERS) + tail + (["g_index"] if circular else [])
    else:
        columns = base + tail
    rows: list[list[str]] = []
    rotations: list[list[str]] = []
    offset = circular_offset(max((s.id for s in items), default=0))
    for s in items:
        image = encode_png(s.image)
        if form is Form.MCQ:
            opts = list(s.options) + [""] * (len(_LETTERS) - len(s.options))
            rows.append([str(s.id), image, s.question, *opts, s.answer_letter or "", s.kind.value, s.detail]
                        + ([str(s.id)] if circular else []))
            for k in range(1, len(s.options) if circular else 0):
                rotated = list(s.options[k:] + s.options[:k])
                letter = _LETTERS[rotated.index(s.answer)]
                rotated += [""] * (len(_LETTERS) - len(rotated))
                rotations.append([str(s.id + k * offset), str(s.id), s.question, *rotated, letter, s.kind.value, s.detail, str(s.id)])
        elif form is Form.YN:
            rows.append([str(s.id), image, s.question, s.answer, s.kind.value, s.detail])
        else:
            rows.append([str(s.id), image, s.question, repr([s.answer] * 10), s.kind.value, s.detail])
    return columns, rows + rotations


def write_tsv(samples: Iterable[SyntheticSample], path: str | Path, *, circular: bool = False) -> int:
    """Write samples as a VLMEvalKit TSV (atomically: a temporary file renamed on success).

    Returns:
        The number of rows written (rotations included).
    """
    columns, rows = tsv_rows(samples, circular=circular)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
    os.replace(tmp, p)
    logger.debug("wrote %s: %d rows, %d bytes", p, len(rows), p.stat().st_size)  # the caller reports it
    return len(rows)
