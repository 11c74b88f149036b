"""Training examples from the synthetic generator, laid out exactly as the runtime prompts the model.

A :class:`~mobile_mllm.eval.synthetic.SyntheticSample` becomes a :class:`TrainExample`: the
question is worded as VLMEvalKit words it (``eval.prompts``), the image is tiled by
``vision.preprocess`` and placed by the runtime's own layout functions
(``runtime.layout.image_block`` and ``first_turn``, the ones ``Session`` calls), and the
answer (option letter, ``Yes``/``No`` or the short answer) plus the model's end-of-turn token
is appended. Only the answer positions carry labels. Each example depends only on
(seed, sample number), so DataLoader workers can build them in any order and a resumed run
sees the same data.

Random grid jitter: with probability ``grid_jitter`` a sample is tiled with another grid
choice (LLaVA-NeXT or InternVL matching, or at most 2x2 or 1x1 tiles) instead of the model's
relaxed 3x3 policy, so the model answers whatever grid the runtime, a token budget or a
benchmark hands it.

Dense supervision: with probability ``describe`` the question is replaced by
:data:`DESCRIBE_QUESTION`, answered by everything drawn (``describe_sample``). Measured, this is what
moves a model trained from scratch off the text-only plateau (``bench/train_reference.md``).
A curriculum's first phase may cap the grid (``max_side``) so examples have few tiles.

Several questions per image: with ``questions_per_image`` = Q > 1, one drawn image gives Q
examples that share its tiles (the drawn question, the description, then the same fact in the
other forms, then re-asked in MCQ and yes/no form with fresh options and claims;
``eval.synthetic.generate_sample_forms``). The image is rendered, tiled and encoded once for Q
answers: rendering and tiling on the CPU are what limit training throughput.

Deliberately not here: the optimiser loop (``loop.py``), scoring (``evaluate.py``).
"""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.prompts import build_mcq_prompt, build_vqa_prompt, build_yn_prompt
from mobile_mllm.eval.synthetic import Form, SyntheticSample, SyntheticSpec, generate_sample_forms, reask_forms
from mobile_mllm.train.chat import (
    describe_turn,
    extreme_objects,
    is_side_question,
    plain_turns,
    sample_objects,
    side_turn,
)
from mobile_mllm.runtime.layout import Segment, TileRef, TokenRun, first_turn, image_block, next_turn, special_token_ids
from mobile_mllm.vision.grid import GridPolicy

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = [
    "IGNORE_INDEX",
    "JITTER_VARIANTS",
    "Batch",
    "SyntheticTrainSet",
    "TrainExample",
    "build_dialogue",
    "build_example",
    "collate",
    "collate_groups",
    "chat_dialogue",
    "follow_up_dialogue",
    "collate_with",
    "DESCRIBE_QUESTION",
    "crop_to_content",
    "describe_sample",
    "jitter_vision",
    "question_text",
    "target_text",
]

IGNORE_INDEX = -100
"""Label of positions that are not part of the answer (cross-entropy skips them)."""

JITTER_VARIANTS: tuple[Mapping[str, Any], ...] = (
    {"policy": GridPolicy.LLAVA_NEXT},
    {"policy": GridPolicy.INTERNVL},
    {"max_side": 2},
    {"max_side": 1},
)
"""VisionConfig overrides a jittered sample is tiled with (one drawn uniformly)."""


DESCRIBE_QUESTION = "List everything in the image."
"""Question of the dense "describe" task (answer: ``SyntheticSample.description``)."""


def describe_sample(sample: SyntheticSample) -> SyntheticSample:
    """The same image asked :data:`DESCRIBE_QUESTION`, answered by everything drawn in it.

    One answer names every object's colour and shape (or the text, or every bar's label and
    value), so each image gives 5-20 grounded target tokens instead of one. A model trained
    from scratch on one-token answers learns the answer priors first and then sits on that
    text-only plateau; the description has no prior to fall back on.

    Raises:
        ConfigError: the sample has no description.
    """
    if not sample.description:
        raise ConfigError(f"sample {sample.id} ({sample.kind.value}) has no description to train on")
    return dataclasses.replace(sample, question=DESCRIBE_QUESTION, answer=sample.description, options=(), form=Form.VQA)


