"""``mobile-mllm eval``: run a model over benchmarks, append predictions as they come, score, summarise.

For each benchmark of ``--data`` (a VLMEvalKit TSV, a suite TOML naming one, or a suite list
naming several) the questions get VLMEvalKit's default prompts (or the model family's override,
``prompts.build_prompt``), are answered greedily by the eager model, the exported program on
the host, or the program on phones (``--backend device``), locally or over a Ray cluster, and
each answer is appended to ``<out>/<benchmark>/<model>_<benchmark>.tsv`` the moment it arrives
(``journal.py``: durable, resumable, VLMEvalKit's layout). The file is then scored by
``score_predictions``, the same code ``eval-score`` runs on anyone's predictions.

Results directory::

    run.json                      the settings that decide the answers (a resumed run must match)
    summary.json                  per benchmark: headline scores, per-question measurements and means
    <benchmark>/<model>_<benchmark>.tsv   predictions (VLMEvalKit layout)
    <benchmark>/stats.jsonl       tiles, image tokens, encode ms, time to first token, decode tok/s per question
    <benchmark>/scores.json, acc.csv, details.csv   the score report

Deliberately not here: answering (``predict.py``, ``device_predict.py``, ``ray_predict.py``),
comparing runs (``compare.py``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobile_mllm import contract
from mobile_mllm.config import from_dict, load_toml, to_dict
from mobile_mllm.errors import ConfigError, EvalDataError, UnsupportedModelError
from mobile_mllm.eval.data import BadRow, EvalSample, load_benchmark, read_table
from mobile_mllm.eval.journal import PredictionJournal, StatsJournal
from mobile_mllm.eval.predict import STAT_KEYS, HostSpec, Prediction, Request
from mobile_mllm.eval.prompts import PromptHook, build_prompt
from mobile_mllm.eval.report import ScoreReport, write_report
from mobile_mllm.eval.scorers import SCORERS, DatasetType, ScoreContext
from mobile_mllm.eval.scorers.mcq import CIRCULAR_OFFSET
from mobile_mllm.eval.suite import SuiteConfig, load_suite
from mobile_mllm.vision.grid import GridPolicy

logger = logging.getLogger(__name__)

__all__ = [
    "BenchmarkRef",
    "BenchmarkResult",
    "EvalBackend",
    "EvalConfig",
    "EvalProgress",
    "SuiteListConfig",
    "dataset_form",
    "prompt_hook",
    "resolve_benchmarks",
    "row_score",
    "run_eval",
]

RUN_FILE = "run.json"
SUMMARY_FILE = "summary.json"
STATS_FILE = "stats.jsonl"


class EvalBackend(str, enum.Enum):
    """Where the answers come from."""

    EAGER = "eager"
    PTE = "pte"
    DEVICE = "device"


@dataclass(frozen=True)
class EvalConfig:
    """Settings of ``mobile-mllm eval``."""

    data: str = ""
    """A benchmark TSV/xlsx, a suite TOML (``tsv = …``) or a suite list TOML (``benchmarks = […]``)."""
    backend: EvalBackend | None = None
    """eager, pte (the program on this machine) or device (the program on phones over ADB); default: pte for a program directory, else eager."""
    serial: str | None = None
    """Device backend: the phone's serial, or ``all`` to shard over every connected device."""
    limit: int | None = None
    """Answer only the first N questions of each benchmark (circular MCQ: N questions with all their rotations)."""
    grid_policy: GridPolicy | None = None
    """Tile grid policy instead of the model's."""
    max_tiles: int | None = None
    """Largest number of local tiles instead of the model's (lifts the per-side bound)."""
    workers: int = 1
    """Host processes (or Ray actors), each with the model loaded and one thread."""
    skip_bad_rows: bool = False
    """Report and leave out unusable rows (bad image, missing value, prompt too long) instead of stopping."""
    max_new_tokens: int = 32
    """Answer length limit (greedy decoding)."""
    device_batch: int = 16
    """Device backend: questions per runner invocation (the program loads once per batch; a lost device loses at most one)."""
    ray: str | None = None
    """Shard over a Ray cluster: ``local`` starts one on this machine, else a cluster address (``auto``, ``ray://host:10001``)."""

    def __post_init__(self) -> None:
        if not self.data:
            raise ConfigError("eval needs --data FILE.tsv or SUITE.toml")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be >= 1, got {self.limit}")
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.device_batch < 1:
            raise ConfigError(f"device_batch must be >= 1, got {self.device_batch}")
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.serial is not None and self.backend is not EvalBackend.DEVICE:
            raise ConfigError(f"serial {self.serial!r} is given but backend is {self.backend and self.backend.value}; "
                              "--serial goes with --backend device")
        if self.backend is EvalBackend.DEVICE and (self.grid_policy is not None or self.max_tiles is not None):
            raise ConfigError("grid_policy / max_tiles cannot be changed with --backend device: the phone runner tiles "
                              "as the program's manifest says (export another program to change them)")

    def vision_overrides(self) -> dict[str, Any]:
        """The ``VisionConfig`` fields this run replaces."""
        out: dict[str, Any] = {}
        if self.grid_policy is not None:
            out["policy"] = self.grid_policy
        if self.max_tiles is not None:
            out.update(max_tiles=self.max_tiles, max_side=None)  # --max-tiles alone: no side bound
        return out


