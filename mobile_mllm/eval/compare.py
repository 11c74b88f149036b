"""``mobile-mllm eval-compare``: several ``eval`` results side by side, with a paired significance test.

Typical pairs: the fp32 vs the w4 program, the family's native grid policy vs relaxed, host vs
phone. For each benchmark the runs share, the table shows the headline score, per-category
accuracy, the change against the first run, mean image tokens and latency; the change is tested
with the exact McNemar test on the questions both runs answered (only the discordant pairs
matter: b = right in A only, c = right in B only; p = two-sided binomial tail of min(b, c) in
b + c at 1/2). A question counts as right when its per-question score is at least 0.5 (MCQ and
yes/no scores are 0 or 1; VQA accuracy and ANLS are graded). Circular MCQ compares whole
questions (all rotations right), as the score does.

Deliberately not here: running models (``run.py``), multiple-comparison corrections (the table
says how many tests it shows).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mobile_mllm.errors import EvalDataError

logger = logging.getLogger(__name__)

__all__ = ["Comparison", "RunResults", "compare_runs", "format_markdown", "load_results", "mcnemar_exact", "plot_comparison"]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    Example:
        >>> round(mcnemar_exact(1, 9), 4)  # 2 * P(X <= 1), X ~ Binomial(10, 1/2) = 2 * 11/1024
        0.0215
        >>> mcnemar_exact(0, 0), mcnemar_exact(5, 5)
        (1.0, 1.0)
    """
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


@dataclass(frozen=True)
class BenchmarkRun:
    """One benchmark of one results directory."""

    name: str
    dataset_type: str
    headline: Mapping[str, float]
    outcomes: Mapping[str, float]
    """index -> per-question score (whole questions for circular MCQ)."""
    categories: Mapping[str, str]
    """index -> category."""
    means: Mapping[str, float]


@dataclass(frozen=True)
class RunResults:
    """An ``eval`` results directory, read back."""

    path: Path
    label: str
    identity: Mapping[str, Any]
    benchmarks: Mapping[str, BenchmarkRun]


def _read_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    import sys

    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=delimiter))


def load_results(path: str | Path, label: str | None = None) -> RunResults:
    """Read a results directory written by ``mobile-mllm eval``.

    Raises:
        EvalDataError: no ``summary.json`` (not an eval results directory, or the run never finished a benchmark).
    """
    root = Path(path)
    summary_path = root / "summary.json"
    try:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise EvalDataError(f"{summary_path} not found: is {root} a `mobile-mllm eval` results directory?") from e
    except ValueError as e:
        raise EvalDataError(f"{summary_path} is not valid JSON: {e}") from e
    runs = {}
    for name, b in summary.get("benchmarks", {}).items():
        details = _read_rows(root / name / "details.csv")
        score_col = "hit" if details and "hit" in details[0] else "score"
        preds = _read_rows(root / b["predictions"], "\t")
        categories = {r["index"]: r.get("category") or "" for r in preds}
        runs[name] = BenchmarkRun(
            name=name,
            dataset_type=b["dataset_type"],
            headline={k: float(v) for k, v in b["headline"].items() if v is not None},
            outcomes={r["index"]: float(r[score_col]) for r in details},
            categories=categories,
            means={k: (math.nan if v is None else float(v)) for k, v in b.get("means", {}).items()},
        )
    identity = summary.get("identity", {})
    default = f"{Path(str(identity.get('model', root.name))).name} [{identity.get('backend', '?')}]"
    return RunResults(root, label or default, identity, runs)


@dataclass(frozen=True)
class Comparison:
    """One benchmark across runs: scores, per-category accuracy, paired tests against the first run."""

    benchmark: str
    labels: tuple[str, ...]
    headline: tuple[float, ...]
    """The first headline number of each run (``Overall``), in the scorer's unit."""
    per_category: Mapping[str, tuple[float, ...]]
    """category -> accuracy (%) per run, on each run's answered questions."""
    shared: tuple[int, ...]
    """Questions run i shares with the first run."""
    discordant: tuple[tuple[int, int], ...]
    """(b, c) per run: right only in the first run, right only in run i."""
    p_values: tuple[float, ...]
    means: tuple[Mapping[str, float], ...] = field(default=())


def _right(score: float) -> bool:
    return score >= 0.5


