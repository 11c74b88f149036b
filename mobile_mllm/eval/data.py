"""Read VLMEvalKit benchmark and prediction files from local paths (never downloads).

A benchmark is one TSV: ``index``, ``image`` (base64, or a short value naming another row's
``index`` whose image it reuses, or a list literal of several), ``question``, optional ``hint``,
option columns ``A``, ``B``, …, ``answer``, ``category``, ``l2-category``, ``split`` and extras per
benchmark. A prediction file has the same columns plus ``prediction`` (``.tsv`` or ``.xlsx``).

Cells are read the way VLMEvalKit's pandas loader reads them, because that changes scores: the
strings pandas treats as missing (``""``, ``NA``, ``None``, ``nan``, …) are missing, so an option
whose text is ``None`` is absent and a missing prediction scores as the text ``"nan"``. Column names
are lowercased except single capital letters (option columns), as VLMEvalKit's MCQ scorer does.

Rows that cannot be used (a missing required value, an undecodable image, a dangling image
pointer) raise :class:`~mobile_mllm.errors.EvalDataError` naming the file, line and index; with
``skip_bad_rows`` they are logged, listed in the result and left out.

Deliberately not here: running models, writing predictions (a later step), MMMU-style
interleaved images.
"""

from __future__ import annotations

import ast
import base64
import binascii
import csv
import io
import logging
import string
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mobile_mllm.errors import EvalDataError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = [
    "NA_VALUES",
    "BadRow",
    "Benchmark",
    "EvalSample",
    "Table",
    "check_table_file",
    "decode_image",
    "handle_bad_row",
    "load_benchmark",
    "read_table",
    "require_columns",
    "resolve_images",
]

NA_VALUES: frozenset[str] = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
        "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)
"""Cell texts pandas' ``read_csv``/``read_excel`` read as missing (and so does VLMEvalKit)."""

POINTER_MAX_CHARS = 64
"""An ``image`` value this short (and not empty) names another row's index instead of holding pixels."""

Row = dict[str, str | None]


@dataclass(frozen=True)
class Table:
    """A file's rows as text cells (``None`` = missing), with the 1-based file line of each row."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[Row, ...]
    lines: tuple[int, ...]

    def where(self, i: int) -> str:
        """``file:line (index X)`` for messages about row ``i``."""
        index = self.rows[i].get("index")
        return f"{self.path}:{self.lines[i]} (index {index})"


@dataclass(frozen=True)
class BadRow:
    """A row left out under ``skip_bad_rows``, and why."""

    path: str
    line: int
    index: str | None
    reason: str


@dataclass(frozen=True)
class EvalSample:
    """One benchmark question, images resolved, ready for a prompt builder."""

    index: int | str
    question: str
    images: tuple[str, ...]
    """Base64 images (pointers already followed); empty when the file uses ``image_path`` only."""
    image_paths: tuple[str, ...]
    options: Mapping[str, str]
    """Option letter -> text, letter order, absent options left out."""
    hint: str | None
    answer: str | None
    category: str | None
    l2_category: str | None
    split: str | None
    g_index: int | None
    """Circular group (MMBench): the original question's index; None outside circular sets."""
    extras: Mapping[str, str | None] = field(default_factory=dict)
    """Every other column of the row (e.g. ``image_path`` for MME, ``source``)."""


@dataclass(frozen=True)
class Benchmark:
    """A loaded benchmark: its samples and the rows skipped."""

    path: Path
    samples: tuple[EvalSample, ...]
    bad_rows: tuple[BadRow, ...]


# --------------------------------------------------------------------------- reading


def _normalise_column(name: str) -> str:
    name = name.strip()
    return name if (len(name) == 1 and name in string.ascii_uppercase) else name.lower()


def _cell(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value != value:  # NaN
        return None
    text = str(value)
    return None if text in NA_VALUES else text


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]], list[int]]:
    csv.field_size_limit(sys.maxsize)
    header: list[str] = []
    body: list[list[str]] = []
    lines: list[int] = []
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t")
        try:
            for record in reader:
                if not header:
                    header = record
                    continue
                if not any(record):
                    continue
                body.append(record)
                lines.append(reader.line_num)
        except UnicodeDecodeError as e:
            raise EvalDataError(f"{path} is not UTF-8 text ({e}); is it a renamed binary file?") from e
    return header, body, lines