@dataclass(frozen=True)
class SuiteListConfig:
    """A suite list (``eval/quick.toml``): several benchmarks run and reported together."""

    benchmarks: tuple[str, ...] = ()
    """Suite TOMLs or TSVs, relative to this file."""
    description: str = ""


@dataclass(frozen=True)
class BenchmarkRef:
    """One benchmark to run: its name (the TSV's stem), file and how it is scored."""

    name: str
    tsv: Path
    dataset_type: DatasetType


@dataclass(frozen=True)
class EvalProgress:
    """What the progress callback receives after each answer."""

    benchmark: str
    done: int
    total: int
    running_score: float
    """Mean per-question score so far, 0..1 (resumed answers included)."""
    resumed: int = 0
    """Answers found in the prediction file at start."""


@dataclass(frozen=True)
class BenchmarkResult:
    """One benchmark's outcome."""

    name: str
    dataset_type: str
    prediction_file: Path
    report: ScoreReport
    means: Mapping[str, float]
    """Mean of each per-question measurement (:data:`~mobile_mllm.eval.predict.STAT_KEYS`)."""
    num_answered: int
    num_resumed: int
    bad_rows: tuple[BadRow, ...] = field(default=())
    samples: tuple[Mapping[str, Any], ...] = field(default=())
    """Per-question measurements (``index`` plus :data:`~mobile_mllm.eval.predict.STAT_KEYS` and ``grid``)."""


# --------------------------------------------------------------------------- benchmarks and prompts


def _ref_from_tsv(path: Path, explicit: DatasetType | None = None) -> BenchmarkRef:
    from mobile_mllm.eval.score import resolve_dataset_type

    if explicit is None:
        explicit = resolve_dataset_type(path, list(read_table(path).columns), None)
    return BenchmarkRef(path.stem, path, explicit)


def _ref_from_suite(path: Path) -> BenchmarkRef:
    suite: SuiteConfig = load_suite(path)
    if not suite.tsv:
        raise ConfigError(f"{path}: tsv is empty; name the benchmark file the suite scores")
    return _ref_from_tsv(path.parent / suite.tsv, suite.dataset_type)


