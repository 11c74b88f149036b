"""``mobile-mllm eval`` and ``eval-compare`` as real commands: killed and resumed, bad input, comparison."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mobile_mllm.eval.suite import SuiteConfig, make_bench
from mobile_mllm.eval.synthetic import Form, SyntheticSpec


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mobile_mllm.cli", *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def _records(tsv: Path) -> list[str]:
    csv.field_size_limit(sys.maxsize)
    with tsv.open(encoding="utf-8", newline="") as fh:
        return [r["index"] for r in csv.DictReader(fh, delimiter="\t")]


@pytest.fixture(scope="module")
def yn_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "kill_yn.tsv"
    make_bench(SuiteConfig(seed=11, count=24, spec=SyntheticSpec(forms=(Form.YN,), min_side_px=160, max_side_px=240)), out)
    return out.with_suffix(".toml")


def _stop_after(proc: subprocess.Popen, tsv: Path, records: int, sig: int) -> int:
    """Send ``sig`` once the prediction file holds ``records`` answers; return how many it held then."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if tsv.is_file() and len(_records(tsv)) >= records:
            proc.send_signal(sig)
            break
        time.sleep(0.005)
    proc.wait(timeout=120)
    return len(_records(tsv))


@pytest.mark.slow
def test_killed_and_interrupted_runs_resume_to_the_uninterrupted_score(tiny_dir: Path, yn_suite: Path, tmp_path: Path) -> None:
    args = [str(tiny_dir), "--data", str(yn_suite), "--max-new-tokens", "6"]
    out = tmp_path / "resumed"
    tsv = out / "kill_yn" / "model_kill_yn.tsv"
    cmd = [sys.executable, "-m", "mobile_mllm.cli", "eval", *args, "-o", str(out)]
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after_kill = _stop_after(first, tsv, 1, signal.SIGKILL)  # kill -9: no handler runs
    assert first.returncode == -signal.SIGKILL
    assert 1 <= after_kill < 24, "the run must be killed mid-way for this test to mean anything"
    with tsv.open("ab") as fh:  # and as if it died inside write(): half a record
        fh.write(b"9999\tIs there")
    # SIGINT as from a terminal, even when pytest runs as a background job that inherited it ignored
    second = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    after_interrupt = _stop_after(second, tsv, after_kill + 2, signal.SIGINT)  # Ctrl-C
    assert second.returncode == 130, second.stderr.read()
    assert "interrupted" in second.stderr.read()
    assert after_kill < after_interrupt < 24
    final = _cli("eval", *args, "-o", str(out), "--json")
    assert final.returncode == 0, final.stderr
    indices = _records(tsv)
    assert Counter(indices) == Counter(str(i) for i in range(24))  # each question exactly once, the partial one gone
    resumed = json.loads(final.stdout)["benchmarks"]["kill_yn"]
    assert resumed["num_resumed"] == after_interrupt

    clean = _cli("eval", *args, "-o", str(tmp_path / "clean"), "--json")
    assert clean.returncode == 0, clean.stderr
    uninterrupted = json.loads(clean.stdout)["benchmarks"]["kill_yn"]
    assert resumed["headline"] == uninterrupted["headline"]
    answers = {tuple(r) for r in csv.reader((tmp_path / "clean" / "kill_yn" / "model_kill_yn.tsv").open(), delimiter="\t")}
    assert {tuple(r) for r in csv.reader(tsv.open(), delimiter="\t")} == answers  # same rows, any order

    compare = _cli("eval-compare", str(tmp_path / "clean"), str(out), "--label", "clean", "--label", "resumed",
                   "-o", str(tmp_path / "cmp"))
    assert compare.returncode == 0, compare.stderr
    assert "| resumed | " in compare.stdout and "| 24 | 0 / 0 | 1 |" in compare.stdout  # all shared, no discordant pair
    assert (tmp_path / "cmp" / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _missing_columns(tmp: Path) -> Path:
    p = tmp / "MMStar.tsv"
    p.write_text("index\timage\tanswer\n0\txx\tA\n", encoding="utf-8")
    return p


def _unknown_type(tmp: Path) -> Path:
    p = tmp / "mystery.tsv"
    p.write_text("index\timage\tquestion\tanswer\n0\txx\tWhat?\tred\n", encoding="utf-8")
    return p


@pytest.mark.parametrize(
    ("make", "words", "code"),
    [
        (_missing_columns, "lacks column(s) 'question' needed for a benchmark", 10),
        (_unknown_type, "cannot tell how to score mystery.tsv", 10),
    ],
)
def test_bad_data_is_one_clear_line(tmp_path: Path, make, words: str, code: int) -> None:  # noqa: ANN001
    proc = _cli("eval", "--data", str(make(tmp_path)), "-o", str(tmp_path / "out"))
    assert proc.returncode == code
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("mobile-mllm eval: error:")


def test_a_text_only_model_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "llm").mkdir()
    (tmp_path / "llm" / "config.json").write_text('{"model_type": "qwen2"}')
    data = tmp_path / "MMStar.tsv"
    data.write_text("index\timage\tquestion\tA\tB\tanswer\n0\txx\tWhat?\tred\tblue\tA\n", encoding="utf-8")
    proc = _cli("eval", str(tmp_path / "llm"), "--data", str(data), "-o", str(tmp_path / "out"))
    assert proc.returncode == 4 and "Traceback" not in proc.stderr
    assert "is not a vision-language model" in proc.stderr
