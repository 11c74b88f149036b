"""Every subcommand against a table of hostile inputs: documented exit code, one line on stderr, no traceback, nothing half-written.

One row per (command, bad input) in :data:`CASES`; a new subcommand is covered by adding rows
(its argv with ``{placeholders}`` from :func:`inputs`, the error family, a message fragment and
the paths that must not appear). The expected exit code is read from the README's exit-code
table, and :func:`test_readme_exit_code_table_matches_errors_py` keeps that table equal to
``mobile_mllm/errors.py``.

Most rows run in-process (``mobile_mllm.cli.main(argv)``, which returns the exit code, with
stdout/stderr captured): each CLI subprocess costs seconds of imports on a 2-core machine.
:data:`SUBPROCESS_CASES` repeats a representative row per command family as a real process, and
the Ctrl-C case interrupts a real ``export``.
"""

from __future__ import annotations

import re
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobile_mllm import cli, errors

README = Path(__file__).resolve().parents[2] / "README.md"
ERROR_LINE = re.compile(r"^mobile-mllm [a-z-]+: error: ")


def documented_exit_codes() -> dict[str, int]:
    """``{error type or 'interrupted'/'success': code}`` from the README's exit-code table."""
    codes: dict[str, int] = {}
    for line in README.read_text(encoding="utf-8").splitlines():
        row = re.match(r"^\|\s*(\d+)\s*\|([^|]*)\|([^|]*)\|$", line)
        if row:
            code, meaning, types = int(row[1]), row[2].strip(), row[3]
            for name in re.findall(r"`(\w+)`", types):
                codes[name] = code
            if "interrupted" in meaning:
                codes["interrupted"] = code
            if meaning == "success":
                codes["success"] = code
    return codes


def test_readme_exit_code_table_matches_errors_py() -> None:
    codes = documented_exit_codes()
    families = {name: cls for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, errors.MobileMLLMError)}
    assert {name: cls.exit_code for name, cls in families.items()} == {n: c for n, c in codes.items() if n in families}
    assert set(families) <= set(codes), f"error types missing from README's exit-code table: {set(families) - set(codes)}"
    assert codes["interrupted"] == 130 and codes["success"] == 0


# --------------------------------------------------------------------------- the hostile inputs


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, tiny_dir: Path) -> dict[str, str]:
    """Paths of every bad input (and a few good ones) by placeholder name."""
    d = tmp_path_factory.mktemp("hostile")
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8))
    noisy.save(d / "ok.jpg", quality=90)
    data = (d / "ok.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) * 6 // 10])  # header intact, scan data cut
    (d / "text.png").write_text("hello, I am not a picture\n")
    (d / "empty.png").write_bytes(b"")
    (d / "folder.png").mkdir()
    Image.new("1", (10000, 10000)).save(d / "bomb.png")  # 12 kB on disk, 100 M pixels > max_pixels
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)  # a PNG header claiming 0 x 10 pixels
    (d / "zero.png").write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr)))
    Image.new("L", (1, 20000), 200).save(d / "strip.png")
    (d / "a_file").write_text("a regular file where a folder should be\n")
    (d / "not_a_model").mkdir()
    (d / "other_model").mkdir()
    (d / "other_model" / "config.json").write_text('{"model_type": "bert"}')
    (d / "folder.toml").mkdir()
    (d / "empty_suite.toml").write_text("")
    (d / "binary.tsv").write_bytes(bytes(range(128, 256)) * 4)
    (d / "empty.tsv").write_bytes(b"")
    (d / "preds.tsv").write_text("index\tquestion\tA\tB\tanswer\tprediction\n1\tq\tcat\tdog\tA\tA\n")
    names = {p.name.replace(".", "_"): str(p) for p in d.iterdir()}  # ok.jpg -> {ok_jpg}
    return {
        **names, "missing": str(d / "missing.png"), "missing_tsv": str(d / "missing.tsv"),
        "missing_toml": str(d / "missing.toml"), "under_file": str(d / "a_file" / "out"),
        "fresh": str(d / "fresh"), "tiny": str(tiny_dir), "long_prompt": "describe the red square " * 200,
    }