def resolve_benchmarks(data: str | Path) -> list[BenchmarkRef]:
    """The benchmarks ``--data`` names: one TSV, one suite TOML, or a suite list.

    Raises:
        EvalDataError: a missing file or one whose scoring cannot be decided.
        ConfigError: a TOML with unknown keys or names listed twice.
    """
    path = Path(data)
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file; pass a benchmark .tsv/.xlsx or a suite .toml")
    if path.suffix.lower() != ".toml":
        return [_ref_from_tsv(path)]
    raw = load_toml(path)
    if "benchmarks" not in raw:
        return [_ref_from_suite(path)]
    suites = from_dict(SuiteListConfig, raw, source=str(path))
    if not suites.benchmarks:
        raise ConfigError(f"{path}: benchmarks is empty")
    refs = [resolve_benchmarks(path.parent / b)[0] for b in suites.benchmarks]
    names = [r.name for r in refs]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: benchmark names repeat ({', '.join(names)}); each needs its own results folder")
    return refs


_FORMS: dict[DatasetType, str] = {
    DatasetType.MCQ: "mcq",
    DatasetType.MCQ_CIRCULAR: "mcq",
    DatasetType.YN: "yn",
    DatasetType.MME: "yn",
    DatasetType.HALLUSIONBENCH: "yn",
    DatasetType.POPE: "yn",
}


def dataset_form(dtype: DatasetType) -> str:
    """The prompt form of a dataset type (``mcq``, ``yn``, else ``vqa``), as VLMEvalKit's dataset classes build them."""
    return _FORMS.get(dtype, "vqa")


def model_family(model: str) -> str:
    """The model family of a model reference, read without loading weights.

    Raises:
        UnsupportedModelError: not a multimodal model this toolkit knows (e.g. a text-only LLM).
        ContractError: a program directory whose manifest is unreadable.
    """
    from mobile_mllm.model.registry import BUILTIN_PREFIX, detect_family, resolve_model_path

    from mobile_mllm.export.manifest import is_program_dir

    if not model.startswith(BUILTIN_PREFIX) and is_program_dir(model):
        from mobile_mllm.export.manifest import read_manifest

        return str(read_manifest(model)["model"]["family"])
    return detect_family(resolve_model_path(model))


def prompt_hook(model: str) -> PromptHook | None:
    """The family's ``eval_prompt`` override, if its adapter defines one."""
    from mobile_mllm.model.registry import get_adapter

    return getattr(get_adapter(model_family(model)), "eval_prompt", None)


def _single_image(sample: EvalSample, where: str) -> str | None:
    if len(sample.images) > 1:
        raise EvalDataError(f"{where}: {len(sample.images)} images in one question; the runtime takes one image per question")
    if not sample.images:
        raise EvalDataError(f"{where}: no base64 image (image_path-only rows are not supported for answering)")
    return sample.images[0]


# --------------------------------------------------------------------------- scoring one row

_ROW_SCORER: dict[DatasetType, DatasetType] = {
    DatasetType.MCQ_CIRCULAR: DatasetType.MCQ,  # per rotation; the report groups them
    DatasetType.MME: DatasetType.YN,
    DatasetType.HALLUSIONBENCH: DatasetType.YN,
    DatasetType.POPE: DatasetType.YN,
}


def row_score(dtype: DatasetType, row: Mapping[str, str | None], columns: Sequence[str] = ()) -> float:
    """One prediction's score in 0..1 by the scorer of ``dtype`` (exact matching, no judge).

    Circular MCQ rows are scored one rotation at a time, and the yes/no families by yes/no
    extraction: the grouped metrics (all rotations right, MME's acc+, HallusionBench's fAcc) only
    exist for a whole file. Used for the running score of the progress bar and by the training
    evaluator.

    Example:
        >>> row_score(DatasetType.MCQ, {"index": "1", "A": "red", "B": "blue", "answer": "B", "prediction": "B. blue"})
        1.0
        >>> row_score(DatasetType.POPE, {"index": "1", "answer": "No", "prediction": "No, there is none."})
        1.0
    """
    spec = SCORERS[_ROW_SCORER.get(dtype, dtype)]
    cols = list(columns) or list(row)
    report = spec.score([dict(row)], cols, ScoreContext(dataset_name="row"))
    details = report.details
    column = "hit" if "hit" in details.columns else "score"
    return float(details.rows[0][details.columns.index(column)])