def question_text(sample: SyntheticSample) -> str:
    """The user's text for a sample, worded as VLMEvalKit's MCQ / Y/N / VQA prompts word it.

    Example:
        >>> from mobile_mllm.eval.synthetic import Kind
        >>> s = SyntheticSample(0, None, "What colour is it?", "red", (), Kind.COLOUR, Form.VQA, "single")
        >>> question_text(s)
        'What colour is it?\\nAnswer the question using a single word or phrase.'
    """
    if sample.form is Form.MCQ:
        return build_mcq_prompt(sample.question, dict(zip("ABCD", sample.options)))
    if sample.form is Form.YN:
        return build_yn_prompt(sample.question)
    return build_vqa_prompt(sample.question)


def target_text(sample: SyntheticSample) -> str:
    """What the model is taught to answer: the option letter (MCQ), else the answer text.

    Example:
        >>> from mobile_mllm.eval.synthetic import Kind
        >>> s = SyntheticSample(0, None, "Q?", "red", ("blue", "red"), Kind.COLOUR, Form.MCQ, "single")
        >>> target_text(s)
        'B'
    """
    return sample.answer_letter if sample.form is Form.MCQ else sample.answer


def jitter_vision(vision: VisionConfig, rng: random.Random, probability: float) -> VisionConfig:
    """The model's vision config, or with ``probability`` one of :data:`JITTER_VARIANTS` of it.

    Raises:
        ConfigError: ``probability`` outside [0, 1].
    """
    if not 0.0 <= probability <= 1.0:
        raise ConfigError(f"grid_jitter must be in [0, 1], got {probability}")
    if rng.random() >= probability:
        return vision
    return dataclasses.replace(vision, **rng.choice(JITTER_VARIANTS))


def crop_to_content(image: Any, rng: random.Random, *, threshold: int = 12) -> Any:
    """Crop an image to the box around everything that differs from its corner colour, plus a random margin.

    Every generated question stays true under such a crop (all objects, their order, counts,
    text and bars are kept), but the objects fill far more of each tile. Mixed into training,
    these close-ups let a model trained from scratch first learn *what* colours, shapes and
    glyphs look like before it has learned *where* to look in a full-size image (without them
    it sits on a text-only plateau for thousands of steps).

    Returns:
        The cropped image (the image itself when nothing differs from the background).
    """
    import numpy as np

    pixels = np.asarray(image, dtype=np.int16)
    diff = np.abs(pixels - pixels[0, 0]).max(axis=-1) > threshold
    rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
    if rows.size == 0:
        return image
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    margin = rng.uniform(0.05, 0.4)
    dy, dx = round((bottom - top) * margin) + 2, round((right - left) * margin) + 2
    h, w = pixels.shape[:2]
    return image.crop((max(0, left - dx), max(0, top - dy), min(w, right + dx), min(h, bottom + dy)))


@dataclass(frozen=True)
class TrainExample:
    """One tokenised example: the full sequence (prompt + answer) and its image tiles."""

    ids: torch.Tensor
    """int64 ``[T]``: token ids; image positions hold the pad id (their embeddings come from the tiles)."""
    image_mask: torch.Tensor
    """bool ``[T]``: True where an image embedding goes."""
    labels: torch.Tensor
    """int64 ``[T]``: the token at answer positions (answer + end-of-turn), IGNORE_INDEX elsewhere."""
    tiles: torch.Tensor
    """float32 ``[N, 3, S, S]``: tiles in the order their embeddings appear in the sequence."""
    num_prompt_positions: int
    """Positions before the answer (what the runtime prefills)."""


def _flatten(segments: Sequence[Segment], pad_id: int) -> tuple[list[int], list[bool], list[int]]:
    ids: list[int] = []
    mask: list[bool] = []
    tile_order: list[int] = []
    for seg in segments:
        if isinstance(seg, TokenRun):
            ids += seg.ids
            mask += [False] * len(seg.ids)
        else:
            assert isinstance(seg, TileRef)
            ids += [pad_id] * seg.num_tokens
            mask += [True] * seg.num_tokens
            tile_order.append(seg.tile)
    return ids, mask, tile_order


