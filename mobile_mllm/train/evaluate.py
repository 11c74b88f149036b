"""Measure a model on a held-out generated benchmark through the eager runtime ``Session``.

Each question is asked exactly as a user would ask it (``Session.ask`` with the image, greedy
decoding) through the toolkit's one predict path (``eval.predict``, the one ``mobile-mllm eval``
uses), worded as VLMEvalKit words it, and scored by the benchmark scorers (``eval.run.row_score``):
MCQ by the extracted option letter, Y/N by yes/no extraction, short answers by VQA accuracy (as
the synthetic suites score them). Images are drawn again in each worker process from
(seed, kind, number), so only small records cross process boundaries.

:func:`run_reference_bench` measures what issue 4 asks for: per-kind accuracy with the
model's tiles, text reading from the 1x1 thumbnail alone, and relaxed vs LLaVA-NeXT grid
matching with their image-token counts; :func:`format_markdown` renders it for
``bench/train_reference.md``. Deliberately not here: running a model over a VLMEvalKit TSV
(a later step of ``eval``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.predict import HostSpec, Request, predict_host
from mobile_mllm.eval.run import row_score
from mobile_mllm.eval.suite import form_dataset_type
from mobile_mllm.eval.synthetic import Form, Kind, SyntheticSample, SyntheticSpec, generate_sample
from mobile_mllm.train.data import question_text
from mobile_mllm.vision.grid import GridPolicy

logger = logging.getLogger(__name__)

__all__ = [
    "CONDITIONS",
    "BenchConfig",
    "BenchItem",
    "BenchReport",
    "Condition",
    "EvalRecord",
    "accuracy",
    "evaluate",
    "format_markdown",
    "run_reference_bench",
    "score_sample",
]


@dataclass(frozen=True)
class Condition:
    """How images are tiled for one measurement: the model's vision config with these overrides."""

    name: str
    policy: GridPolicy | None = None
    """Grid policy override (None: the model's)."""
    max_side: int | None = None
    """Largest grid side override (None: the model's; 1 = the whole image as one 96 px tile)."""

    def overrides(self) -> dict[str, Any]:
        """The VisionConfig fields this condition replaces."""
        out: dict[str, Any] = {}
        if self.policy is not None:
            out["policy"] = self.policy
        if self.max_side is not None:
            out["max_side"] = self.max_side
        return out


CONDITIONS: dict[str, Condition] = {
    "tiles": Condition("tiles"),
    "thumbnail": Condition("thumbnail", max_side=1),
    "llava_next": Condition("llava_next", policy=GridPolicy.LLAVA_NEXT),
}
"""The conditions of the reference benchmark: the model's relaxed 3x3 grid, a 1x1 grid, LLaVA-NeXT matching."""


@dataclass(frozen=True)
class BenchItem:
    """One question of a generated benchmark: sample ``number`` of the stream for (seed, kind, forms)."""

    kind: Kind
    number: int
    forms: tuple[Form, ...] = tuple(Form)


@dataclass(frozen=True)
class EvalRecord:
    """One answered question."""

    kind: str
    form: str
    detail: str
    question: str
    answer: str
    prediction: str
    correct: bool
    image_tokens: int
    num_tiles: int


def score_sample(sample: SyntheticSample, prediction: str) -> float:
    """One prediction's score (0..1) by the benchmark scorer its form's suite uses (``eval.run.row_score``).

    MCQ: the extracted option letter; yes/no: yes/no extraction; short answer: VQA accuracy
    against the answer as the suite TSV stores it (ten identical ground truths), so a
    question scores exactly as the same question in ``eval/synth_*.tsv`` would.

    Example:
        >>> s = SyntheticSample(0, None, "Q?", "red", ("blue", "red"), Kind.COLOUR, Form.MCQ, "single")
        >>> score_sample(s, "B"), score_sample(s, "red"), score_sample(s, "A")
        (1.0, 1.0, 0.0)
    """
    row: dict[str, str | None] = {"index": str(sample.id), "question": sample.question, "prediction": prediction}
    if sample.form is Form.MCQ:
        row.update(zip("ABCD", sample.options), answer=sample.answer_letter)
    elif sample.form is Form.YN:
        row["answer"] = sample.answer
    else:
        row["answer"] = repr([sample.answer] * 10)
    return row_score(form_dataset_type(sample.form), row)


