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
    spec = SyntheticSpec(min_side=160, max_side=240, small_text_px=(20, 30))
    for name, form, count, circular in (("s_yn", Form.YN, 6, False), ("s_mcq", Form.MCQ, 3, True), ("s_vqa", Form.VQA, 4, False)):
        make_bench(SuiteConfig(seed=7, count=count, circular=circular, spec=dataclasses.replace(spec, forms=(form,))),
                   root / f"{name}.tsv")
    (root / "quick.toml").write_text('benchmarks = ["s_yn.toml", "s_mcq.toml", "s_vqa.toml"]\n', encoding="utf-8")
    return root / "quick.toml"


@pytest.fixture(scope="session")
def tiny_program(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported in fp32 (no verification: the eval test compares it with eager itself)."""
    from mobile_mllm.export.program import ExportJob, TargetConfig, export_program
    from mobile_mllm.quant.recipe import preset

    names = {f.name for f in dataclasses.fields(TargetConfig)}
    context = "max_context_len" if "max_context_len" in names else "max_context"  # renamed by the export-seam branch
    job = ExportJob(
        model=str(tiny_dir),
        output=str(tmp_path_factory.mktemp("tiny_fp32")),
        quant=preset("fp32"),
        target=TargetConfig(**{context: 384}, prefill_chunk=64, tile_batch=4),
        verify=False,
    )
    return Path(export_program(job).output)


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