def build_example(
    sample: SyntheticSample,
    *,
    tokenizer: Any,
    prompt: PromptFormat,
    vision: VisionConfig,
    pad_id: int,
    tiles: Any = None,
) -> TrainExample:
    """Tokenise one sample the way :class:`~mobile_mllm.runtime.session.Session` would prompt it.

    Args:
        sample (SyntheticSample): image, question, answer.
        tokenizer: the model's ``tokenizers.Tokenizer``.
        prompt (PromptFormat): the model's chat template and image layout.
        vision (VisionConfig): how to tile this sample (the model's, or a jittered one).
        pad_id (int): id written at image positions (never embedded: they are replaced).
        tiles (Tiles | None): ``vision.preprocess(sample.image, vision)`` when the caller already
            tiled this image (several questions about one image); None: tile it here.

    Returns:
        TrainExample: prompt positions as the runtime prefills them, then the answer tokens
        and the first stop token of ``prompt.eos``, which are the only labelled positions.
    """
    return build_dialogue(sample.image, [(question_text(sample), target_text(sample))], tokenizer=tokenizer,
                          prompt=prompt, vision=vision, pad_id=pad_id, tiles=tiles)


def build_dialogue(
    image: Any,
    turns: Sequence[tuple[str, str]],
    *,
    tokenizer: Any,
    prompt: PromptFormat,
    vision: VisionConfig,
    pad_id: int,
    tiles: Any = None,
) -> TrainExample:
    """One conversation about ``image`` in one sequence, laid out as ``Session`` lays out its turns.

    The first turn is ``runtime.layout.first_turn`` (with the image); each later one is
    ``next_turn`` after the previous answer, exactly what ``Session.ask`` prefills for a follow-up:
    the stop token the model emitted is not fed back, ``turn_end`` (which starts with that stop
    token) is. So every answer and the stop token after it are labelled, and a follow-up is
    trained at the positions and with the context it gets at run time. Questions are worded in the
    model's prompt style (``prompt.style_question``), as ``Session`` words them.

    Args:
        image: the PIL image all turns are about.
        turns (Sequence[tuple[str, str]]): (question, answer) pairs, in order.
        tokenizer, prompt, vision, pad_id, tiles: as :func:`build_example`.

    Raises:
        ConfigError: no turns, or ``prompt.turn_end`` does not start with the stop token
            ``prompt.eos[0]`` (then a follow-up's layout would not continue a finished answer).
    """
    import torch

    from mobile_mllm.vision.processor import preprocess

    if not turns:
        raise ConfigError("a dialogue needs at least one (question, answer) turn")

    def encode(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False).ids

    token_ids = special_token_ids(tokenizer, prompt)
    stop = token_ids[prompt.eos[0]]
    tiles = preprocess(image, vision) if tiles is None else tiles
    block = image_block(
        prompt,
        grid=tiles.grid,
        thumbnail_index=tiles.thumbnail_index,
        tokens_per_tile=vision.tokens_per_tile,
        token_ids=token_ids,
        encode=encode,
    )
    ids: list[int] = []
    mask: list[bool] = []
    labels: list[int] = []
    order: list[int] = []
    for i, (question, answer) in enumerate(turns):
        question = prompt.style_question(question)
        if i == 0:
            segments = first_turn(prompt, question, encode=encode, token_ids=token_ids, image=block)
        else:
            segments = next_turn(prompt, question, encode=encode)
        more, more_mask, more_order = _flatten(segments, pad_id)
        if i:
            if not more or more[0] != stop:
                raise ConfigError(f"turn_end {prompt.turn_end!r} must start with the stop token {prompt.eos[0]!r}")
            labels += [stop] + [IGNORE_INDEX] * (len(more) - 1)  # the previous answer's stop token
        else:
            labels += [IGNORE_INDEX] * len(more)
        ids += more
        mask += more_mask
        order += more_order
        answer_ids = encode(answer)
        ids += answer_ids
        mask += [False] * len(answer_ids)
        labels += answer_ids
    n_prompt = len(ids) - len(answer_ids)
    ids.append(stop)
    mask.append(False)
    labels.append(stop)
    return TrainExample(
        ids=torch.tensor(ids, dtype=torch.long),
        image_mask=torch.tensor(mask, dtype=torch.bool),
        labels=torch.tensor(labels, dtype=torch.long),
        tiles=tiles.tiles[order],
        num_prompt_positions=n_prompt,
    )


