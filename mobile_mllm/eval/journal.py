"""Append-only result files that survive a killed process: the prediction TSV and its stats lines.

A benchmark run appends one record per answered question and ``fsync``s it, so a run stopped by
Ctrl-C, ``kill -9``, a lost device or a power cut keeps every answer it had. On the next run the
file is reopened, a half-written last record (the process died inside ``write``) is cut off, and
the complete records tell which questions are done: nothing is lost, nothing is answered twice,
and a partial record is never counted.

* :class:`PredictionJournal` is the VLMEvalKit-layout prediction file: a TSV with the benchmark's
  columns (``image`` left out, as VLMEvalKit's ``infer_data_job`` drops it) plus ``prediction``,
  readable by pandas and so by VLMEvalKit's own scorers. A record may span several lines (a
  prediction holding a newline is quoted), so completeness is decided by parsing, not by newlines.
* :class:`StatsJournal` holds one JSON object per line (index, tiles, image tokens, timings).

Deliberately not here: what the records mean (``run.py``), scoring (``score.py``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mobile_mllm.errors import EvalDataError

logger = logging.getLogger(__name__)

__all__ = ["PredictionJournal", "StatsJournal", "tsv_record"]


def tsv_record(cells: Sequence[str | None]) -> str:
    """One TSV record as the csv module quotes it (``None`` -> empty cell, which pandas reads as NaN).

    Example:
        >>> tsv_record(["1", "a\\tb", None])
        '1\\t"a\\tb"\\t\\n'
    """
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t", lineterminator="\n").writerow(["" if c is None else c for c in cells])
    return buf.getvalue()


def _append(path: Path, text: str) -> None:
    """Append ``text`` with one ``write`` and make it durable before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        data = text.encode("utf-8")
        written = os.write(fd, data)
        if written != len(data):  # a full disk: leave a partial record the next open will cut off
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate(path: Path, size: int, what: str) -> None:
    current = path.stat().st_size
    if size < current:
        logger.warning("%s: cutting off %d bytes of a half-written %s (the run was interrupted)", path, current - size, what)
        with path.open("r+b") as fh:
            fh.truncate(size)
            fh.flush()
            os.fsync(fh.fileno())


class PredictionJournal:
    """A VLMEvalKit prediction TSV opened for appending, with the records already in it.

    Args:
        path (Path): the file (created with its header when missing).
        columns (Sequence[str]): the header; ``index`` and ``prediction`` must be among them.

    Raises:
        EvalDataError: the existing file has another header (another benchmark or layout).
    """

    def __init__(self, path: str | Path, columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self._index = self.columns.index("index")
        self._prediction = self.columns.index("prediction")
        self.done: dict[str, str] = {}
        """index -> prediction of every complete record, in file order."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(tsv_record(self.columns), encoding="utf-8")
            os.replace(tmp, self.path)
        else:
            self._recover()

    def _recover(self) -> None:
        raw = self.path.read_bytes()
        text = raw[: raw.rfind(b"\n") + 1].decode("utf-8", errors="strict")  # bytes after the last newline: partial
        lines = re.findall(r"[^\n]*\n", text)  # not splitlines: it also splits at \x0c, \x1c, \u2028…
        reader = csv.reader(iter(lines), delimiter="\t", strict=True)
        good_bytes, consumed = 0, 0
        header: list[str] | None = None
        try:
            for record in reader:
                used = reader.line_num - consumed
                chunk = "".join(lines[consumed : consumed + used])
                consumed += used
                if header is None:
                    header = record
                    if tuple(record) != self.columns:
                        raise EvalDataError(
                            f"{self.path} holds predictions with other columns ({', '.join(record)}); "
                            f"expected {', '.join(self.columns)}: write the results to another directory"
                        )
                elif len(record) != len(self.columns):
                    logger.warning("%s: record at line %d has %d cells, expected %d; dropping it and what follows",
                                   self.path, reader.line_num, len(record), len(self.columns))
                    break
                else:
                    key = record[self._index]
                    if key in self.done:
                        logger.warning("%s: index %s appears twice; keeping the first", self.path, key)
                    else:
                        self.done[key] = record[self._prediction]
                good_bytes += len(chunk.encode("utf-8"))
        except csv.Error as e:  # EOF inside a quoted cell: the last record was cut mid-write
            logger.debug("%s: %s", self.path, e)
        if header is None:  # even the header was cut: start over
            _truncate(self.path, 0, "header")
            _append(self.path, tsv_record(self.columns))
            return
        _truncate(self.path, good_bytes, "prediction record")

    def append(self, row: Mapping[str, str | None]) -> None:
        """Append one record (cells by column name; missing ones empty) durably."""
        key = str(row.get("index"))
        if key in self.done:
            raise EvalDataError(f"{self.path}: index {key} already has a prediction (internal error: answered twice)")
        _append(self.path, tsv_record([row.get(c) for c in self.columns]))
        self.done[key] = str(row.get("prediction") or "")


class StatsJournal:
    """JSON lines keyed by ``index``: the per-question measurements beside the prediction file.

    Written before the prediction record, so a question's stats exist whenever its prediction
    does; a question re-asked after a crash between the two writes gets a second line, and the
    last one wins.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.records: dict[str, dict[str, Any]] = {}
        if not self.path.exists():
            self.path.touch()
            return
        raw = self.path.read_bytes()
        good = 0
        for line in raw.splitlines(keepends=True):
            if not line.endswith(b"\n"):
                break
            try:
                record = json.loads(line)
            except ValueError:
                break
            self.records[str(record.get("index"))] = record
            good += len(line)
        _truncate(self.path, good, "stats line")

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one JSON line durably."""
        _append(self.path, json.dumps(dict(record), separators=(",", ":")) + "\n")
        self.records[str(record.get("index"))] = dict(record)