def _sample(item: BenchItem, seed: int, spec: SyntheticSpec) -> SyntheticSample:
    return generate_sample(seed, item.number, dataclasses.replace(spec, kinds=(item.kind,), forms=item.forms))


@dataclass(frozen=True)
class _DrawnImage:
    """The image of a benchmark item, drawn again where it is answered (only this recipe crosses processes)."""

    item: BenchItem
    seed: int
    spec: SyntheticSpec

    def load(self) -> Any:
        return _sample(self.item, self.seed, self.spec).image


def evaluate(
    model: str,
    items: Sequence[BenchItem],
    *,
    seed: int,
    spec: SyntheticSpec,
    condition: Condition = CONDITIONS["tiles"],
    workers: int = 1,
) -> list[EvalRecord]:
    """Ask every item through ``eval.predict`` (a ``Session`` over ``model``) and score the answers.

    Args:
        model (str): a model directory, an exported program directory or ``builtin:NAME``.
        items (Sequence[BenchItem]): the questions.
        seed (int): generator stream of the benchmark (use one training never saw).
        spec (SyntheticSpec): generator settings (kinds and forms are set per item).
        condition (Condition): tiling overrides. Default: the model's own vision config.
        workers (int): processes (each loads the model and uses one thread); 1 runs in this process.

    Returns:
        list[EvalRecord]: one per item, in order.
    """
    samples, requests = [], []
    for i, item in enumerate(items):
        sample = _sample(item, seed, spec)
        samples.append(dataclasses.replace(sample, image=None))  # keep the text, not the pixels
        requests.append(Request(str(i), question_text(sample), _DrawnImage(item, seed, spec)))
    host = HostSpec(model=model, vision_overrides=condition.overrides(), max_new_tokens=16)
    answers = {p.key: p for p in predict_host(requests, host, workers=workers)}
    records = []
    for i, sample in enumerate(samples):
        pred = answers[str(i)]
        if pred.error is not None:
            raise EvalDataError(f"benchmark item {items[i]} could not be answered: {pred.error_type}: {pred.error}")
        records.append(EvalRecord(
            kind=sample.kind.value,
            form=sample.form.value,
            detail=sample.detail,
            question=sample.question,
            answer=sample.answer,
            prediction=pred.text,
            correct=score_sample(sample, pred.text) == 1.0,
            image_tokens=int(pred.stats.get("num_image_tokens", 0)),
            num_tiles=int(pred.stats.get("num_tiles", 0)),
        ))
    return records


def accuracy(records: Sequence[EvalRecord], key: Callable[[EvalRecord], str]) -> dict[str, float]:
    """Accuracy (0..1) per group of ``key``, plus ``"all"``.

    Example:
        >>> r = [EvalRecord("colour", "vqa", "", "", "red", "red", True, 36, 1),
        ...      EvalRecord("colour", "yn", "", "", "Yes", "No", False, 36, 1)]
        >>> accuracy(r, lambda x: x.form)
        {'vqa': 1.0, 'yn': 0.0, 'all': 0.5}
    """
    groups: dict[str, list[bool]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r.correct)
    out = {k: sum(v) / len(v) for k, v in sorted(groups.items())}
    out["all"] = sum(r.correct for r in records) / max(1, len(records))
    return out


@dataclass(frozen=True)
class BenchConfig:
    """What ``run_reference_bench`` measures."""

    seed: int = 1000
    """Benchmark generator stream (training uses seed 0's stream)."""
    per_kind: int = 100
    """Questions per kind (all forms mixed) for the per-kind table."""
    text_count: int = 200
    """Short-answer text-reading questions for the tiles vs thumbnail comparison."""
    small_text_px: tuple[int, int] = (48, 72)
    """The generator's small-text size (the trained model's)."""
    workers: int = 1
    """Worker processes."""


@dataclass(frozen=True)
class BenchReport:
    """Accuracy tables of one model."""

    model: str
    config: BenchConfig
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    """condition -> kind -> accuracy (all forms)."""
    by_form: dict[str, dict[str, float]] = field(default_factory=dict)
    """condition -> form -> accuracy (all kinds)."""
    by_kind_form: dict[str, dict[str, float]] = field(default_factory=dict)
    """condition -> ``"kind/form"`` -> accuracy: which kinds a form's score comes from (charts weigh on yes/no)."""
    text: dict[str, dict[str, float]] = field(default_factory=dict)
    """condition -> small/large/all -> exact match on short-answer text questions."""
    text_content: dict[str, dict[str, float]] = field(default_factory=dict)
    """condition -> number/word/all -> exact match on the same questions (numbers are the hard part)."""
    image_tokens: dict[str, float] = field(default_factory=dict)
    """condition -> mean image tokens per question (per-kind set)."""
    seconds: float = 0.0