def compare_runs(runs: Sequence[RunResults]) -> list[Comparison]:
    """Compare every benchmark present in all runs (the first run is the baseline).

    Raises:
        EvalDataError: fewer than two runs, or no benchmark common to all of them.
    """
    if len(runs) < 2:
        raise EvalDataError("eval-compare needs at least two results directories")
    common = [n for n in runs[0].benchmarks if all(n in r.benchmarks for r in runs[1:])]
    if not common:
        names = "; ".join(f"{r.path}: {', '.join(r.benchmarks) or 'none'}" for r in runs)
        raise EvalDataError(f"the results share no benchmark ({names})")
    out = []
    for name in common:
        bench = [r.benchmarks[name] for r in runs]
        base = bench[0]
        categories = sorted({c for b in bench for c in b.categories.values() if c})
        per_category = {}
        for cat in categories:
            row = []
            for b in bench:
                scores = [_right(s) for k, s in b.outcomes.items() if b.categories.get(k) == cat]
                row.append(100 * sum(scores) / len(scores) if scores else math.nan)
            per_category[cat] = tuple(row)
        shared, discordant, p_values = [], [], []
        for b in bench:
            keys = sorted(set(base.outcomes) & set(b.outcomes))
            left = sum(_right(base.outcomes[k]) and not _right(b.outcomes[k]) for k in keys)
            right = sum(_right(b.outcomes[k]) and not _right(base.outcomes[k]) for k in keys)
            shared.append(len(keys))
            discordant.append((left, right))
            p_values.append(mcnemar_exact(left, right))
        first = next(iter(base.headline), "Overall")
        out.append(Comparison(
            benchmark=name,
            labels=tuple(r.label for r in runs),
            headline=tuple(float(b.headline.get(first, math.nan)) for b in bench),
            per_category=per_category,
            shared=tuple(shared),
            discordant=tuple(discordant),
            p_values=tuple(p_values),
            means=tuple(b.means for b in bench),
        ))
    return out


def _f(x: float, digits: int = 1) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _signed(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:+.1f}"


def format_markdown(comparisons: Sequence[Comparison]) -> str:
    """Markdown tables: per benchmark, one row per run (score, change, McNemar, tokens, latency), then categories."""
    lines: list[str] = []
    tests = sum(len(c.labels) - 1 for c in comparisons)
    for c in comparisons:
        lines += [
            f"### {c.benchmark}",
            "",
            "| run | score | Δ vs first | shared | b / c | McNemar p | image tokens | encode ms | first token ms | decode tok/s |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for i, label in enumerate(c.labels):
            m = c.means[i] if c.means else {}
            delta = "—" if i == 0 else _signed(c.headline[i] - c.headline[0])
            pair = "—" if i == 0 else f"{c.discordant[i][0]} / {c.discordant[i][1]}"
            p = "—" if i == 0 else f"{c.p_values[i]:.3g}"
            lines.append(
                f"| {label} | {_f(c.headline[i])} | {delta} | {c.shared[i]} | {pair} | {p} | "
                f"{_f(m.get('num_image_tokens', math.nan), 0)} | {_f(m.get('image_encode_ms', math.nan))} | "
                f"{_f(m.get('time_to_first_token_ms', math.nan))} | {_f(m.get('decode_tok_s', math.nan))} |"
            )
        if c.per_category:
            lines += ["", "| category | " + " | ".join(c.labels) + " | Δ (last − first) |", "|---|" + "---|" * (len(c.labels) + 1)]
            for cat, values in c.per_category.items():
                lines.append(f"| {cat} | " + " | ".join(_f(v) for v in values) + f" | {_signed(values[-1] - values[0])} |")
        lines.append("")
    lines.append(f"b = right only in the first run, c = right only in this run (questions both answered); "
                 f"exact McNemar, two-sided, {tests} test(s) shown, no multiple-comparison correction.")
    return "\n".join(lines) + "\n"


def plot_comparison(comparisons: Sequence[Comparison], path: str | Path) -> Path:
    """PNG: score vs mean image tokens (one marker per run and benchmark), and per-category bars per run.

    Raises:
        MissingDependencyError: matplotlib is not installed.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as e:
        from mobile_mllm.errors import MissingDependencyError

        raise MissingDependencyError("the comparison chart needs matplotlib (a dependency of mobile-mllm): pip install 'matplotlib>=3.8,<4'") from e
    labels = comparisons[0].labels
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    markers = "osD^v<>p*h"
    for i, label in enumerate(labels):
        xs = [c.means[i].get("num_image_tokens", math.nan) for c in comparisons]
        ys = [c.headline[i] for c in comparisons]
        ax1.scatter(xs, ys, marker=markers[i % len(markers)], label=label, s=60)
        for c, x, y in zip(comparisons, xs, ys):
            ax1.annotate(c.benchmark, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax1.set_xlabel("mean image tokens per question")
    ax1.set_ylabel("score (scorer's unit)")
    ax1.set_title("score vs image tokens")
    ax1.legend(fontsize=8)
    cats = [(c.benchmark, cat, v) for c in comparisons for cat, v in c.per_category.items()]
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        ax2.bar([k + i * width for k in range(len(cats))], [v[i] for _, _, v in cats], width, label=label)
    ax2.set_xticks([k + 0.4 - width / 2 for k in range(len(cats))])
    ax2.set_xticklabels([f"{b}:{c}" for b, c, _ in cats], rotation=75, fontsize=6)
    ax2.set_ylabel("accuracy (%)")
    ax2.set_title("per category")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out)
    return out
