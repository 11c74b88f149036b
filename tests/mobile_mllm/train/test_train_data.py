"""Training examples: the runtime's exact prompt layout, answer-only labels, jitter, padding."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.synthetic import Form, Kind, SyntheticSample, generate_sample
from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session
from mobile_mllm.train.data import (
    IGNORE_INDEX,
    JITTER_VARIANTS,
    build_example,
    collate,
    jitter_vision,
    question_text,
    target_text,
)
from mobile_mllm.vision.grid import GridPolicy


class RecordingMethods:
    """Eager methods that keep every embedding the session prefills (what the decoder really sees)."""

    def __init__(self, inner: EagerMethods) -> None:
        self.inner = inner
        self.max_context_len, self.max_tile_batch, self.prefill_chunk = inner.max_context_len, inner.max_tile_batch, inner.prefill_chunk
        self.fed: list[torch.Tensor] = []

    def vision_encoder(self, tiles: torch.Tensor) -> torch.Tensor:
        return self.inner.vision_encoder(tiles)

    def token_embedding(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.inner.token_embedding(tokens)

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        self.fed.append(embeds[0].clone())
        return self.inner.text_decoder(embeds, start_pos)


def _training_embeddings(model, example) -> torch.Tensor:  # noqa: ANN001
    """The prompt embeddings the training forward builds: tokens embedded, image positions from the tiles."""
    with torch.no_grad():
        embeds = model.token_embedding(example.ids[None])[0].clone()
        image = model.vision_encoder(example.tiles)
    embeds[example.image_mask] = image.reshape(-1, image.shape[-1])
    return embeds[: example.num_prompt_positions]


@pytest.mark.parametrize(("kind", "form", "number"), [(Kind.TEXT, Form.MCQ, 0), (Kind.COUNT, Form.YN, 3), (Kind.POSITION, Form.VQA, 5)])
def test_example_prompt_is_what_the_session_prefills(tiny, small_spec, kind, form, number) -> None:
    spec = dataclasses.replace(small_spec, kinds=(kind,), forms=(form,))
    sample = generate_sample(7, number, spec)
    example = build_example(sample, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision, pad_id=0)
    recorder = RecordingMethods(EagerMethods(tiny, prefill_chunk=64))
    session = Session(recorder, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                      eos_ids=tiny.eos_ids, generation=GenerationConfig(max_new_tokens=1))
    answer = session.ask(question_text(sample), sample.image)
    prefilled = torch.cat(recorder.fed)[: answer.stats.num_prompt_tokens]
    assert example.num_prompt_positions == answer.stats.num_prompt_tokens
    assert int(example.image_mask.sum()) == answer.stats.num_image_tokens > 0
    torch.testing.assert_close(_training_embeddings(tiny, example), prefilled, rtol=1e-5, atol=1e-5)


def test_labels_cover_exactly_the_answer_and_the_stop_token(tiny, small_spec) -> None:
    sample = generate_sample(3, 1, dataclasses.replace(small_spec, kinds=(Kind.COLOUR,), forms=(Form.VQA,)))
    example = build_example(sample, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision, pad_id=0)
    labelled = (example.labels != IGNORE_INDEX).nonzero().flatten().tolist()
    n_answer = len(example.ids) - example.num_prompt_positions
    assert labelled == list(range(example.num_prompt_positions, len(example.ids)))
    assert example.labels[labelled].tolist() == example.ids[labelled].tolist()
    text = tiny.tokenizer.decode(example.ids[labelled].tolist(), skip_special_tokens=False)
    assert text == sample.answer + tiny.prompt.eos[0]
    assert n_answer == len(tiny.tokenizer.encode(sample.answer, add_special_tokens=False).ids) + 1
    assert not example.image_mask[labelled].any()


def test_question_and_target_follow_vlmevalkit_wording() -> None:
    mcq = SyntheticSample(0, None, "What shape is the red object?", "star", ("circle", "star", "square"), Kind.SHAPE, Form.MCQ, "x")
    assert question_text(mcq) == (
        "Question: What shape is the red object?\nOptions:\nA. circle\nB. star\nC. square\n"
        "Please select the correct answer from the options above. \n"
    )
    assert target_text(mcq) == "B"
    yn = SyntheticSample(0, None, "Is there a red star? Please answer yes or no.", "No", (), Kind.EXISTS, Form.YN, "x")
    assert (question_text(yn), target_text(yn)) == ("Is there a red star? Please answer yes or no.", "No")
    vqa = SyntheticSample(0, None, "How many red stars are there?", "4", (), Kind.COUNT, Form.VQA, "x")
    assert question_text(vqa).endswith("\nAnswer the question using a single word or phrase.")
    assert target_text(vqa) == "4"


def test_jitter_draws_every_variant_at_full_probability_and_none_at_zero(tiny) -> None:
    rng = random.Random(0)
    assert all(jitter_vision(tiny.vision, rng, 0.0) is tiny.vision for _ in range(50))
    seen = {(v.policy, v.max_side) for v in (jitter_vision(tiny.vision, rng, 1.0) for _ in range(200))}
    expected = {(dataclasses.replace(tiny.vision, **o).policy, dataclasses.replace(tiny.vision, **o).max_side) for o in JITTER_VARIANTS}
    assert seen == expected
    assert (GridPolicy.RELAXED, 1) in seen
    with pytest.raises(ConfigError, match="grid_jitter must be in"):
        jitter_vision(tiny.vision, rng, 1.5)


def test_collate_pads_right_and_keeps_tiles_in_example_order(tiny, small_spec) -> None:
    spec = dataclasses.replace(small_spec, kinds=(Kind.SHAPE,))
    examples = [
        build_example(generate_sample(1, i, spec), tokenizer=tiny.tokenizer, prompt=tiny.prompt,
                      vision=dataclasses.replace(tiny.vision, max_side=side), pad_id=0)
        for i, side in ((0, 1), (1, 3))
    ]
    batch = collate(examples, pad_id=5)
    longest = max(len(e.ids) for e in examples)
    assert batch.ids.shape == (2, longest)
    for row, e in enumerate(examples):
        n = len(e.ids)
        assert batch.attention_mask[row].tolist() == [1] * n + [0] * (longest - n)
        assert batch.ids[row, n:].eq(5).all() and batch.labels[row, n:].eq(IGNORE_INDEX).all()
    torch.testing.assert_close(batch.tiles, torch.cat([examples[0].tiles, examples[1].tiles]))
    assert int(batch.image_mask.sum()) == batch.tiles.shape[0] * tiny.vision.tokens_per_tile


def _distinct_colours(image) -> set[tuple[int, int, int]]:  # noqa: ANN001
    from mobile_mllm.eval.synthetic import COLOURS

    palette = set(COLOURS.values())
    return {c for _, c in image.getcolors(maxcolors=1 << 20) if c in palette}


@pytest.mark.parametrize("kind", [Kind.COLOUR, Kind.SHAPE, Kind.COUNT, Kind.EXISTS])
def test_description_names_exactly_the_drawn_objects_in_reading_order(small_spec, kind) -> None:
    from mobile_mllm.eval.synthetic import COLOURS

    for number in range(6):
        sample = generate_sample(11, number, dataclasses.replace(small_spec, kinds=(kind,)))
        items = [part.split(" ") for part in sample.description.split(", ")]
        assert all(len(i) == 2 and i[0] in COLOURS for i in items), sample.description
        # every colour named is drawn, and every palette colour drawn is named (pixel check, independent of the generator)
        assert {COLOURS[c] for c, _ in items} == _distinct_colours(sample.image)
        # reading order (columns left to right): the first named object is in the first column, i.e. its
        # pixels start within one object width of the leftmost drawn pixel; the rest follow reading_order
        import numpy as np

        from mobile_mllm.eval.synthetic import reading_order

        pixels = np.asarray(sample.image)
        lefts = [int(np.flatnonzero((pixels == COLOURS[c]).all(-1).any(0))[0]) for c, _ in items]
        widest = 2 * max(r for _, _, r in sample.boxes)
        assert lefts[0] <= min(lefts) + widest, (sample.description, lefts)
        assert reading_order(sample.boxes) == list(range(len(items)))


def test_description_of_text_and_chart_samples(small_spec) -> None:
    text = generate_sample(4, 0, dataclasses.replace(small_spec, kinds=(Kind.TEXT,), forms=(Form.VQA,)))
    assert text.description == text.answer
    chart = generate_sample(4, 0, dataclasses.replace(small_spec, kinds=(Kind.CHART,), forms=(Form.VQA,)))
    bars = dict(part.split(" ") for part in chart.description.split(", "))
    assert 3 <= len(bars) <= 5 and all(v.isdigit() and 1 <= int(v) <= 20 for v in bars.values())
    assert any(label in chart.question for label in bars) or chart.answer in bars


def test_describe_task_labels_the_whole_description(tiny, small_spec) -> None:
    from mobile_mllm.train.data import DESCRIBE_QUESTION, SyntheticTrainSet, describe_sample

    spec = dataclasses.replace(small_spec, kinds=(Kind.COUNT,))
    dataset = SyntheticTrainSet(seed=2, spec=spec, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                                grid_jitter=0.0, pad_id=0, length=4, describe=1.0, max_side=1)
    (example,) = dataset[0]
    sample = generate_sample(2, 0, spec)
    labelled = (example.labels != IGNORE_INDEX).nonzero().flatten().tolist()
    text = tiny.tokenizer.decode(example.ids[labelled].tolist(), skip_special_tokens=False)
    assert text == sample.description + tiny.prompt.eos[0]
    assert len(labelled) > 5  # dense: many more target tokens than a one-word answer
    assert example.tiles.shape[0] == 1  # max_side=1: one tile, no thumbnail
    assert describe_sample(sample).question == DESCRIBE_QUESTION
    with pytest.raises(ConfigError, match="has no description"):
        describe_sample(dataclasses.replace(sample, description=""))


def test_questions_per_image_asks_the_drawn_question_the_description_then_other_forms(tiny, small_spec) -> None:
    from mobile_mllm.eval.synthetic import generate_sample_forms
    from mobile_mllm.train.data import DESCRIBE_QUESTION, SyntheticTrainSet, question_text

    forms = generate_sample_forms(9, 4, small_spec)
    assert len(forms) == 3 and {s.form for s in forms} == set(Form)
    drawn = generate_sample(9, 4, small_spec)
    assert (forms[0].question, forms[0].answer, forms[0].options) == (drawn.question, drawn.answer, drawn.options)
    assert forms[0].image.tobytes() == drawn.image.tobytes()
    assert all(s.image is forms[0].image and s.kind is drawn.kind and s.description == drawn.description for s in forms)
    mcq = next(s for s in forms if s.form is Form.MCQ)
    assert mcq.answer in mcq.options

    dataset = SyntheticTrainSet(seed=9, spec=small_spec, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                                grid_jitter=0.0, pad_id=0, length=5, questions_per_image=4)
    group = dataset[4]
    texts = [tiny.tokenizer.decode(e.ids.tolist(), skip_special_tokens=False) for e in group]
    assert question_text(forms[0]) in texts[0] and DESCRIBE_QUESTION in texts[1]
    assert question_text(forms[1]) in texts[2] and question_text(forms[2]) in texts[3]
    single = SyntheticTrainSet(seed=9, spec=small_spec, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                               grid_jitter=0.0, pad_id=0, length=5)[4]
    assert len(single) == 1 and single[0].ids.tolist() == group[0].ids.tolist()
    with pytest.raises(ConfigError, match="questions_per_image"):
        SyntheticTrainSet(seed=9, spec=small_spec, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                          grid_jitter=0.0, pad_id=0, length=5, questions_per_image=0)
    vqa_only = dataclasses.replace(small_spec, forms=(Form.VQA,))
    with pytest.raises(ConfigError, match="between 1 and 2"):  # nothing to re-ask: 3 would silently give only 2
        SyntheticTrainSet(seed=9, spec=vqa_only, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                          grid_jitter=0.0, pad_id=0, length=5, questions_per_image=3)


def test_questions_beyond_the_forms_reask_the_fact_in_mcq_and_yes_no_form(tiny, small_spec) -> None:
    from mobile_mllm.eval.synthetic import generate_sample_forms
    from mobile_mllm.train.data import SyntheticTrainSet, question_text

    plain = generate_sample_forms(9, 4, small_spec)
    more = generate_sample_forms(9, 4, small_spec, reasks=6)
    assert len(more) == 9
    # the samples before the re-asks are unchanged (a run with re-asks sees the same first questions)
    assert [(s.question, s.answer, s.options) for s in more[:3]] == [(s.question, s.answer, s.options) for s in plain]
    again = more[3:]
    assert [s.form for s in again] == [Form.MCQ, Form.YN] * 3  # cycling the redrawn forms in spec order
    for s in again:
        assert s.image is more[0].image
        assert s.kind is plain[0].kind and s.description == plain[0].description
    truth = next(s for s in plain if s.form is Form.VQA).answer if plain[0].kind is not Kind.EXISTS else None
    for s in again:
        if s.form is Form.MCQ:
            assert s.options[ord(s.answer_letter) - ord("A")] == s.answer
            if truth is not None:
                assert s.answer == truth
        else:
            assert s.answer in ("Yes", "No")
    # re-asks draw fresh options or claims: not all MCQ re-asks repeat one option order
    assert len({(s.question, s.options) for s in again}) > 1
    with pytest.raises(ConfigError, match="reasks"):
        generate_sample_forms(9, 4, dataclasses.replace(small_spec, forms=(Form.VQA,)), reasks=1)

    group = SyntheticTrainSet(seed=9, spec=small_spec, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                              grid_jitter=0.0, pad_id=0, length=5, questions_per_image=7)[4]
    texts = [tiny.tokenizer.decode(e.ids.tolist(), skip_special_tokens=False) for e in group]
    assert len(group) == 7 and all(e.tiles is group[0].tiles for e in group)
    assert question_text(more[3]) in texts[4] and question_text(more[5]) in texts[6]


@pytest.mark.parametrize("kind", [Kind.COLOUR, Kind.POSITION, Kind.COUNT])
def test_hard_reasks_offer_the_wrong_answers_the_image_suggests(kind, small_spec) -> None:
    from mobile_mllm.eval.synthetic import generate_sample_forms

    spec = dataclasses.replace(small_spec, kinds=(kind,))
    opposite = {"left": "right", "right": "left", "above": "below", "below": "above"}
    checked = 0
    for i in range(12):
        easy = generate_sample_forms(3, i, spec, reasks=4)
        hard = generate_sample_forms(3, i, spec, reasks=4, hard_reasks=True)
        assert [(s.question, s.options) for s in hard[:3]] == [(s.question, s.options) for s in easy[:3]]
        truth = next(s for s in hard[:3] if s.form is Form.VQA).answer
        if kind is Kind.POSITION:
            suggested = {opposite[truth]}
        elif kind is Kind.COUNT:
            suggested = {str(int(truth) - 1), str(int(truth) + 1)} - {"0"}
        else:  # the other objects' colours, read back from the description ("red circle, blue square")
            objects = [tuple(o.split(" ")) for o in hard[0].description.split(", ")]
            question_shape = next(s for s in hard if s.form is Form.MCQ).question.removeprefix("What colour is the ").rstrip("?")
            suggested = {c for c, s in objects if s != question_shape} - {truth}
        for s in hard[3:]:
            if s.form is Form.MCQ:
                assert s.answer == truth and suggested <= set(s.options)
            elif s.answer == "No":
                claim = s.question
                assert any(word in claim for word in suggested) if suggested else True
        checked += bool(suggested)
    assert checked >= 6  # most drawn images suggest some wrong answer
