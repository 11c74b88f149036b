"""Loading VLMEvalKit TSV/xlsx files: images, pointers, options, NA cells, bad rows."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.data import decode_image, load_benchmark, read_table


def png_b64(colour: tuple[int, int, int], size: tuple[int, int] = (80, 60), mode: str = "RGB") -> str:
    buf = io.BytesIO()
    Image.new(mode, size, colour if mode == "RGB" else (*colour, 128)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def write_tsv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    path.write_text("\n".join("\t".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    return path


HEADER = ["index", "image", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "split"]


def test_loads_images_pointers_options_and_metadata(tmp_path: Path) -> None:
    red, blue = png_b64((255, 0, 0)), png_b64((0, 0, 255), mode="RGBA")
    f = write_tsv(tmp_path / "b.tsv", HEADER, [
        ["0", red, "Colour?", "A hint", "red", "blue", "", "", "A", "colour", "perception", "dev"],
        ["1", "0", "Same image?", "", "yes", "no", "None", "NA", "A", "colour", "perception", "dev"],  # pointer to 0
        ["1000000", "0", "Colour?", "nan", "blue", "red", "", "", "B", "colour", "perception", "dev"],
        ["2", blue, "Blue?", "", "x", "y", "z", "w", "D", "colour", "perception", "test"],
    ])
    bench = load_benchmark(f)
    s0, s1, s_rot, s2 = bench.samples
    assert s0.index == 0 and s0.hint == "A hint" and dict(s0.options) == {"A": "red", "B": "blue"}
    assert s1.images == s0.images  # pointer followed
    assert dict(s1.options) == {"A": "yes", "B": "no"}  # 'None' and 'NA' are missing, as pandas reads them
    assert s_rot.hint is None and s_rot.index == 1_000_000
    assert (s2.category, s2.l2_category, s2.split, s2.answer) == ("colour", "perception", "test", "D")
    img = decode_image(s2.images[0])
    assert img.mode == "RGB" and img.size == (80, 60)  # RGBA converted, as VLMEvalKit does
    assert decode_image(s0.images[0]).getpixel((3, 3)) == (255, 0, 0)


def test_string_indices_stay_strings(tmp_path: Path) -> None:
    f = write_tsv(tmp_path / "h.tsv", ["index", "image", "question"], [["VS_chart_0_0_0_0", png_b64((1, 2, 3)), "q"]])
    assert load_benchmark(f).samples[0].index == "VS_chart_0_0_0_0"


def test_image_list_literal(tmp_path: Path) -> None:
    a, b = png_b64((1, 1, 1)), png_b64((2, 2, 2))
    f = write_tsv(tmp_path / "m.tsv", ["index", "image", "question"], [["5", repr([a, b]), "two images"]])
    assert load_benchmark(f).samples[0].images == (a, b)


def test_missing_column_is_an_error_naming_it(tmp_path: Path) -> None:
    f = write_tsv(tmp_path / "b.tsv", ["index", "image"], [["0", png_b64((0, 0, 0))]])
    with pytest.raises(EvalDataError, match=r"lacks column\(s\) 'question'"):
        load_benchmark(f)


def test_undecodable_image_names_the_row(tmp_path: Path) -> None:
    good = png_b64((0, 0, 0))
    broken = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20).decode()
    f = write_tsv(tmp_path / "b.tsv", ["index", "image", "question"], [["0", good, "q"], ["7", broken, "q"], ["8", good, "q"]])
    with pytest.raises(EvalDataError, match=r"b\.tsv:3 \(index 7\): undecodable image.*--skip-bad-rows"):
        load_benchmark(f)
    bench = load_benchmark(f, skip_bad_rows=True)
    assert [s.index for s in bench.samples] == [0, 8]
    assert [(b.line, b.index) for b in bench.bad_rows] == [(3, "7")]
    assert "undecodable image" in bench.bad_rows[0].reason


def test_missing_value_and_dangling_pointer_are_bad_rows(tmp_path: Path) -> None:
    good = png_b64((0, 0, 0))
    f = write_tsv(tmp_path / "b.tsv", ["index", "image", "question"], [["0", good, ""], ["1", "99", "q"], ["2", good, "q"]])
    with pytest.raises(EvalDataError, match=r"index 0\): no value in column\(s\) question"):
        load_benchmark(f)
    bench = load_benchmark(f, skip_bad_rows=True)
    assert [s.index for s in bench.samples] == [2]
    assert "pointer to index '99'" in bench.bad_rows[1].reason


def test_row_with_too_many_cells(tmp_path: Path) -> None:
    f = write_tsv(tmp_path / "b.tsv", ["index", "question"], [["0", "q", "extra"]])
    with pytest.raises(EvalDataError, match=r"b\.tsv:2 has 3 cells but the header has 2"):
        read_table(f)


def test_xlsx_matches_tsv(tmp_path: Path) -> None:
    from openpyxl import Workbook

    rows = [["index", "question", "A", "B", "answer", "prediction"], [1, "q1", "cat", "dog", "A", "A"], [2, "q2", 3, None, "B", None]]
    wb = Workbook()
    for r in rows:
        wb.active.append(r)
    wb.save(tmp_path / "p.xlsx")
    table = read_table(tmp_path / "p.xlsx")
    assert table.columns == ("index", "question", "A", "B", "answer", "prediction")
    assert table.rows[1] == {"index": "2", "question": "q2", "A": "3", "B": None, "answer": "B", "prediction": None}
    assert table.lines == (2, 3)


def test_unknown_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="no such file"):
        read_table(tmp_path / "nope.tsv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(EvalDataError, match=r"unsupported file type '\.json'"):
        read_table(tmp_path / "x.json")