def _read_xlsx(path: Path) -> tuple[list[str], list[list[object]], list[int]]:
    from openpyxl import load_workbook  # noqa: PLC0415  (only for .xlsx files)

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many types for a damaged workbook
        raise EvalDataError(f"{path} is not a readable .xlsx workbook ({e}); re-export it or save it as .tsv") from e
    try:
        rows = list(book.worksheets[0].iter_rows(values_only=True))
    finally:
        book.close()
    if not rows:
        return [], [], []
    header = ["" if v is None else str(v) for v in rows[0]]
    body, lines = [], []
    for n, record in enumerate(rows[1:], start=2):
        if all(v is None for v in record):
            continue
        body.append(list(record))
        lines.append(n)
    return header, body, lines


def check_table_file(path: str | Path) -> Path:
    """Refuse a path :func:`read_table` cannot read (missing, a folder, another suffix, 0 bytes) without reading it.

    Lets ``eval-score`` reject its inputs before it starts.

    Raises:
        EvalDataError: naming the path and what to pass instead.
    """
    p = Path(path)
    if not p.exists():
        raise EvalDataError(f"{p}: no such file; pass a local VLMEvalKit .tsv or .xlsx file (nothing is downloaded)")
    if not p.is_file():
        raise EvalDataError(f"{p} is a folder, not a .tsv or .xlsx file")
    if p.suffix.lower() not in (".tsv", ".xlsx"):
        raise EvalDataError(f"{p}: unsupported file type {p.suffix.lower()!r}; expected .tsv or .xlsx")
    if p.stat().st_size == 0:
        raise EvalDataError(f"{p} is empty (0 bytes): expected a header row with at least 'index'")
    return p


def read_table(path: str | Path) -> Table:
    """Read a ``.tsv`` or ``.xlsx`` file into text cells, as VLMEvalKit's loader would see them.

    Args:
        path (str | Path): the file.

    Returns:
        A :class:`Table`; missing cells (see :data:`NA_VALUES`) are None.

    Raises:
        EvalDataError: the file is missing, has an unknown suffix, no header, or a row with more
            cells than the header.
    """
    p = check_table_file(path)
    header, body, lines = _read_tsv(p) if p.suffix.lower() == ".tsv" else _read_xlsx(p)
    if not header:
        raise EvalDataError(f"{p} has no header row: expected one with at least 'index'")
    columns = tuple(_normalise_column(c) for c in header)
    rows: list[Row] = []
    for record, line in zip(body, lines):
        if len(record) > len(columns):
            raise EvalDataError(
                f"{p}:{line} has {len(record)} cells but the header has {len(columns)}; "
                "is a tab or newline inside a field unquoted?"
            )
        cells = [_cell(v) for v in record] + [None] * (len(columns) - len(record))
        rows.append(dict(zip(columns, cells)))
    return Table(path=p, columns=columns, rows=tuple(rows), lines=tuple(lines))


def require_columns(table: Table, needed: Iterable[str], purpose: str) -> None:
    """Raise EvalDataError naming every column ``purpose`` needs that ``table`` lacks."""
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise EvalDataError(
            f"{table.path} lacks column(s) {', '.join(repr(c) for c in missing)} needed for {purpose}; "
            f"it has: {', '.join(table.columns)}"
        )


def handle_bad_row(table: Table, i: int, reason: str, skip: bool, bad: list[BadRow]) -> None:
    """Raise for a bad row, or (``skip``) log it and record it in ``bad``."""
    message = f"{table.where(i)}: {reason}"
    if not skip:
        raise EvalDataError(message + "; fix the row or pass --skip-bad-rows to leave it out")
    logger.warning("skipping %s", message)
    bad.append(BadRow(str(table.path), table.lines[i], table.rows[i].get("index"), reason))


# --------------------------------------------------------------------------- images


def _as_list(value: str) -> list[str]:
    if len(value) > 1 and value[0] == "[" and value[-1] == "]":
        try:
            items = ast.literal_eval(value)
        except (ValueError, SyntaxError) as e:
            raise EvalDataError(f"image list {value[:40]!r}… is not a Python list literal") from e
        return [str(x) for x in items]
    return [value]


def resolve_images(table: Table) -> dict[str, list[str] | str]:
    """Map each row's index to its base64 image list, following short pointer values.

    A value of at most :data:`POINTER_MAX_CHARS` characters names the row whose image it reuses
    (MMBench stores each image once this way). Returns index -> list of base64 strings, or
    index -> an error message for a row whose pointer dangles.
    """
    if "image" not in table.columns:
        return {}
    by_index = {str(r.get("index")): (r.get("image") or "") for r in table.rows}
    out: dict[str, list[str] | str] = {}
    for key, value in by_index.items():
        if 0 < len(value) <= POINTER_MAX_CHARS:
            target = by_index.get(value)
            if target is None or len(target) <= POINTER_MAX_CHARS:
                out[key] = f"image {value!r} is a pointer to index {value!r}, which has no image of its own"
                continue
            value = target
        try:
            out[key] = _as_list(value) if value else []
        except EvalDataError as e:
            out[key] = str(e)
    return out


