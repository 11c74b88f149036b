"""The shipped ``builtin:synth-small`` model really looks at the image (issue 4), within what it learned.

Trained from scratch on synthetic images (``bench/train_reference.md`` has its lineage and the
measurements), it names the colour of an object almost always, tells relative positions in every question
form, reads words and numbers from its tiles far better than from the thumbnail alone; charts are too weak to
assert on. The questions are held out (seed 3000; training used seeds 0 and 11-50) and the
images kept small so each test takes seconds.
"""

from __future__ import annotations

import dataclasses

import pytest

from mobile_mllm.eval.synthetic import Form, Kind, SyntheticSpec, generate_sample
from mobile_mllm.model.registry import BUILTIN_MODELS, resolve_model_path
from mobile_mllm.train.evaluate import CONDITIONS, BenchItem, evaluate

_SPEC = SyntheticSpec(max_side_px=512, small_text_px=(48, 72))
_N = 20
_CHANCE = 1 / 8
"""Eight colours; a blind model that learned the answer prior scores about 1/8 on short answers."""
# Each threshold below sits under the rate every trained phase measured and far above chance (the
# measurements: bench/train_reference.md, "Built-in model test thresholds").
_THRESHOLD = 0.75
"""Colours named right (chance 1/8)."""
_WORD_CHANCE = 1 / 30
"""The generator's 30 words."""
_WORDS_WITH_TILES = 0.75
"""Words read right with the tiles."""
_TILE_GAIN = 0.35
"""Words: with tiles minus thumbnail alone, on :data:`_WORD_SPEC`'s images."""
_WORD_SPEC = dataclasses.replace(_SPEC, max_side_px=768, small_text_px=(24, 36))
"""Words small enough for their image that the thumbnail's resolution cannot carry them (the model
reads most 48-72 px words on a 512-px image from the thumbnail alone)."""
_NUMBERS_WITH_TILES = 0.5
"""Numbers (2-4 digits, so a guess is exact about once in thousands) read right with the tiles."""
_NUMBER_TILE_GAIN = 0.4
"""Numbers: with tiles minus thumbnail alone (digits are read from the tiles)."""
_POSITION_EVERY_FORM = 0.85
"""Relative positions right as option letters and as yes/no (chance 1/4, 1/2)."""


def test_builtin_synth_small_is_registered_and_complete() -> None:
    path = resolve_model_path("builtin:synth-small")
    assert "synth-small" in BUILTIN_MODELS
    names = sorted(p.name for p in path.iterdir())
    assert names == ["config.json", "model.safetensors", "preprocessor_config.json", "tokenizer.json"]
    assert (path / "model.safetensors").stat().st_size < 20_000_000


@pytest.mark.slow
def test_builtin_synth_small_names_colours_far_above_chance() -> None:
    items = [BenchItem(Kind.COLOUR, i, (Form.VQA,)) for i in range(_N)]
    records = evaluate("builtin:synth-small", items, seed=3000, spec=_SPEC, workers=1)
    # the records are the questions we meant to ask (an independent draw of the same stream)
    truth = [generate_sample(3000, i, dataclasses.replace(_SPEC, kinds=(Kind.COLOUR,), forms=(Form.VQA,))).answer
             for i in range(_N)]
    assert [r.answer for r in records] == truth
    accuracy = sum(r.correct for r in records) / _N
    assert _THRESHOLD >= 3 * _CHANCE
    assert accuracy >= _THRESHOLD, (accuracy, [(r.answer, r.prediction) for r in records])


def _text_read(condition: str, numbers: bool) -> float:
    """Exact-match rate on ``_N`` held-out text questions that show only words, or only numbers."""
    spec = dataclasses.replace(_SPEC if numbers else _WORD_SPEC, number_fraction=1.0 if numbers else 0.0)
    items = [BenchItem(Kind.TEXT, i, (Form.VQA,)) for i in range(_N)]
    records = evaluate("builtin:synth-small", items, seed=3000, spec=spec, condition=CONDITIONS[condition], workers=1)
    assert all((r.answer.isdigit() if numbers else r.answer.isalpha()) for r in records)
    return sum(r.correct for r in records) / _N


@pytest.mark.slow
def test_builtin_synth_small_reads_words_with_tiles_not_from_the_thumbnail() -> None:
    tiles, thumbnail = _text_read("tiles", numbers=False), _text_read("thumbnail", numbers=False)
    assert _WORDS_WITH_TILES >= 10 * _WORD_CHANCE
    assert tiles >= _WORDS_WITH_TILES, tiles
    assert tiles - thumbnail >= _TILE_GAIN, (tiles, thumbnail)


@pytest.mark.slow
def test_builtin_synth_small_reads_numbers_with_tiles_not_from_the_thumbnail() -> None:
    tiles, thumbnail = _text_read("tiles", numbers=True), _text_read("thumbnail", numbers=True)
    assert tiles >= _NUMBERS_WITH_TILES, tiles
    assert tiles - thumbnail >= _NUMBER_TILE_GAIN, (tiles, thumbnail)


@pytest.mark.slow
@pytest.mark.parametrize("form", [Form.MCQ, Form.YN])
def test_builtin_synth_small_tells_positions_as_option_letters_and_yes_no(form: Form) -> None:
    items = [BenchItem(Kind.POSITION, i, (form,)) for i in range(_N)]
    records = evaluate("builtin:synth-small", items, seed=3000, spec=_SPEC, workers=1)
    assert {r.form for r in records} == {form.value}
    accuracy = sum(r.correct for r in records) / _N
    assert accuracy >= _POSITION_EVERY_FORM, (accuracy, [(r.answer, r.prediction) for r in records])