# --------------------------------------------------------------------------- the run


def _backend(model: str, cfg: EvalConfig) -> EvalBackend:
    from mobile_mllm.export.manifest import is_program_dir

    is_program = not model.startswith("builtin:") and is_program_dir(model)
    backend = cfg.backend or (EvalBackend.PTE if is_program else EvalBackend.EAGER)
    if backend in (EvalBackend.PTE, EvalBackend.DEVICE) and not is_program:
        raise ConfigError(f"--backend {backend.value} needs an exported program directory (with "
                          f"{contract.PROGRAM_FILE}); {model} is not one: export it with `mobile-mllm export`")
    if backend is EvalBackend.EAGER and is_program:
        raise ConfigError(f"{model} is an exported program; use --backend pte (or device), or pass the model directory")
    return backend


def _identity(model: str, backend: EvalBackend, cfg: EvalConfig) -> dict[str, Any]:
    """The settings that decide the answers: a results directory holds answers of one identity."""
    return {
        "model": str(Path(model).resolve()) if not model.startswith("builtin:") else model,
        "backend": backend.value,
        "grid_policy": cfg.grid_policy.value if cfg.grid_policy else None,
        "max_tiles": cfg.max_tiles,
        "max_new_tokens": cfg.max_new_tokens,
    }


def _check_run_file(out: Path, identity: Mapping[str, Any], cfg: EvalConfig) -> None:
    path = out / RUN_FILE
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8")).get("identity", {})
        except ValueError as e:
            raise EvalDataError(f"{path} is not valid JSON ({e}); delete it or use another results directory") from e
        changed = {k: (previous.get(k), v) for k, v in identity.items() if previous.get(k) != v}
        if changed:
            what = "; ".join(f"{k}: {a!r} then, {b!r} now" for k, (a, b) in changed.items())
            raise ConfigError(f"{out} holds answers made with other settings ({what}); resume with the same settings "
                              "or write to another results directory")
    _write_json(path, {"identity": dict(identity), "config": to_dict(cfg)})