@dataclass(frozen=True)
class Batch:
    """Examples padded on the right to one length; all tiles of the batch in one tensor."""

    ids: torch.Tensor
    """int64 ``[B, T]``."""
    image_mask: torch.Tensor
    """bool ``[B, T]``."""
    labels: torch.Tensor
    """int64 ``[B, T]`` (IGNORE_INDEX at prompt and padding positions)."""
    attention_mask: torch.Tensor
    """int64 ``[B, T]``: 1 for real positions, 0 for padding."""
    tiles: torch.Tensor
    """float32 ``[sum N_i, 3, S, S]``: each image's tiles once, image after image, each in sequence order."""
    image_index: torch.Tensor
    """int64 ``[image positions]``: for each True of ``image_mask`` (row-major), its row in the
    flattened image embeddings ``vision_encoder(tiles).reshape(-1, D)``. Examples that share an
    image point at the same rows."""

    def to(self, device: Any) -> Batch:
        """The batch on ``device`` (non-blocking from pinned memory)."""
        return Batch(**{f.name: getattr(self, f.name).to(device, non_blocking=True) for f in dataclasses.fields(self)})


def collate(examples: Sequence[TrainExample], pad_id: int = 0) -> Batch:
    """Pad examples to the longest one and stack them into a :class:`Batch` (each with its own tiles)."""
    return collate_groups([(e,) for e in examples], pad_id)


def collate_groups(groups: Sequence[Sequence[TrainExample]], pad_id: int = 0) -> Batch:
    """Stack groups of examples that share one image (:meth:`SyntheticTrainSet.__getitem__`) into a :class:`Batch`.

    Every example becomes a row; each group's tiles go into ``tiles`` once and all its rows
    point at them through ``image_index``.

    Raises:
        ConfigError: a group's examples hold different tiles (they must share one image and grid).
    """
    import torch

    examples = [e for group in groups for e in group]
    length = max(len(e.ids) for e in examples)
    b = len(examples)
    ids = torch.full((b, length), pad_id, dtype=torch.long)
    mask = torch.zeros((b, length), dtype=torch.bool)
    labels = torch.full((b, length), IGNORE_INDEX, dtype=torch.long)
    attention = torch.zeros((b, length), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.ids)
        ids[i, :n], mask[i, :n], labels[i, :n], attention[i, :n] = e.ids, e.image_mask, e.labels, 1
    index: list[torch.Tensor] = []
    offset = 0
    for group in groups:
        tiles = group[0].tiles
        n_positions = int(group[0].image_mask.sum())
        for e in group:
            if e.tiles is not tiles and not torch.equal(e.tiles, tiles):
                raise ConfigError("examples of one group must share their image tiles")
            index.append(torch.arange(offset, offset + n_positions))
        offset += n_positions
    tiles = torch.cat([group[0].tiles for group in groups])
    return Batch(ids, mask, labels, attention, tiles, torch.cat(index))


def chat_dialogue(sample: SyntheticSample, forms: Sequence[SyntheticSample], rng: random.Random,
                  max_turns: int) -> list[tuple[str, str]]:
    """One conversation about ``sample``'s image as a chat user would have it (all answers true).

    1 to ``max_turns`` turns drawn without repetition from: plainly worded questions
    (``chat.plain_turns``), a request for a description (``chat.describe_turn``), and two of
    the benchmark's forms of the same fact (``forms``, worded as trained), so each kind is
    learnt as a first turn and as a follow-up.
    """
    pool = plain_turns(sample, rng) + [describe_turn(sample, rng)]
    pool += [(question_text(f), target_text(f)) for f in rng.sample(list(forms), min(2, len(forms)))]
    return rng.sample(pool, min(len(pool), rng.randint(1, max_turns)))


