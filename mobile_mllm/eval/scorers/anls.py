"""DocVQA / InfoVQA: ANLS (average normalised Levenshtein similarity) with threshold 0.5, in percent.

For each ground truth the distance is computed on lowercased, whitespace-collapsed strings and
divided by the longer of the two *raw* strings (VLMEvalKit's quirk: before collapsing). The row
scores 1 − the smallest distance, or 0 when that is below 0.5 (exactly 0.5 is kept).
"""

from __future__ import annotations

from collections.abc import Sequence

from mobile_mllm.eval.report import ScoreReport
from mobile_mllm.eval.scorers.context import Row, ScoreContext
from mobile_mllm.eval.scorers.vqa import score_rows

__all__ = ["ANLS_THRESHOLD", "anls_distance", "anls_score", "levenshtein", "score_anls"]

ANLS_THRESHOLD = 0.5


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions).

    Example:
        >>> levenshtein("kitten", "sitting")
        3
    """
    if len(a) > len(b):
        a, b = b, a
    previous = list(range(len(a) + 1))
    for i, cb in enumerate(b):
        current = [i + 1]
        for j, ca in enumerate(a):
            current.append(previous[j] if ca == cb else 1 + min(previous[j], previous[j + 1], current[-1]))
        previous = current
    return previous[-1]


def anls_distance(truth: str, prediction: str) -> float:
    """Normalised distance in [0, 1] between one ground truth and a prediction."""
    t = " ".join(truth.strip().lower().split())
    p = " ".join(prediction.strip().lower().split())
    length = max(len(truth.upper()), len(prediction.upper()))
    return 0.0 if length == 0 else levenshtein(t, p) / length


def anls_score(prediction: str, answers: Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """The row score: 1 − min distance, or 0 below ``threshold``.

    Example:
        >>> anls_score("abxy", ["abcd"])
        0.5
        >>> anls_score("axyz", ["abcd"])
        0.0
    """
    similarity = 1 - min(anls_distance(a, prediction) for a in answers)
    return 0.0 if similarity < threshold else similarity


def score_anls(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """DocVQA / InfoVQA ANLS table."""
    return score_rows(rows, columns, ctx, "docvqa", anls_score)
