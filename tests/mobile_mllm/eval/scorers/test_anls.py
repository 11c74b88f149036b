"""DocVQA/InfoVQA ANLS, including the 0.5 threshold edge."""

from __future__ import annotations

import pytest

from mobile_mllm.eval.scorers.anls import anls_distance, anls_score, levenshtein, score_anls
from mobile_mllm.eval.scorers.context import ScoreContext


@pytest.mark.parametrize(("a", "b", "d"), [("", "", 0), ("abc", "", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2)])
def test_levenshtein(a: str, b: str, d: int) -> None:
    assert levenshtein(a, b) == d == levenshtein(b, a)


def test_exactly_at_threshold_is_kept() -> None:
    # distance 2 over length 4 -> similarity exactly 0.5, which is not below 0.5
    assert anls_score("abxy", ["abcd"]) == 0.5


def test_just_below_threshold_is_zero() -> None:
    # distance 3 over 5 -> 0.4 < 0.5 -> 0
    assert anls_score("abxyz", ["abcde"]) == 0.0
    # distance 2 over 5 -> 0.6 kept
    assert anls_score("abcyz", ["abcde"]) == pytest.approx(0.6)


def test_case_and_whitespace_are_normalised_but_length_is_raw() -> None:
    assert anls_score("  Hello   World ", ["hello world"]) == 1.0
    # the divisor is the raw length (16), not the collapsed one (11): VLMEvalKit's quirk
    assert anls_distance("hello world", "  Hello   Worlx ") == pytest.approx(1 / 16)


def test_best_ground_truth_wins() -> None:
    assert anls_score("42", ["forty two", "42"]) == 1.0


def test_score_anls_table() -> None:
    rows = [
        {"index": "1", "answer": "['abcd']", "prediction": "abxy"},
        {"index": "2", "answer": "['abcd']", "prediction": "zzzz"},
    ]
    report = score_anls(rows, ("index", "answer", "prediction"), ScoreContext("DocVQA_VAL"))
    assert report.headline == {"Overall": 25.0}
