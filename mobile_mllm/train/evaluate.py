"""Measure a model on a held-out generated benchmark through the eager runtime ``Session``.

Each question is asked exactly as a user would ask it (``Session.ask`` with the image, greedy
decoding), worded as VLMEvalKit words it, and scored as VLMEvalKit scores it: MCQ by the
extracted option letter, Y/N by yes/no extraction, short answers by exact match after
VLMEvalKit's punctuation normalisation. Questions are rebuilt in each worker process from
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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mobile_mllm.eval.extract import extract_option, extract_yes_no, process_punctuation
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
    "is_correct",
    "run_reference_bench",
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


def is_correct(sample: SyntheticSample, prediction: str) -> bool:
    """VLMEvalKit-style scoring of one prediction (option letter, yes/no, or normalised exact match).

    Example:
        >>> s = SyntheticSample(0, None, "Q?", "red", ("blue", "red"), Kind.COLOUR, Form.MCQ, "single")
        >>> is_correct(s, "B"), is_correct(s, "red"), is_correct(s, "A")
        (True, True, False)
    """
    if sample.form is Form.MCQ:
        return extract_option(prediction, dict(zip("ABCD", sample.options))) == sample.answer_letter
    if sample.form is Form.YN:
        return extract_yes_no(prediction) == sample.answer
    return process_punctuation(prediction.strip().lower()).strip() == process_punctuation(sample.answer.lower()).strip()


def _sample(item: BenchItem, seed: int, spec: SyntheticSpec) -> SyntheticSample:
    return generate_sample(seed, item.number, dataclasses.replace(spec, kinds=(item.kind,), forms=item.forms))


_WORKER: dict[str, Any] = {}


def _init_worker(model: str, overrides: Mapping[str, Any], seed: int, spec: SyntheticSpec, threads: int) -> None:
    import torch

    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig, Session, open_backend

    torch.set_num_threads(threads)
    backend = open_backend(model, RuntimeConfig())
    _WORKER["session"] = Session(
        backend.methods,
        tokenizer=backend.tokenizer,
        prompt=backend.prompt,
        vision=dataclasses.replace(backend.vision, **overrides),
        eos_ids=backend.eos_ids,
        generation=GenerationConfig(max_new_tokens=16),
    )
    _WORKER["seed"], _WORKER["spec"] = seed, spec


def _answer(item: BenchItem) -> EvalRecord:
    sample = _sample(item, _WORKER["seed"], _WORKER["spec"])
    answer = _WORKER["session"].ask(question_text(sample), sample.image)
    prediction = answer.text.strip()
    return EvalRecord(
        kind=sample.kind.value,
        form=sample.form.value,
        detail=sample.detail,
        question=sample.question,
        answer=sample.answer,
        prediction=prediction,
        correct=is_correct(sample, prediction),
        image_tokens=answer.stats.num_image_tokens,
        num_tiles=answer.stats.num_tiles,
    )


def evaluate(
    model: str,
    items: Sequence[BenchItem],
    *,
    seed: int,
    spec: SyntheticSpec,
    condition: Condition = CONDITIONS["tiles"],
    workers: int = 1,
) -> list[EvalRecord]:
    """Ask every item through a ``Session`` over ``model`` and score the answers.

    Args:
        model (str): a model directory or ``builtin:NAME``.
        items (Sequence[BenchItem]): the questions.
        seed (int): generator stream of the benchmark (use one training never saw).
        spec (SyntheticSpec): generator settings (kinds and forms are set per item).
        condition (Condition): tiling overrides. Default: the model's own vision config.
        workers (int): processes (each loads the model and uses one thread); 1 runs in this process.

    Returns:
        list[EvalRecord]: one per item, in order.
    """
    args = (model, condition.overrides(), seed, spec)
    if workers <= 1:
        _init_worker(*args, threads=1)  # one thread: OpenMP spinning on a shared machine costs 10x
        return [_answer(item) for item in items]
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(*args, 1)) as pool:
        return pool.map(_answer, items, chunksize=max(1, len(items) // (workers * 4)))


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
