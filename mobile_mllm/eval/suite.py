"""Benchmark suites: a TSV plus ``<suite>.toml`` recording how it is scored and (if synthetic) made.

The TOML is the record of settings (never parsed from the file name): ``eval-score`` reads its
``dataset_type``, and ``make-bench --suite`` regenerates a synthetic TSV byte for byte from its
seed, count and ``[spec]``. The small suites kept in the repository's ``eval/`` folder are these.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from mobile_mllm.config import from_dict, load_toml, to_toml
from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.scorers import DatasetType
from mobile_mllm.eval.synthetic import Form, SyntheticSpec, generate_samples, write_tsv

logger = logging.getLogger(__name__)

__all__ = ["SuiteConfig", "build_suite_config", "form_dataset_type", "load_suite", "make_bench", "write_suite"]


@dataclass(frozen=True)
class SuiteConfig:
    """One benchmark suite (``eval/<suite>.toml``)."""

    tsv: str = ""
    """The TSV file, relative to the TOML's folder."""
    dataset_type: DatasetType | None = None
    """How predictions on it are scored."""
    synthetic: bool = True
    """Whether the TSV comes from the synthetic generator (then seed, count, circular and spec apply)."""
    seed: int = 0
    """Generator seed: the same seed gives a byte-identical TSV."""
    count: int = 100
    """Number of questions (circular rotations come on top)."""
    circular: bool = False
    """MMBench layout: each MCQ question repeated once per rotation of its options."""
    spec: SyntheticSpec = field(default_factory=SyntheticSpec)
    """What the generator draws."""

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"count must be >= 1, got {self.count}")
        if self.synthetic and self.circular and self.spec.forms != (Form.MCQ,):
            raise ConfigError(f"circular needs spec.forms = ['mcq'], got {[f.value for f in self.spec.forms]}")
        if self.synthetic and len(self.spec.forms) != 1:
            raise ConfigError(
                f"a suite TSV holds one question form; spec.forms is {[f.value for f in self.spec.forms]} "
                "(make one suite per form)"
            )


def form_dataset_type(form: Form, circular: bool = False) -> DatasetType:
    """How questions of a synthetic form are scored (and which scorer a suite of them names)."""
    if form is Form.MCQ:
        return DatasetType.MCQ_CIRCULAR if circular else DatasetType.MCQ
    return DatasetType.YN if form is Form.YN else DatasetType.TEXTVQA


def load_suite(path: str | Path) -> SuiteConfig:
    """Read and validate ``<suite>.toml``.

    Raises:
        ConfigError: unknown keys, wrong types, or no dataset type.
    """
    suite = from_dict(SuiteConfig, load_toml(path), source=str(path))
    if suite.dataset_type is None:
        raise ConfigError(f"{path}: dataset_type is required (one of: {', '.join(t.value for t in DatasetType)})")
    return suite


def write_suite(suite: SuiteConfig, toml_path: str | Path) -> Path:
    """Write the suite record next to its TSV."""
    p = Path(toml_path)
    p.write_text(to_toml(suite) + "\n", encoding="utf-8")
    return p


def make_bench(suite: SuiteConfig, tsv_path: str | Path) -> tuple[SuiteConfig, int]:
    """Generate a synthetic suite: the TSV at ``tsv_path`` and its ``.toml`` beside it.

    Args:
        suite (SuiteConfig): seed, count, circular and spec (``tsv`` and ``dataset_type`` are filled in).
        tsv_path (str | Path): where the TSV goes.

    Returns:
        The suite record as written, and the number of TSV rows.
    """
    p = Path(tsv_path)
    if p.suffix != ".tsv":
        raise ConfigError(f"make-bench writes a .tsv file, got {p}")
    record = replace(suite, tsv=p.name, synthetic=True, dataset_type=form_dataset_type(suite.spec.forms[0], suite.circular))
    rows = write_tsv(generate_samples(suite.seed, suite.count, suite.spec), p, circular=suite.circular)
    write_suite(record, p.with_suffix(".toml"))
    return record, rows


def build_suite_config(suite_path: str | Path | None, flags: dict[str, object]) -> SuiteConfig:
    """A suite from an optional suite TOML overridden by command-line flags.

    ``flags`` holds flat names as ``make-bench`` parses them: ``seed``, ``count``, ``circular`` for
    the suite and ``kinds``, ``forms``, ``min_side_px``… for its ``[spec]`` (precedence: default <
    TOML < flag). A suite holds one question form, so when neither the TOML nor a flag names
    ``forms`` the suite is MCQ (the generator's default draws every form, which a TSV cannot hold).
    """
    from dataclasses import fields  # noqa: PLC0415

    from mobile_mllm.config import resolve  # noqa: PLC0415

    spec_names = {f.name for f in fields(SyntheticSpec)}
    suite_names = {f.name for f in fields(SuiteConfig)} - {"spec"}
    overrides = {k: v for k, v in flags.items() if k in suite_names}
    overrides.update({f"spec.{k}": v for k, v in flags.items() if k in spec_names})
    recipe = load_toml(suite_path) if suite_path is not None else {}
    spec = recipe.get("spec")
    if "spec.forms" not in overrides and not (isinstance(spec, dict) and "forms" in spec):
        overrides["spec.forms"] = [Form.MCQ.value]
    return resolve(SuiteConfig, recipe=recipe, overrides=overrides)
