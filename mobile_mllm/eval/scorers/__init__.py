"""Scorers by dataset type, and VLMEvalKit's name-based choice of one.

Each dataset type maps to a :class:`ScorerSpec`: the scoring function, the columns it needs, and a
per-row check. :func:`infer_dataset_type` picks the type from a benchmark or prediction file name
with the substring rules VLMEvalKit applies to dataset names (``MMBench`` and ``circular`` mean
circular MCQ, ``MME`` means MME, ``DocVQA``/``InfoVQA`` mean ANLS, …); a name that identifies no
benchmark is unknown, even when the file has option columns ``A`` and ``B`` (VLMEvalKit's
custom-MCQ guess would score a Y/N or VQA file with options as MCQ): the user names the type.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mobile_mllm.eval.report import ScoreReport
from mobile_mllm.eval.scorers.anls import score_anls
from mobile_mllm.eval.scorers.context import Judge, Row, ScoreContext
from mobile_mllm.eval.scorers.hallusion import hallusion_ids, score_hallusion
from mobile_mllm.eval.scorers.mcq import group_index, score_circular, score_vanilla
from mobile_mllm.eval.scorers.mme import score_mme
from mobile_mllm.eval.scorers.ocrbench import OCRBENCH_CATEGORIES, score_ocrbench
from mobile_mllm.eval.scorers.pope import score_pope
from mobile_mllm.eval.scorers.vqa import score_exact, score_relaxed, score_textvqa
from mobile_mllm.eval.scorers.yn import score_default

__all__ = [
    "SCORERS",
    "DatasetType",
    "Judge",
    "ScoreContext",
    "ScorerSpec",
    "infer_dataset_type",
]


class DatasetType(str, enum.Enum):
    """How a benchmark is scored (what ``--dataset-type`` takes)."""

    MCQ = "mcq"
    MCQ_CIRCULAR = "mcq-circular"
    YN = "yn"
    MME = "mme"
    HALLUSIONBENCH = "hallusionbench"
    POPE = "pope"
    TEXTVQA = "textvqa"
    DOCVQA = "docvqa"
    CHARTQA = "chartqa"
    OCRVQA = "ocrvqa"
    OCRBENCH = "ocrbench"

    @classmethod
    def _missing_(cls, value: object) -> DatasetType | None:
        """Any case, ``_`` for ``-`` and VLMEvalKit's spellings: ``MCQ``, ``Y/N``, ``MCQ_CIRCULAR``, ``HallusionBench``."""
        if not isinstance(value, str):
            return None
        key = value.strip().lower().replace("_", "-").replace("/", "")
        return next((member for member in cls if member.value == key), None)


def _no_check(row: Row) -> str | None:
    return None


def _check_circular(row: Row) -> str | None:
    try:
        group_index(row)
    except ValueError:
        return f"index {row.get('index')!r} (or g_index) is not an integer, as circular MCQ needs"
    return None


def _check_hallusion(row: Row) -> str | None:
    try:
        hallusion_ids(str(row.get("index")))
    except ValueError as e:
        return str(e)
    return None


def _check_ocrbench(row: Row) -> str | None:
    if row.get("category") not in OCRBENCH_CATEGORIES:
        return f"category {row.get('category')!r} is not an OCRBench category ({', '.join(OCRBENCH_CATEGORIES)})"
    return None


Scorer = Callable[[Sequence[Row], Sequence[str], ScoreContext], ScoreReport]


@dataclass(frozen=True)
class ScorerSpec:
    """One dataset type: how to score it and what its rows need."""

    score: Scorer
    required: tuple[str, ...]
    """Columns (and per-row values) needed besides ``index`` and ``prediction``."""
    check: Callable[[Row], str | None] = _no_check
    """Returns why a row is unusable, or None."""


SCORERS: dict[DatasetType, ScorerSpec] = {
    DatasetType.MCQ: ScorerSpec(score_vanilla, ("answer", "A", "B")),
    DatasetType.MCQ_CIRCULAR: ScorerSpec(score_circular, ("answer", "A", "B"), _check_circular),
    DatasetType.YN: ScorerSpec(score_default, ("answer",)),
    DatasetType.MME: ScorerSpec(score_mme, ("answer", "category", "image_path")),
    DatasetType.HALLUSIONBENCH: ScorerSpec(score_hallusion, ("answer", "l2-category"), _check_hallusion),
    DatasetType.POPE: ScorerSpec(score_pope, ("answer",)),
    DatasetType.TEXTVQA: ScorerSpec(score_textvqa, ("answer",)),
    DatasetType.DOCVQA: ScorerSpec(score_anls, ("answer",)),
    DatasetType.CHARTQA: ScorerSpec(score_relaxed, ("answer",)),
    DatasetType.OCRVQA: ScorerSpec(score_exact, ("answer",)),
    DatasetType.OCRBENCH: ScorerSpec(score_ocrbench, ("answer", "category"), _check_ocrbench),
}
"""Dataset type -> scorer."""

# Substring rules, first match wins (VLMEvalKit's listinstr dispatch on dataset names).
_NAME_RULES: tuple[tuple[tuple[str, ...], bool, DatasetType], ...] = (
    (("MME-RealWorld", "MMERealWorld", "MME_RealWorld"), False, DatasetType.MCQ),
    (("MME",), False, DatasetType.MME),
    (("Hallusion",), False, DatasetType.HALLUSIONBENCH),
    (("POPE",), False, DatasetType.POPE),
    (("OCRBench",), False, DatasetType.OCRBENCH),
    (("TextVQA",), False, DatasetType.TEXTVQA),
    (("DocVQA", "InfoVQA"), False, DatasetType.DOCVQA),
    (("ChartQA",), False, DatasetType.CHARTQA),
    (("OCRVQA", "GQA"), False, DatasetType.OCRVQA),
    (("mmbench", "ccbench", "circular", "mmcr"), True, DatasetType.MCQ_CIRCULAR),
    (("MMStar", "AI2D", "SEEDBench", "ScienceQA", "MMMU", "RealWorldQA", "A-OKVQA", "MMVP", "BLINK"), False, DatasetType.MCQ),
)


def infer_dataset_type(name: str) -> DatasetType | None:
    """The dataset type VLMEvalKit would use for a dataset (or prediction file) name.

    Args:
        name (str): file stem such as ``MyModel_MMBench_DEV_EN_V11`` or ``HallusionBench``.

    Returns:
        The type, or None when the name identifies no benchmark (``preds``, ``my_quiz``).

    Example:
        >>> infer_dataset_type("Qwen2-VL_MMBench_DEV_EN_V11").value
        'mcq-circular'
        >>> infer_dataset_type("InfoVQA_VAL").value
        'docvqa'
        >>> infer_dataset_type("preds") is None
        True
    """
    for needles, lowercase, dtype in _NAME_RULES:
        haystack = name.lower() if lowercase else name
        if any(n in haystack for n in needles):
            return dtype
    return None