def follow_up_dialogue(sample: SyntheticSample, forms: Sequence[SyntheticSample],
                       rng: random.Random) -> list[tuple[str, str]]:
    """A conversation whose follow-up is a benchmark question: what a user asks after a first look.

    An opener (a plain question or, half the time, a request for a description), then one of the
    benchmark's forms of the sample's fact (``forms``, worded as trained), then half the time a
    plain question. This is the shape of the chat benchmark's conversations (``chat_eval``), where
    :func:`chat_dialogue`'s random draws put a benchmark question after another turn in only about
    a third of the rows, and position and text questions were answered worse as follow-ups than as
    first turns (``bench/train_reference.md``).
    """
    plain = plain_turns(sample, rng)
    describe = describe_turn(sample, rng)
    opener = describe if not plain or rng.random() < 0.5 else plain[0]
    form = rng.choice(list(forms))
    turns = [opener, (question_text(form), target_text(form))]
    later = [t for t in plain if t != opener]
    if later and rng.random() < 0.5:
        turns.append(rng.choice(later))
    return turns


def where_dialogue(sample: SyntheticSample, rng: random.Random) -> list[tuple[str, str]]:
    """A conversation that asks where things are after a first look; empty when no object is clearly on a side.

    An opener (half the time a request for a description, else a plain question that is not about a
    side), then "What shape is on the left?" (right, at the top, at the bottom) for one or two sides
    that have one object clearly there (``chat.extreme_objects``). Asked after a description, the
    question must be answered from the image, not from the order the description named things in.
    """
    sides = extreme_objects(sample)
    if not sides:
        return []
    plain = [t for t in plain_turns(sample, rng) if not is_side_question(t[0])]
    describe = describe_turn(sample, rng)
    opener = describe if not plain or rng.random() < 0.5 else rng.choice(plain)
    asked = rng.sample(sorted(sides), min(len(sides), rng.randint(1, 2)))
    objects = sample_objects(sample)
    return [opener, *(side_turn(side, objects[sides[side]][1], rng) for side in asked)]


