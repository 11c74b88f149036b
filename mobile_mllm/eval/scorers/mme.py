"""MME: per category, accuracy + accuracy+ (both questions about one image right), each in percent.

Every MME image has two questions (one Yes, one No), paired by ``image_path``. A category's score
is acc (per question) + acc+ (per image), at most 200; ``perception`` sums the ten perception
categories (max 2000) and ``reasoning`` (the paper's "cognition") the four cognition ones (max 800).
The main table is VLMEvalKit's ``MME_rating`` row; a second table splits acc and acc+.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mobile_mllm.eval.report import ScoreReport, ScoreTable, table_from_dict
from mobile_mllm.eval.scorers.context import Row, ScoreContext, mean
from mobile_mllm.eval.scorers.yn import extract_rows, yn_details

logger = logging.getLogger(__name__)

__all__ = ["MME_SUPER_CATEGORIES", "score_mme"]

MME_SUPER_CATEGORIES: dict[str, tuple[str, ...]] = {
    "perception": (
        "OCR", "artwork", "celebrity", "color", "count", "existence", "landmark", "position", "posters", "scene",
    ),
    "reasoning": ("code_reasoning", "commonsense_reasoning", "numerical_calculation", "text_translation"),
}
"""MME's two halves and their categories (VLMEvalKit calls cognition ``reasoning``)."""


def score_mme(rows: Sequence[Row], columns: Sequence[str], ctx: ScoreContext) -> ScoreReport:
    """MME scores from rows with ``category``, ``image_path``, ``answer`` and ``prediction``."""
    extracted, hits = extract_rows(rows, ctx)
    per_image: dict[str, dict[str, list[int]]] = {}
    for r, h in zip(rows, hits):
        per_image.setdefault(str(r.get("category")), {}).setdefault(str(r.get("image_path")), []).append(h)
    notes: list[str] = []
    acc: dict[str, float] = {}
    acc_plus: dict[str, float] = {}
    for cat, images in per_image.items():
        acc[cat] = mean(h for hs in images.values() for h in hs) * 100
        odd = [p for p, hs in images.items() if len(hs) != 2]
        if odd:
            notes.append(f"category {cat}: {len(odd)} image(s) without exactly 2 questions (e.g. {odd[0]}); acc+ needs all right")
        acc_plus[cat] = mean(int(all(hs)) for hs in images.values()) * 100
    scores = {c: acc[c] + acc_plus[c] for c in per_image}
    summary: dict[str, float] = {}
    for name, cats in MME_SUPER_CATEGORIES.items():
        missing = [c for c in cats if c not in scores]
        if missing and len(missing) < len(cats):
            notes.append(f"{name}: categories missing from the file, summed as 0: {', '.join(missing)}")
        summary[name] = sum(scores.get(c, 0.0) for c in cats)
    main = table_from_dict("score", {**summary, **scores})
    split = ScoreTable(
        name="categories",
        columns=("category", "acc", "acc_plus", "score"),
        rows=tuple((c, acc[c], acc_plus[c], scores[c]) for c in per_image),
    )
    for n in notes:
        logger.warning("%s", n)
    return ScoreReport(
        "mme", ctx.dataset_name, summary, (main, split), yn_details(rows, extracted, hits), notes=tuple(notes)
    )
