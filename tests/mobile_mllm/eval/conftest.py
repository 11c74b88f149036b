"""Fixtures of the eval tests: small synthetic suites and the tiny model's fp32 program (exported once)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from mobile_mllm.eval.suite import SuiteConfig, make_bench
from mobile_mllm.eval.synthetic import Form, SyntheticSpec


@pytest.fixture(scope="session")
def small_suites(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``quick.toml`` listing three small suites (yes/no, circular MCQ, short answer) with small images."""
    root = tmp_path_factory.mktemp("suites")
    spec = SyntheticSpec(min_side_px=160, max_side_px=240, small_text_px=(20, 30))
    for name, form, count, circular in (("s_yn", Form.YN, 6, False), ("s_mcq", Form.MCQ, 3, True), ("s_vqa", Form.VQA, 4, False)):
        make_bench(SuiteConfig(seed=7, count=count, circular=circular, spec=dataclasses.replace(spec, forms=(form,))),
                   root / f"{name}.tsv")
    (root / "quick.toml").write_text('benchmarks = ["s_yn.toml", "s_mcq.toml", "s_vqa.toml"]\n', encoding="utf-8")
    return root / "quick.toml"


MAX_NEW_TOKENS = 4
"""Answer length of the tiny model's runs (random weights: the text is noise, its equality is the point)."""


@pytest.fixture(scope="session")
def eager_results(tiny_dir: Path, small_suites: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``run_eval`` of the tiny eager model over ``small_suites``, in this process."""
    from mobile_mllm.eval.run import EvalConfig, run_eval

    out = tmp_path_factory.mktemp("eager_results")
    run_eval(str(tiny_dir), EvalConfig(data=str(small_suites), max_new_tokens=MAX_NEW_TOKENS), out)
    return out


def _read_predictions(results: Path) -> dict[str, dict[str, str]]:
    import csv
    import sys

    csv.field_size_limit(sys.maxsize)
    out: dict[str, dict[str, str]] = {}
    for tsv in sorted(results.glob("*/*.tsv")):
        with tsv.open(encoding="utf-8", newline="") as fh:
            out[tsv.parent.name] = {r["index"]: r["prediction"] for r in csv.DictReader(fh, delimiter="\t")}
    return out


@pytest.fixture(scope="session")
def read_predictions():  # -> Callable[[Path], dict[str, dict[str, str]]]
    """``read_predictions(results)``: benchmark -> index -> prediction, from every prediction TSV of a results directory."""
    return _read_predictions