class SyntheticTrainSet:
    """Map-style dataset: index ``i`` is sample ``i`` of the generator's stream for ``seed``, tokenised.

    Picklable (DataLoader workers get a copy); every item is a pure function of (seed, index).

    Args:
        seed (int): generator stream (the held-out benchmark uses another).
        spec (SyntheticSpec): what the generator draws.
        tokenizer: the model's ``tokenizers.Tokenizer``.
        prompt (PromptFormat): the model's chat template.
        vision (VisionConfig): the model's vision config (jitter varies the grid around it).
        grid_jitter (float): probability of a jittered grid.
        content_crop (float): probability of training on :func:`crop_to_content` of the image.
        describe (float): probability of asking :data:`DESCRIBE_QUESTION` instead (:func:`describe_sample`).
        max_side (int | None): cap on the grid side (a curriculum's first phase), None: the model's.
        chat_dialogues (int): extra rows per image, each one conversation of 1 to ``chat_turns``
            turns (:func:`chat_dialogue`): plain questions, a description, benchmark forms, as
            first turns and as follow-ups.
        chat_turns (int): most turns of one conversation.
        chat_follow_ups (int): extra rows per image, each a conversation whose second turn is a
            benchmark question (:func:`follow_up_dialogue`).
        chat_where (int): extra rows per image with an object clearly on a side, each a conversation
            asking where things are after an opener (:func:`where_dialogue`).
        hard_reasks (bool): re-asked questions (beyond the forms) take their wrong options and false
            claims from what the image suggests (``eval.synthetic.generate_sample_forms``).
        questions_per_image (int): examples per drawn image (see the module docstring); 1: the
            drawn question, or with probability ``describe`` the description instead.
        pad_id (int): id at image and padding positions.
        length (int): number of items (``len()``; indices beyond it are still valid).
    """

    def __init__(
        self,
        *,
        seed: int,
        spec: SyntheticSpec,
        tokenizer: Any,
        prompt: PromptFormat,
        vision: VisionConfig,
        grid_jitter: float,
        pad_id: int,
        length: int,
        content_crop: float = 0.0,
        describe: float = 0.0,
        max_side: int | None = None,
        questions_per_image: int = 1,
        hard_reasks: bool = False,
        chat_dialogues: int = 0,
        chat_turns: int = 4,
        chat_follow_ups: int = 0,
        chat_where: int = 0,
    ) -> None:
        available = 1 + len(spec.forms)  # the drawn question, the description, the other forms
        if questions_per_image < 1 or (questions_per_image > available and not reask_forms(spec)):
            raise ConfigError(
                f"questions_per_image must be between 1 and {available} (the drawn question, the description and "
                f"the same fact in the {len(spec.forms) - 1} other form(s)); more re-ask the fact in MCQ or yes/no "
                f"form, which spec.forms lacks; got {questions_per_image}"
            )
        self.seed, self.spec, self.tokenizer, self.prompt = seed, spec, tokenizer, prompt
        self.vision, self.grid_jitter, self.pad_id, self.length = vision, grid_jitter, pad_id, length
        self.content_crop, self.describe, self.max_side = content_crop, describe, max_side
        self.questions_per_image, self.hard_reasks = questions_per_image, hard_reasks
        self.chat_dialogues, self.chat_turns, self.chat_follow_ups = chat_dialogues, chat_turns, chat_follow_ups
        self.chat_where = chat_where

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[TrainExample, ...]:
        """The examples about drawn image ``index`` (``questions_per_image`` of them), sharing its tiles."""
        from mobile_mllm.vision.processor import preprocess

        reasks = max(0, self.questions_per_image - 1 - len(self.spec.forms))
        forms = generate_sample_forms(self.seed, index, self.spec, reasks=reasks, hard_reasks=self.hard_reasks)
        sample = forms[0]
        rng = random.Random(f"mobile-mllm-train-jitter/{self.seed}/{index}")
        vision = jitter_vision(self.vision, rng, self.grid_jitter)
        image = crop_to_content(sample.image, rng) if rng.random() < self.content_crop else sample.image
        if self.max_side and (vision.max_side is None or vision.max_side > self.max_side):
            vision = dataclasses.replace(vision, max_side=self.max_side)
        if self.questions_per_image == 1:
            asked = [describe_sample(sample) if self.describe and rng.random() < self.describe else sample]
        else:
            asked = [sample, describe_sample(sample), *forms[1:]][: self.questions_per_image]
        tiles = preprocess(image, vision)
        examples = [
            build_example(dataclasses.replace(s, image=image), tokenizer=self.tokenizer, prompt=self.prompt, vision=vision,
                          pad_id=self.pad_id, tiles=tiles)
            for s in asked
        ]
        chat_rng = random.Random(f"mobile-mllm-train-chat/{self.seed}/{index}")  # the old streams stay as they were
        dialogues = [chat_dialogue(sample, forms[1:], chat_rng, self.chat_turns) for _ in range(self.chat_dialogues)]
        follow_rng = random.Random(f"mobile-mllm-train-follow-up/{self.seed}/{index}")
        dialogues += [follow_up_dialogue(sample, forms, follow_rng) for _ in range(self.chat_follow_ups)]
        where_rng = random.Random(f"mobile-mllm-train-where/{self.seed}/{index}")
        dialogues += [turns for _ in range(self.chat_where) if (turns := where_dialogue(sample, where_rng))]
        examples += [build_dialogue(image, turns, tokenizer=self.tokenizer, prompt=self.prompt, vision=vision,
                                    pad_id=self.pad_id, tiles=tiles) for turns in dialogues]
        # one tensor for the group: a DataLoader worker then sends the tiles once, not Q times
        return tuple(dataclasses.replace(e, tiles=examples[0].tiles) for e in examples)


def collate_with(pad_id: int) -> Callable[[Sequence[Sequence[TrainExample]]], Batch]:
    """A picklable collate function of :meth:`SyntheticTrainSet.__getitem__` groups, padding with ``pad_id``."""
    import functools

    return functools.partial(collate_groups, pad_id=pad_id)
