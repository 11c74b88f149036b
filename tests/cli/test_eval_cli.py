"""``mobile-mllm make-bench`` and ``mobile-mllm eval-score`` run as real commands in a subprocess."""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _read_tsv(path: Path) -> tuple[list[str], list[list[str]]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    return rows[0], rows[1:]


def _write_predictions(path: Path, header: list[str], rows: list[list[str]], predict) -> Path:  # noqa: ANN001
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow([*header, "prediction"])
        for r in rows:
            w.writerow([*r, predict(dict(zip(header, r)))])
    return path


@pytest.fixture(scope="module")
def mcq_bench(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "quiz_circular.tsv"
    proc = _cli("make-bench", "--seed", "3", "--count", "8", "--forms", "mcq", "--circular", "--max-side-px", "512", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "dataset type mcq-circular" in proc.stdout
    return out


def test_make_bench_is_deterministic_and_writes_the_suite_record(tmp_path: Path, mcq_bench: Path) -> None:
    again = tmp_path / "again.tsv"
    proc = _cli("make-bench", "--suite", str(mcq_bench.with_suffix(".toml")), "-o", str(again))
    assert proc.returncode == 0, proc.stderr
    assert hashlib.sha256(again.read_bytes()).digest() == hashlib.sha256(mcq_bench.read_bytes()).digest()
    record = mcq_bench.with_suffix(".toml").read_text()
    assert 'dataset_type = "mcq-circular"' in record and "seed = 3" in record


def test_eval_score_perfect_and_one_wrong_rotation(tmp_path: Path, mcq_bench: Path) -> None:
    header, rows = _read_tsv(mcq_bench)
    first_rotation = next(r for r in rows if int(r[0]) >= 1_000_000)
    wrong = {first_rotation[0]}
    other = {"A": "B", "B": "C", "C": "A", "D": "A"}
    pred = _write_predictions(
        tmp_path / "model_quiz_circular.tsv", header, rows,
        lambda r: other[r["answer"]] if r["index"] in wrong else f"The answer is {r['answer']}.",
    )
    out = tmp_path / "scores"
    proc = _cli("eval-score", str(pred), "--data", str(mcq_bench), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "Overall: 87.50" in proc.stdout  # 7 of 8 questions have every rotation right
    scores = json.loads((out / "scores.json").read_text())
    assert scores["dataset_type"] == "mcq-circular" and scores["headline"]["Overall"] == pytest.approx(87.5)
    with (out / "details.csv").open() as fh:
        details = list(csv.DictReader(fh))
    assert [d["index"] for d in details if d["hit"] == "0"] == [str(int(first_rotation[0]) % 1_000_000)]
    assert (out / "acc.csv").is_file()


def test_eval_score_xlsx_vqa_with_explicit_type(tmp_path: Path) -> None:
    from openpyxl import Workbook

    bench = tmp_path / "words.tsv"
    assert _cli("make-bench", "--seed", "4", "--count", "6", "--forms", "vqa", "--kinds", "text", "--max-side-px", "600",
                "-o", str(bench)).returncode == 0
    header, rows = _read_tsv(bench)
    wb = Workbook()
    wb.active.append(["index", "prediction"])
    for i, r in enumerate(rows):
        answer = ast.literal_eval(r[header.index("answer")])[0]
        wb.active.append([int(r[0]), answer.upper() + "." if i % 2 == 0 else "wrong"])
    wb.save(tmp_path / "phone.xlsx")
    proc = _cli("eval-score", str(tmp_path / "phone.xlsx"), "--data", str(bench), "--dataset-type", "textvqa",
                "-o", str(tmp_path / "o"), "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["headline"]["Overall"] == pytest.approx(50.0)


def test_eval_score_bad_row_exit_code_and_skip(tmp_path: Path) -> None:
    pred = tmp_path / "POPE.tsv"
    pred.write_text("index\tcategory\tanswer\tprediction\n1\trandom\tYes\tyes\n2\trandom\t\tno\n3\tpopular\tNo\tno\n")
    proc = _cli("eval-score", str(pred), "-o", str(tmp_path / "o"))
    assert proc.returncode == 10
    assert "POPE.tsv:3 (index 2): no value in column(s) answer" in proc.stderr and "--skip-bad-rows" in proc.stderr
    assert proc.stdout == ""
    proc = _cli("eval-score", str(pred), "--skip-bad-rows", "-o", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "skipped 1 bad row(s)" in proc.stdout
    scores = json.loads((tmp_path / "o" / "scores.json").read_text())
    assert scores["dataset_type"] == "pope" and scores["bad_rows"][0]["index"] == "2"


def test_make_bench_defaults_work_and_report_once(tmp_path: Path) -> None:
    # The defaults used to fail ("a suite TSV holds one question form") and "wrote ..." came on stdout and stderr.
    proc = _cli("make-bench", "--count", "3", "-o", str(tmp_path / "x.tsv"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"wrote {tmp_path / 'x.tsv'} (3 rows,") and "dataset type mcq)" in proc.stdout
    assert "wrote" not in proc.stderr
    assert 'forms = ["mcq"]' in (tmp_path / "x.toml").read_text()


def test_make_bench_errors(tmp_path: Path) -> None:
    proc = _cli("make-bench", "--count", "3", "--forms", "mcq", "yn", "-o", str(tmp_path / "x.tsv"))
    assert proc.returncode == 2 and "a suite TSV holds one question form" in proc.stderr
    proc = _cli("make-bench")
    assert proc.returncode == 2 and proc.stderr == "mobile-mllm make-bench: error: make-bench needs -o FILE.tsv (or --suite SUITE.toml to regenerate a suite)\n"
    proc = _cli("make-bench", "--forms", "mcq", "--kinds", "colour", "smell", "-o", str(tmp_path / "x.tsv"))
    assert proc.returncode == 2 and "'smell' is not one of" in proc.stderr


def test_eval_score_missing_file(tmp_path: Path) -> None:
    proc = _cli("eval-score", str(tmp_path / "none.xlsx"), "-o", str(tmp_path / "o"))
    assert proc.returncode == 10 and "no such file" in proc.stderr


def test_eval_score_takes_vlmevalkit_spellings_of_the_type(tmp_path: Path) -> None:
    pred = tmp_path / "answers.tsv"  # a name that identifies no benchmark: the type must be given
    pred.write_text("index\tquestion\tanswer\tprediction\n1\tq\tYes\tyes\n2\tq\tNo\tyes\n")
    proc = _cli("eval-score", str(pred), "-o", str(tmp_path / "o"))
    assert proc.returncode == 10 and "name 'answers' identifies no known benchmark" in proc.stderr
    proc = _cli("eval-score", str(pred), "--dataset-type", "Y/N", "-o", str(tmp_path / "o"), "--json")
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert scores["dataset_type"] == "yn" and scores["headline"]["Overall"] == pytest.approx(50.0)