def decode_image(data: str, *, where: str = "") -> Image.Image:
    """Decode one base64 image (VLMEvalKit converts RGBA/P/LA to RGB; so do we).

    Raises:
        EvalDataError: naming ``where`` when the text is not base64 or not an image.
    """
    from PIL import Image, UnidentifiedImageError  # noqa: PLC0415

    try:
        raw = base64.b64decode(data, validate=False)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (binascii.Error, ValueError, OSError, UnidentifiedImageError) as e:
        prefix = f"{where}: " if where else ""
        raise EvalDataError(f"{prefix}undecodable image ({type(e).__name__}: {e})") from e
    if image.mode in ("RGBA", "P", "LA"):
        image = image.convert("RGB")
    return image


# --------------------------------------------------------------------------- benchmark


def _index_value(raw: str) -> int | str:
    try:
        return int(raw)
    except ValueError:
        return raw


def _options(row: Row) -> dict[str, str]:
    return {c: v for c in string.ascii_uppercase if (v := row.get(c)) is not None}


def load_benchmark(
    path: str | Path,
    *,
    skip_bad_rows: bool = False,
    check_images: bool = True,
    required: Sequence[str] = ("question",),
) -> Benchmark:
    """Load a VLMEvalKit benchmark TSV (or xlsx) into :class:`EvalSample` objects.

    Args:
        path (str | Path): the local file.
        skip_bad_rows (bool): log and leave out bad rows instead of raising. Default False.
        check_images (bool): decode every image now, so a damaged one is found before a long run.
            Default True.
        required (Sequence[str]): columns every row must have a value in (``index`` always).
            Default ("question",).

    Returns:
        The samples in file order, and the rows skipped.

    Raises:
        EvalDataError: a required column is missing from the file, or (without ``skip_bad_rows``)
            a row lacks a required value or has an undecodable image or dangling pointer.
    """
    table = read_table(path)
    require_columns(table, ("index", *required), "a benchmark")
    if "image" not in table.columns and "image_path" not in table.columns:
        raise EvalDataError(f"{table.path} has neither an 'image' nor an 'image_path' column")
    images = resolve_images(table)
    indices = [r.get("index") or "" for r in table.rows]
    all_int = all(_is_int(x) for x in indices)
    bad: list[BadRow] = []
    samples: list[EvalSample] = []
    known = {"index", "image", "question", "hint", "answer", "category", "l2-category", "split", "g_index"}
    for i, row in enumerate(table.rows):
        empty = [c for c in ("index", *required) if row.get(c) is None]
        if empty:
            handle_bad_row(table, i, f"no value in column(s) {', '.join(empty)}", skip_bad_rows, bad)
            continue
        key = str(row["index"])
        imgs = images.get(key, [])
        if isinstance(imgs, str):
            handle_bad_row(table, i, imgs, skip_bad_rows, bad)
            continue
        if "image" in table.columns and not imgs and row.get("image_path") is None:
            handle_bad_row(table, i, "empty 'image' cell and no 'image_path'", skip_bad_rows, bad)
            continue
        if check_images:
            try:
                for img in imgs:
                    decode_image(img)
            except EvalDataError as e:
                handle_bad_row(table, i, str(e), skip_bad_rows, bad)
                continue
        g_index = row.get("g_index")
        samples.append(
            EvalSample(
                index=int(key) if all_int else key,
                question=row["question"] or "",
                images=tuple(imgs),
                image_paths=tuple(_as_list(row["image_path"])) if row.get("image_path") else (),
                options=_options(row),
                hint=row.get("hint"),
                answer=row.get("answer"),
                category=row.get("category"),
                l2_category=row.get("l2-category"),
                split=row.get("split"),
                g_index=int(float(g_index)) if g_index is not None else None,
                extras={k: v for k, v in row.items() if k not in known and not _is_option(k)},
            )
        )
    logger.info("%s: %d samples, %d bad rows skipped", table.path, len(samples), len(bad))
    return Benchmark(path=table.path, samples=tuple(samples), bad_rows=tuple(bad))


def _is_option(column: str) -> bool:
    return len(column) == 1 and column in string.ascii_uppercase


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
