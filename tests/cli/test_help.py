"""`mobile-mllm --help` and every subcommand's --help: fast, and free of heavy imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("torch", "executorch", "torchao", "gradio", "adb_shell", "transformers", "PIL", "numpy")

_PROBE = """
import sys
from mobile_mllm.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def _help(argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = _PROBE.format(argv=argv, heavy=HEAVY)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_top_level_help_lists_every_command_and_imports_nothing_heavy() -> None:
    proc = _help(["--help"])
    for command in ("grid", "run", "init-model", "export", "eval-score", "make-bench", "train-reference"):
        assert command in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", ["grid", "run", "init-model", "export", "eval-score", "make-bench", "train-reference"])
def test_subcommand_help_imports_nothing_heavy(command: str) -> None:
    proc = _help([command, "--help"])
    assert f"usage: mobile-mllm {command}" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"


def test_unknown_command_is_a_usage_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", "nosuchcommand"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "invalid choice: 'nosuchcommand'" in proc.stderr


def test_every_flag_help_is_a_whole_sentence() -> None:
    # train-reference --help used to cut --questions-per-image's text at its first source line:
    # "1 = the drawn question (or the description, (default: 1)". Unbalanced brackets or quotes
    # after removing argparse's "(default: ...)" mean a help text stops mid-sentence.
    import argparse
    import re

    from mobile_mllm.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    cut = []
    for name, sub in subparsers.choices.items():
        for action in sub._actions:
            text = re.sub(r"\s*\(default: [^()]*(\([^()]*\)[^()]*)*\)$", "", action.help or "")
            if text.count("(") != text.count(")") or text.count("``") % 2 or text.count("[") != text.count("]"):
                cut.append(f"{name} {'/'.join(action.option_strings) or action.dest}: {action.help}")
    assert not cut, "\n".join(cut)
