"""What every scorer receives besides the rows: the dataset name and the optional judge.

Also the two small pieces of arithmetic several scorers share (NaN-free mean, list-literal answers).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from mobile_mllm.eval.data import Row

__all__ = ["Judge", "Row", "ScoreContext", "mean", "parse_answers"]

class Judge(Protocol):
    """An LLM that answers a matching prompt (see :mod:`mobile_mllm.eval.judge`)."""

    def generate(self, prompt: str) -> str:
        """The judge's reply to ``prompt``."""
        ...


@dataclass(frozen=True)
class ScoreContext:
    """Settings shared by every scorer."""

    dataset_name: str
    """Benchmark name (file stem); some families branch on it as VLMEvalKit does."""
    judge: Judge | None = None
    """Fallback for answers the exact-matching rules cannot read; None = exact matching only."""


def mean(values: Iterable[float]) -> float:
    """Arithmetic mean; NaN for no values (as numpy's mean of an empty array, without the warning)."""
    items = list(values)
    return sum(items) / len(items) if items else float("nan")


def parse_answers(answer: str | None) -> list[str]:
    """Ground truths of a VQA row: a Python list literal of strings, or the plain text as one answer.

    Example:
        >>> parse_answers("['red', 'Red']")
        ['red', 'Red']
        >>> parse_answers("red")
        ['red']
    """
    text = "None" if answer is None else answer
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return [text]
    if isinstance(value, list):
        return [str(v) for v in value]
    return [text]