@dataclass(frozen=True)
class Case:
    """One command run on one bad input, and what must come of it."""

    id: str
    argv: tuple[str, ...]
    """Command line; ``{name}`` placeholders come from :func:`inputs`."""
    family: str
    """The error type whose documented exit code is expected ('success' for a run that must work)."""
    message: str = ""
    """A fragment of the error line (or, for 'success', of stdout)."""
    absent: tuple[str, ...] = ()
    """Placeholders of paths that must not exist afterwards (outputs a failed command must not leave)."""
    after_logs: bool = False
    """The problem shows only after the job has started (the prompt's token count needs the loaded
    model; a file's content needs reading it), so INFO lines (config, model load) may precede the
    error line. Input that can be checked up front must leave the error line alone on stderr."""


IMAGE_FILES = {  # placeholder -> what the error line says
    "missing": "image file not found", "folder_png": "is not a file", "empty_png": "is empty (0 bytes)",
    "truncated_jpg": "truncated or corrupt", "text_png": "not a readable image file", "bomb_png": "image is too large",
    "zero_png": "not a readable image file",
}
RUN = ("run", "{tiny}", "--max-new-tokens", "2", "--max-context-len", "512")

CASES: list[Case] = [
    # grid: an image file, a size, or MODEL
    *(Case(f"grid-{name}", ("grid", "{" + name + "}"), "ImageError", msg) for name, msg in IMAGE_FILES.items()),
    Case("grid-zero-size", ("grid", "0x10"), "ConfigError", "bad image size '0x10'"),
    Case("grid-1x20000-file", ("grid", "{strip_png}", "--json"), "success", '"image": [\n    1,\n    20000\n  ]'),
    Case("grid-1x20000-every-policy", ("grid", "1x20000", "--policy", "internvl", "--max-tiles", "12"), "success", "grid: [1, 12]"),
    Case("grid-wrong-model", ("grid", "{not_a_model}", "100x100"), "ModelLoadError", "missing config.json"),
    Case("grid-unknown-model", ("grid", "{other_model}", "100x100"), "UnsupportedModelError", "no family recognises model_type 'bert'"),
    Case("grid-nan-alpha", ("grid", "100x100", "--alpha", "nan"), "ConfigError", "alpha must be a finite number"),
    # run: the image, the prompt, the model
    *(Case(f"run-{name}", (*RUN, "--image", "{" + name + "}", "--prompt", "q"), "ImageError", msg) for name, msg in IMAGE_FILES.items()),
    Case("run-1x20000", (*RUN, "--image", "{strip_png}", "--prompt", "What is it?", "--json"), "success", '"stop_reason"'),
    Case("run-long-prompt", (*RUN, "--prompt", "{long_prompt}", "--max-context-len", "64"), "ContextOverflowError", "max_context_len 64", after_logs=True),
    Case("run-empty-prompt", (*RUN, "--prompt", ""), "ConfigError", "the question is empty"),
    Case("run-blank-prompt-with-image", (*RUN, "--image", "{ok_jpg}", "--prompt", " \t "), "ConfigError", "image-only prompt is not defined"),
    Case("run-blank-follow-up", (*RUN, "--prompt", "q", "--follow-up", " "), "ConfigError", "the question is empty"),
    Case("run-wrong-model", ("run", "{not_a_model}", "--prompt", "q"), "ModelLoadError", "missing config.json"),
    Case("run-model-is-a-file", ("run", "{a_file}", "--prompt", "q"), "ModelLoadError", "is a file; MODEL is a model directory"),
    Case("run-missing-model", ("run", "{missing}", "--prompt", "q"), "ModelLoadError", "model directory not found"),
    Case("run-unknown-builtin", ("run", "builtin:nope", "--prompt", "q"), "UnsupportedModelError", "no built-in model 'nope'"),
    # init-model: the output
    Case("init-model-unwritable", ("init-model", "--preset", "tiny", "-o", "{under_file}"), "OutputError", "is a file, not a folder"),
    Case("init-model-output-is-a-file", ("init-model", "--preset", "tiny", "-o", "{a_file}"), "OutputError", "it exists and is a file"),
    # make-bench: -o, the suite
    Case("make-bench-no-output", ("make-bench",), "ConfigError", "make-bench needs -o FILE.tsv"),
    Case("make-bench-unwritable", ("make-bench", "-o", "{under_file}.tsv"), "OutputError", "is a file, not a folder"),
    Case("make-bench-output-is-a-folder", ("make-bench", "-o", "{folder_png}"), "OutputError", "it exists and is a folder"),
    Case("make-bench-missing-suite", ("make-bench", "--suite", "{missing_toml}"), "ConfigError", "config file not found"),
    Case("make-bench-suite-is-a-folder", ("make-bench", "--suite", "{folder_toml}"), "ConfigError", "cannot read config file"),
    Case("make-bench-empty-suite", ("make-bench", "--suite", "{empty_suite_toml}"), "ConfigError", "names no tsv file; pass -o"),
    # eval-score: the predictions, the output
    Case("eval-score-missing", ("eval-score", "{missing_tsv}", "-o", "{fresh}"), "EvalDataError", "no such file", ("fresh",)),
    Case("eval-score-folder", ("eval-score", "{folder_png}", "-o", "{fresh}"), "EvalDataError", "is a folder", ("fresh",)),
    Case("eval-score-empty", ("eval-score", "{empty_tsv}", "-o", "{fresh}"), "EvalDataError", "is empty (0 bytes)", ("fresh",)),
    Case("eval-score-image-renamed", ("eval-score", "{text_png}", "-o", "{fresh}"), "EvalDataError", "unsupported file type '.png'", ("fresh",)),
    Case("eval-score-binary-tsv", ("eval-score", "{binary_tsv}", "-o", "{fresh}"), "EvalDataError", "is not UTF-8 text", ("fresh",), after_logs=True),
    Case("eval-score-unknown-benchmark", ("eval-score", "{preds_tsv}", "-o", "{fresh}"), "EvalDataError", "--dataset-type mcq?", ("fresh",), after_logs=True),
    Case("eval-score-unwritable", ("eval-score", "{preds_tsv}", "--dataset-type", "MCQ", "-o", "{under_file}"), "OutputError", "is a file, not a folder"),
    # export: the model, the recipe, the output (Ctrl-C: test_ctrl_c_mid_export_leaves_no_program)
    Case("export-wrong-model", ("export", "{not_a_model}", "-o", "{fresh}"), "ModelLoadError", "missing config.json", ("fresh",)),
    Case("export-unknown-model", ("export", "{other_model}", "-o", "{fresh}"), "UnsupportedModelError", "model_type 'bert'", ("fresh",)),
    Case("export-missing-recipe", ("export", "{tiny}", "--recipe", "{missing_toml}", "-o", "{fresh}"), "ConfigError", "config file not found", ("fresh",)),
    Case("export-recipe-is-a-folder", ("export", "{tiny}", "--recipe", "{folder_toml}", "-o", "{fresh}"), "ConfigError", "cannot read config file", ("fresh",)),
    Case("export-unwritable", ("export", "{tiny}", "-o", "{under_file}"), "OutputError", "is a file, not a folder"),
    # train-reference: the output
    Case("train-reference-unwritable", ("train-reference", "--steps", "1", "-o", "{under_file}"), "OutputError", "is a file, not a folder"),
    # devices, push, profile, loopback-device: the program folder, the image, the output, the port (no phone needed)
    Case("devices-none", ("devices", "--json"), "success", "[]"),
    Case("push-not-a-program", ("push", "{not_a_model}", "--serial", "127.0.0.1:1"), "ContractError", "is not an exported program folder"),
    Case("profile-missing-image", ("profile", "{not_a_model}", "--serial", "127.0.0.1:1", "--image", "{missing}", "--prompt", "q",
                                   "-o", "{fresh}"), "ImageError", "image file not found", ("fresh",)),
    Case("profile-not-a-program", ("profile", "{not_a_model}", "--serial", "127.0.0.1:1", "--prompt", "q", "-o", "{fresh}"),
         "ContractError", "is not an exported program folder"),
    Case("profile-unwritable", ("profile", "{not_a_model}", "--prompt", "q", "-o", "{under_file}"), "OutputError", "is a file, not a folder"),
    Case("loopback-device-root-is-a-file", ("loopback-device", "--root", "{a_file}", "--port", "0"), "OutputError", "it exists and is a file"),
    Case("loopback-device-bad-port", ("loopback-device", "--port", "70000"), "ConfigError", "port must be in 0..65535"),
    # demo: the model, the port
    Case("demo-missing-model", ("demo", "{missing}"), "ModelLoadError", "model directory not found", after_logs=True),
    Case("demo-bad-port", ("demo", "--port", "99999"), "ConfigError", "port must be in 0..65535"),
    Case("demo-pte-backend-on-a-checkpoint", ("demo", "{tiny}", "--backend", "pte"), "ConfigError", "needs an exported program folder",
         after_logs=True),
    # eval, eval-compare: the data, the results, the output
    Case("eval-missing-data", ("eval", "{tiny}", "--data", "{missing_tsv}", "-o", "{fresh}"), "EvalDataError", "no such file", ("fresh",),
         after_logs=True),
    Case("eval-unwritable", ("eval", "{tiny}", "--data", "{missing_tsv}", "-o", "{under_file}"), "OutputError", "is a file, not a folder"),
    Case("eval-compare-not-results", ("eval-compare", "{not_a_model}", "{not_a_model}", "-o", "{fresh}"), "EvalDataError",
         "summary.json not found", ("fresh",)),
    Case("eval-compare-unwritable", ("eval-compare", "{not_a_model}", "{not_a_model}", "-o", "{under_file}"), "OutputError",
         "is a file, not a folder"),
]
"""The matrix. Another subcommand's bad inputs are one row each."""

