"""The synthetic generator: determinism, content, and the round trip generator -> TSV -> loader."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.data import decode_image, load_benchmark
from mobile_mllm.eval.synthetic import (
    Form,
    Kind,
    SyntheticSpec,
    circular_offset,
    encode_png,
    generate_sample,
    generate_samples,
    write_tsv,
)

SMALL = SyntheticSpec(min_side_px=200, max_side_px=640)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_byte_identical_tsv(tmp_path: Path) -> None:
    spec = SyntheticSpec(forms=(Form.MCQ,), min_side_px=200, max_side_px=640)
    write_tsv(generate_samples(3, 12, spec), tmp_path / "a.tsv")
    write_tsv(generate_samples(3, 12, spec), tmp_path / "b.tsv")
    write_tsv(generate_samples(4, 12, spec), tmp_path / "c.tsv")
    assert _digest(tmp_path / "a.tsv") == _digest(tmp_path / "b.tsv")
    assert _digest(tmp_path / "a.tsv") != _digest(tmp_path / "c.tsv")


def test_samples_are_independent_of_the_stream_position() -> None:
    streamed = list(generate_samples(9, 5, SMALL))
    alone = generate_sample(9, 3, SMALL)
    assert streamed[3].question == alone.question and encode_png(streamed[3].image) == encode_png(alone.image)
    continued = next(generate_samples(9, 1, SMALL, start=4))
    assert continued.question == streamed[4].question


def test_all_kinds_and_forms_appear_with_consistent_answers() -> None:
    samples = list(generate_samples(0, 300, SMALL))
    assert {s.kind for s in samples} == set(Kind)
    assert {s.form for s in samples} == set(Form)
    for s in samples:
        if s.form is Form.MCQ:
            assert 3 <= len(s.options) <= 4 and len(set(s.options)) == len(s.options)
            assert s.options[ord(s.answer_letter) - ord("A")] == s.answer
        elif s.form is Form.YN:
            assert s.answer in ("Yes", "No") and s.question.endswith("Please answer yes or no.")
        else:
            assert s.options == () and s.answer
        w, h = s.image.size
        assert 160 <= min(w, h) and max(w, h) <= 640


def test_yes_no_answers_are_balanced() -> None:
    answers = [s.answer for s in generate_samples(1, 200, SyntheticSpec(forms=(Form.YN,), min_side_px=200, max_side_px=400))]
    assert 70 <= answers.count("Yes") <= 130


def test_small_text_goes_on_large_canvases() -> None:
    spec = SyntheticSpec(kinds=(Kind.TEXT,), forms=(Form.VQA,), min_side_px=300, max_side_px=1500, small_text_fraction=1.0)
    for s in generate_samples(2, 6, spec):
        assert s.detail == "small" and max(s.image.size) >= 1000


def _shape_features(mask) -> tuple[float, float]:  # noqa: ANN001
    """(fill ratio of the bounding box, width / height) of one blob."""
    import numpy as np

    ys, xs = np.nonzero(mask)
    w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    return len(xs) / (w * h), w / h


def test_count_answer_matches_the_objects_drawn() -> None:
    # Independent check: find the blobs of the asked colour in the pixels, classify each blob's shape
    # by its fill ratio and aspect (prototypes: each shape drawn alone, large), count the asked shape.
    import numpy as np
    from PIL import Image, ImageDraw

    from mobile_mllm.eval.synthetic import COLOURS, SHAPES, _draw_shape

    protos = {}
    for shape in SHAPES:
        im = Image.new("RGB", (500, 500), (255, 255, 255))
        _draw_shape(ImageDraw.Draw(im), shape, 250, 250, 200, "red")
        protos[shape] = _shape_features((np.asarray(im) == np.array(COLOURS["red"])).all(axis=2))

    spec = SyntheticSpec(kinds=(Kind.COUNT,), forms=(Form.VQA,), min_side_px=400, max_side_px=800)
    for s in generate_samples(5, 25, spec):
        colour = next(c for c in COLOURS if f" {c} " in s.question)
        shape = next(sh for sh in SHAPES if f" {sh}s " in s.question)
        mask = (np.asarray(s.image) == np.array(COLOURS[colour])).all(axis=2)
        found = 0
        for blob in _blobs(mask):
            ratio, aspect = _shape_features(blob)
            nearest = min(SHAPES, key=lambda k: (protos[k][0] - ratio) ** 2 + (protos[k][1] - aspect) ** 2)
            found += nearest == shape
        assert found == int(s.answer), (s.id, s.question, found)


def _blobs(mask):  # noqa: ANN001, ANN202
    import numpy as np

    seen = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        blob = np.zeros_like(mask, dtype=bool)
        stack = [(y, x)]
        seen[y, x] = blob[y, x] = True
        while stack:
            cy, cx = stack.pop()
            for ny, nx in ((cy + 1, cx), (cy - 1, cx), (cy, cx + 1), (cy, cx - 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = blob[ny, nx] = True
                    stack.append((ny, nx))
        yield blob


def test_round_trip_mcq_generator_tsv_loader(tmp_path: Path) -> None:
    spec = SyntheticSpec(forms=(Form.MCQ,), min_side_px=200, max_side_px=500)
    samples = list(generate_samples(11, 10, spec))
    write_tsv(samples, tmp_path / "s.tsv")
    bench = load_benchmark(tmp_path / "s.tsv")
    assert len(bench.samples) == 10 and not bench.bad_rows
    for s, loaded in zip(samples, bench.samples):
        assert loaded.index == s.id and loaded.question == s.question
        assert tuple(loaded.options.values()) == s.options
        assert loaded.answer == s.answer_letter and loaded.options[loaded.answer] == s.answer
        assert (loaded.category, loaded.l2_category) == (s.kind.value, s.detail)
        assert decode_image(loaded.images[0]).tobytes() == s.image.tobytes()


def test_round_trip_circular_layout(tmp_path: Path) -> None:
    spec = SyntheticSpec(forms=(Form.MCQ,), min_side_px=200, max_side_px=400)
    samples = list(generate_samples(12, 4, spec))
    rows = write_tsv(samples, tmp_path / "c.tsv", circular=True)
    assert rows == sum(len(s.options) for s in samples)
    bench = load_benchmark(tmp_path / "c.tsv")
    by_group: dict[int, list] = {}
    for loaded in bench.samples:
        by_group.setdefault(loaded.g_index, []).append(loaded)
    for s in samples:
        group = by_group[s.id]
        assert len(group) == len(s.options)
        assert {g.index for g in group} == {s.id + k * 1_000_000 for k in range(len(s.options))}
        for g in group:
            assert g.options[g.answer] == s.answer  # rotated letter still points at the right text
            assert g.images == group[0].images  # rotations reuse the image through a pointer
        assert len({tuple(g.options.values()) for g in group}) == len(s.options)


def test_round_trip_vqa_and_yn(tmp_path: Path) -> None:
    vqa = list(generate_samples(13, 6, SyntheticSpec(forms=(Form.VQA,), min_side_px=200, max_side_px=400)))
    write_tsv(vqa, tmp_path / "v.tsv")
    for s, loaded in zip(vqa, load_benchmark(tmp_path / "v.tsv").samples):
        assert ast.literal_eval(loaded.answer) == [s.answer] * 10
    yn = list(generate_samples(13, 6, SyntheticSpec(forms=(Form.YN,), min_side_px=200, max_side_px=400)))
    write_tsv(yn, tmp_path / "y.tsv")
    assert [x.answer for x in load_benchmark(tmp_path / "y.tsv").samples] == [s.answer for s in yn]


def test_mixed_forms_or_circular_non_mcq_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="one TSV holds one question form"):
        write_tsv(generate_samples(0, 20, SMALL), tmp_path / "x.tsv")
    with pytest.raises(ConfigError, match="circular layout needs the mcq form"):
        write_tsv(generate_samples(0, 2, SyntheticSpec(forms=(Form.YN,), min_side_px=200, max_side_px=300)), tmp_path / "x.tsv", circular=True)


def test_spec_validation() -> None:
    with pytest.raises(ConfigError, match=r"max_side_px \(300\) must be >= synthetic.min_side_px \(400\)"):
        SyntheticSpec(min_side_px=400, max_side_px=300)
    with pytest.raises(ConfigError, match="min_side_px must be >= 160"):
        SyntheticSpec(min_side_px=100)


def test_circular_offset_grows_past_max_index() -> None:
    assert circular_offset(10) == 1_000_000
    assert circular_offset(1_000_000) == 10_000_000


def test_boxes_are_where_the_described_objects_are_drawn() -> None:
    # Independent check: the pixel at each box's centre has the colour the description names for it
    # (every shape covers its centre; shapes are drawn without antialiasing, in the exact RGB).
    from mobile_mllm.eval.synthetic import COLOURS

    spec = SyntheticSpec(kinds=(Kind.COLOUR, Kind.SHAPE, Kind.COUNT, Kind.POSITION, Kind.EXISTS), min_side_px=200,
                         max_side_px=640)
    for s in generate_samples(11, 60, spec):
        items = s.description.split(", ")
        assert len(s.boxes) == len(items), s.id
        for (x, y, _), item in zip(s.boxes, items):
            assert s.image.getpixel((int(x), int(y))) == COLOURS[item.split()[0]], (s.id, item)


def test_reading_order_lists_columns_left_to_right_and_stacked_objects_top_down() -> None:
    from mobile_mllm.eval.synthetic import reading_order

    # demo/sample.png's layout: a diamond on the left, a hexagon above a star further right; the star's
    # centre is 6 px left of the hexagon's, so plain left to right would list the star first.
    assert reading_order([(35, 130, 17), (266, 45, 17), (260, 155, 17)]) == [0, 1, 2]
    assert reading_order([(100, 50, 10), (40, 60, 10), (300, 10, 10)]) == [1, 0, 2]  # apart: by x
    # a column is anchored at its first object: the third overlaps the second but not the first
    assert reading_order([(100, 90, 20), (130, 10, 20), (170, 50, 20)]) == [1, 0, 2]
    spec = SyntheticSpec(kinds=(Kind.COUNT,), forms=(Form.VQA,), min_side_px=200, max_side_px=400)
    for s in generate_samples(12, 30, spec):  # the description's order is the reading order of its boxes
        assert reading_order(s.boxes) == list(range(len(s.boxes))), s.id