def _write_json(path: Path, payload: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _model_label(model: str) -> str:
    return model.split(":", 1)[1] if model.startswith("builtin:") else Path(model).resolve().name


Predict = Callable[[list[Request]], Iterator[Prediction]]


class _Stateless:
    """A predict function with nothing to close."""

    def __init__(self, fn: Predict) -> None:
        self.fn = fn

    def __call__(self, requests: list[Request]) -> Iterator[Prediction]:
        return self.fn(requests)

    def close(self) -> None:
        pass


def make_predict(model: str, backend: EvalBackend, cfg: EvalConfig) -> Any:
    """The answering object of a run (host processes, Ray actors or phones): call it per benchmark, then ``close()``."""
    spec = HostSpec(model=model, vision_overrides=cfg.vision_overrides(), max_new_tokens=cfg.max_new_tokens)
    if backend is EvalBackend.DEVICE:
        from mobile_mllm.eval.device_predict import DeviceSpec, predict_devices

        dspec = DeviceSpec(program_dir=model, serial=cfg.serial or "", max_new_tokens=cfg.max_new_tokens,
                           batch=cfg.device_batch)
        if cfg.ray is not None:
            from mobile_mllm.eval.ray_predict import predict_ray_devices

            return _Stateless(lambda requests: predict_ray_devices(requests, dspec, address=cfg.ray))
        return _Stateless(lambda requests: predict_devices(requests, dspec))
    if cfg.ray is not None:
        from mobile_mllm.eval.ray_predict import RayPool

        return RayPool(spec, address=cfg.ray, workers=cfg.workers)
    from mobile_mllm.eval.predict import HostPool

    return HostPool(spec, cfg.workers)


def limit_samples(samples: Sequence[EvalSample], limit: int | None, dtype: DatasetType) -> list[EvalSample]:
    """The first ``limit`` questions; for circular MCQ the first ``limit`` questions with all their rotations.

    A rotation without its siblings cannot be scored (circular MCQ counts a question only when
    every rotation is right), so ``--limit`` counts whole questions there.

    Example:
        >>> from mobile_mllm.eval.data import EvalSample
        >>> rows = [EvalSample(i, "q", (), (), {}, None, "A", None, None, None, i % 10) for i in (1, 2, 1000001, 1000002)]
        >>> [s.index for s in limit_samples(rows, 1, DatasetType.MCQ_CIRCULAR)]
        [1, 1000001]
    """
    if limit is None:
        return list(samples)
    if dtype is not DatasetType.MCQ_CIRCULAR:
        return list(samples[:limit])

    def group(s: EvalSample) -> int:  # as scorers.mcq.group_index reads a row
        return s.g_index if s.g_index is not None else int(s.index) % CIRCULAR_OFFSET

    keep = set(list(dict.fromkeys(group(s) for s in samples))[:limit])
    return [s for s in samples if group(s) in keep]


def _means(records: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    out = {}
    for key in STAT_KEYS:
        values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]
        out[key] = sum(values) / len(values) if values else math.nan
    return out


def run_benchmark(
    ref: BenchmarkRef,
    out: Path,
    *,
    label: str,
    cfg: EvalConfig,
    predict: Predict,
    hook: PromptHook | None = None,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> BenchmarkResult:
    """Answer one benchmark's remaining questions into its prediction file, then score the file.

    Raises:
        EvalDataError: bad rows (without ``skip_bad_rows``), a question that could not be asked,
            or a prediction file of another layout.
    """
    bench = load_benchmark(ref.tsv, skip_bad_rows=cfg.skip_bad_rows)
    table = read_table(ref.tsv)
    raw_rows = {str(r.get("index")): {k: v for k, v in r.items() if k != "image"} for r in table.rows}  # pixels live in bench
    columns = [c for c in table.columns if c != "image"] + ["prediction"]
    folder = out / ref.name
    folder.mkdir(parents=True, exist_ok=True)
    journal = PredictionJournal(folder / f"{label}_{ref.name}.tsv", columns)
    stats = StatsJournal(folder / STATS_FILE)
    form = dataset_form(ref.dataset_type)
    bad = list(bench.bad_rows)
    samples = limit_samples(bench.samples, cfg.limit, ref.dataset_type)
    todo: list[Request] = []
    for s in samples:
        key = str(s.index)
        if key in journal.done:
            continue
        where = f"{ref.tsv} (index {key})"
        try:
            todo.append(Request(key, build_prompt(s, form, hook), _single_image(s, where)))
        except EvalDataError as e:
            if not cfg.skip_bad_rows:
                raise EvalDataError(f"{e}; pass --skip-bad-rows to leave it out") from e
            logger.warning("skipping %s", e)
            bad.append(BadRow(str(ref.tsv), 0, key, str(e)))
    wanted = {str(s.index) for s in samples}
    scores = [row_score(ref.dataset_type, {**raw_rows[k], "prediction": p}, columns)
              for k, p in journal.done.items() if k in raw_rows]
    resumed = len(journal.done)
    total = resumed + len(todo)
    logger.info("%s: %d questions, %d answered before, %d to answer (%s, form %s)",
                ref.name, len(samples), resumed, len(todo), ref.dataset_type.value, form)

    def progress() -> None:
        if on_progress is not None:
            mean = sum(scores) / len(scores) if scores else math.nan
            on_progress(EvalProgress(ref.name, len(journal.done), total, mean, resumed))

    progress()
    for pred in predict(todo):
        if pred.error is not None:
            reason = f"{pred.error_type}: {pred.error}"
            if not cfg.skip_bad_rows:
                raise EvalDataError(f"{ref.tsv} index {pred.key}: could not be answered ({reason}); the answers so far "
                                    "are kept (re-run to resume), or pass --skip-bad-rows to leave it out")
            bad.append(BadRow(str(ref.tsv), 0, pred.key, reason))
            continue
        stats.append({"index": pred.key, **pred.stats})
        row = {**raw_rows[pred.key], "prediction": pred.text}
        journal.append(row)
        scores.append(row_score(ref.dataset_type, row, columns))
        progress()
    extra = sorted(set(journal.done) - wanted)
    if extra:
        logger.info("%s: %d answers in the file beyond this run's questions (an earlier run without --limit) are scored too",
                    ref.name, len(extra))
    from mobile_mllm.eval.score import ScoreConfig, score_predictions

    report = score_predictions(journal.path, ScoreConfig(dataset_type=ref.dataset_type, skip_bad_rows=cfg.skip_bad_rows))
    report = dataclasses.replace(report, bad_rows=tuple(bad) + report.bad_rows)
    write_report(report, folder, config={"predictions": str(journal.path), "data": str(ref.tsv),
                                         "dataset_type": ref.dataset_type.value})
    measured = [stats.records[k] for k in journal.done if k in stats.records]
    return BenchmarkResult(ref.name, ref.dataset_type.value, journal.path, report, _means(measured),
                           num_answered=len(journal.done), num_resumed=resumed, bad_rows=tuple(bad),
                           samples=tuple(measured))


def run_eval(
    model: str,
    cfg: EvalConfig,
    out_dir: str | Path,
    *,
    on_progress: Callable[[EvalProgress], None] | None = None,
) -> list[BenchmarkResult]:
    """Run ``model`` over every benchmark of ``cfg.data`` into ``out_dir`` (resuming what is there).

    Args:
        model (str): a model directory, an exported program directory or ``builtin:NAME``.
        cfg (EvalConfig): data, backend and run settings.
        out_dir (str | Path): the results directory (created; an earlier run's answers are kept).
        on_progress (Callable[[EvalProgress], None] | None): called after each answer.

    Returns:
        One result per benchmark; ``summary.json`` holds the same.

    Raises:
        ConfigError: a backend that does not fit the model, or a results directory of other settings.
        UnsupportedModelError: the model is not a multimodal model this toolkit knows.
        EvalDataError: unusable data (see :func:`run_benchmark`).
    """
    refs = resolve_benchmarks(cfg.data)
    backend = _backend(model, cfg)
    try:
        hook = prompt_hook(model)
    except UnsupportedModelError as e:
        raise UnsupportedModelError(f"{model} is not a vision-language model this toolkit can evaluate: {e}") from e
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    identity = _identity(model, backend, cfg)
    _check_run_file(out, identity, cfg)
    predict = make_predict(model, backend, cfg)
    label = _model_label(model)
    results = []
    try:
        for ref in refs:
            results.append(run_benchmark(ref, out, label=label, cfg=cfg, predict=predict, hook=hook, on_progress=on_progress))
            _write_summary(out, identity, results)
    finally:
        predict.close()
    return results


def _write_summary(out: Path, identity: Mapping[str, Any], results: Sequence[BenchmarkResult]) -> None:
    benchmarks = {}
    for r in results:
        benchmarks[r.name] = {
            "dataset_type": r.dataset_type,
            "predictions": str(r.prediction_file.relative_to(out)),
            "headline": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.report.headline.items()},
            "num_answered": r.num_answered,
            "num_resumed": r.num_resumed,
            "bad_rows": [vars(b) for b in r.bad_rows],
            "means": {k: (None if math.isnan(v) else v) for k, v in r.means.items()},
            "samples": [dict(x) for x in r.samples],
        }
    _write_json(out / SUMMARY_FILE, {"identity": dict(identity), "benchmarks": benchmarks})