SUBPROCESS_CASES = ["grid-text_png", "grid-1x20000-file", "run-truncated_jpg", "run-wrong-model", "make-bench-no-output", "eval-score-binary-tsv",
                    "init-model-unwritable"]
"""Rows also run as real processes: the installed entry point's exit status and stderr, not only main()'s."""

BY_ID = {c.id: c for c in CASES}


def test_every_subcommand_has_rows() -> None:
    """A new subcommand joins the matrix: add at least one :class:`Case` per bad input it takes (a file, a model, -o)."""
    uncovered = sorted({name for name, _add, _run in cli._COMMANDS} - {c.argv[0] for c in CASES})
    assert not uncovered, f"no hostile-input rows for: {', '.join(uncovered)} (add Case rows to CASES)"


def _argv(case: Case, inputs: dict[str, str]) -> list[str]:
    return [a.format(**inputs) for a in case.argv]


def _check(case: Case, inputs: dict[str, str], code: int, out: str, err: str) -> None:
    expected = documented_exit_codes()[case.family]
    assert code == expected, f"{case.id}: exit {code}, documented {expected} for {case.family}\nstderr: {err}"
    assert "Traceback" not in err, err
    if case.family == "success":
        assert case.message in out, out
    else:
        lines = err.splitlines()
        assert case.after_logs or len(lines) == 1, f"{case.id}: want one line on stderr, got:\n{err}"
        assert sum(bool(ERROR_LINE.match(line)) for line in lines) == 1, err
        assert ERROR_LINE.match(lines[-1]) and case.message in lines[-1], lines[-1]
        assert out == "", f"{case.id}: stdout should be empty, got {out[:200]!r}"
    for name in case.absent:
        assert not Path(inputs[name]).exists(), f"{case.id} left {inputs[name]} behind"
    leftovers = [p for p in Path(inputs["ok_jpg"]).parent.rglob("*") if p.name.endswith((".tmp", ".partial"))]
    assert not leftovers, leftovers


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_in_process(case: Case, inputs: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = cli.main(_argv(case, inputs))
    except SystemExit as e:  # argparse's usage errors
        code = int(e.code or 0)
    captured = capsys.readouterr()
    _check(case, inputs, code, captured.out, captured.err)


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_hostile_input_as_a_real_process(case_id: str, inputs: dict[str, str]) -> None:
    case = BY_ID[case_id]
    proc = subprocess.run([sys.executable, "-m", "mobile_mllm.cli", *_argv(case, inputs)],
                          capture_output=True, text=True, timeout=300)
    _check(case, inputs, proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.slow
def test_ctrl_c_mid_export_leaves_no_program(inputs: dict[str, str], tmp_path: Path) -> None:
    """SIGINT while the tiny model is being exported: exit 130, one line, no model.pte and no partial file."""
    out = tmp_path / "program"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mobile_mllm.cli", "export", inputs["tiny"], "-o", str(out), "--no-verify"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # A background job of a non-interactive shell (how CI may start pytest) inherits SIGINT ignored,
        # and Python then never raises KeyboardInterrupt: give the command Ctrl-C as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 240
    for line in proc.stderr:  # stage lines ("load ...", "export ...", "lower ...") arrive as the export runs
        seen.append(line)
        if line.startswith(("quantize ", "lower ")) or time.monotonic() > deadline:
            break
    proc.send_signal(signal.SIGINT)
    rest_out, rest_err = proc.communicate(timeout=120)
    assert proc.returncode == documented_exit_codes()["interrupted"], "".join(seen) + rest_err
    assert "Traceback" not in rest_err and rest_out == ""
    lines = [line for line in rest_err.splitlines() if line.strip()]
    assert lines[-1] == "mobile-mllm: interrupted" and sum("interrupted" in line for line in lines) == 1, rest_err
    assert not (out / "model.pte").exists()
    assert not out.exists() or not any(p.name.endswith((".partial", ".tmp")) for p in out.iterdir())