def text_content(record: EvalRecord) -> str:
    """``"number"`` or ``"word"``: what a short-answer text question showed (its answer is the shown text).

    Example:
        >>> text_content(EvalRecord("text", "vqa", "small", "", "4701", "4101", False, 36, 1))
        'number'
    """
    return "number" if record.answer.isdigit() else "word"


def run_reference_bench(
    model: str, cfg: BenchConfig = BenchConfig(), *, on_progress: Callable[[str], None] | None = None
) -> BenchReport:
    """Per-kind accuracy with tiles and with LLaVA-NeXT grids; text exact match with tiles and from the thumbnail.

    Args:
        model (str): a model directory or ``builtin:NAME``.
        cfg (BenchConfig): sizes, seed and workers.
        on_progress (Callable[[str], None] | None): called with a line after each condition.
    """
    import time

    start = time.perf_counter()
    spec = SyntheticSpec(small_text_px=cfg.small_text_px)
    mixed = [BenchItem(k, i) for k in Kind for i in range(cfg.per_kind)]
    text = [BenchItem(Kind.TEXT, i, (Form.VQA,)) for i in range(cfg.text_count)]
    report = BenchReport(model=model, config=cfg)
    for name in ("tiles", "llava_next"):
        records = evaluate(model, mixed, seed=cfg.seed, spec=spec, condition=CONDITIONS[name], workers=cfg.workers)
        report.by_kind[name] = accuracy(records, lambda r: r.kind)
        report.by_form[name] = accuracy(records, lambda r: r.form)
        report.by_kind_form[name] = accuracy(records, lambda r: f"{r.kind}/{r.form}")
        report.image_tokens[name] = sum(r.image_tokens for r in records) / len(records)
        if on_progress:
            on_progress(f"{name}: {report.by_kind[name]}")
    for name in ("tiles", "thumbnail"):
        records = evaluate(model, text, seed=cfg.seed + 1, spec=spec, condition=CONDITIONS[name], workers=cfg.workers)
        report.text[name] = accuracy(records, lambda r: r.detail)
        report.text_content[name] = accuracy(records, text_content)
        if on_progress:
            on_progress(f"text {name}: {report.text[name]}")
    return dataclasses.replace(report, seconds=time.perf_counter() - start)


def format_markdown(report: BenchReport) -> str:
    """The report as Markdown tables (percentages)."""

    def pct(x: float) -> str:
        return f"{100 * x:.1f}"

    kinds = [k.value for k in Kind] + ["all"]
    lines = [
        f"Model `{report.model}`, benchmark seed {report.config.seed}, {report.config.per_kind} questions per kind "
        f"(MCQ, yes/no and short answer mixed), {report.config.text_count} short-answer text questions.",
        "",
        "| condition | mean image tokens | " + " | ".join(kinds) + " | yes/no form |",
        "|---|---|" + "---|" * (len(kinds) + 1),
    ]
    for name, table in report.by_kind.items():
        row = [pct(table.get(k, float("nan"))) for k in kinds]
        lines.append(f"| {name} | {report.image_tokens[name]:.0f} | " + " | ".join(row)
                     + f" | {pct(report.by_form[name].get(Form.YN.value, float('nan')))} |")
    forms = [f.value for f in Form]
    for name, table in report.by_kind_form.items():
        lines += ["", f"| {name}: kind x form | " + " | ".join(forms) + " |", "|---|" + "---|" * len(forms)]
        lines += [f"| {k} | " + " | ".join(pct(table.get(f"{k}/{f}", float("nan"))) for f in forms) + " |"
                  for k in kinds[:-1]]
    lines += ["", "| text exact match | small | large | words | numbers | all |", "|---|---|---|---|---|---|"]
    for name, table in report.text.items():
        content = report.text_content.get(name, {})
        cells = [table.get(k, float("nan")) for k in ("small", "large")]
        cells += [content.get(k, float("nan")) for k in ("word", "number")] + [table.get("all", float("nan"))]
        lines.append(f"| {name} | " + " | ".join(pct(x) for x in cells) + " |")
    return "\n".join(lines) + "\n"
