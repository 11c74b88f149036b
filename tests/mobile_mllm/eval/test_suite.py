"""Suites in eval/: every TOML validates, and every synthetic TSV regenerates byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from mobile_mllm.config import load_toml
from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.data import load_benchmark
from mobile_mllm.eval.suite import SuiteConfig, build_suite_config, load_suite, make_bench
from mobile_mllm.eval.synthetic import Form, SyntheticSpec

EVAL_DIR = Path(__file__).resolve().parents[3] / "eval"
LISTS = sorted(p for p in EVAL_DIR.glob("*.toml") if "benchmarks" in load_toml(p))
"""Suite lists (``benchmarks = [...]``, e.g. quick.toml) name suites; they are not suites themselves."""
SUITES = sorted(p for p in EVAL_DIR.glob("*.toml") if p not in LISTS)


def test_there_are_suites() -> None:
    assert len(SUITES) >= 4


@pytest.mark.parametrize("toml", SUITES, ids=[p.stem for p in SUITES])
def test_suite_loads_and_its_tsv_is_small_and_readable(toml: Path) -> None:
    suite = load_suite(toml)
    tsv = toml.with_name(suite.tsv)
    assert tsv.stat().st_size < 1_000_000
    bench = load_benchmark(tsv)
    rotations = sum(len(s.options) for s in bench.samples if s.g_index == s.index) if suite.circular else suite.count
    assert len(bench.samples) == rotations and not bench.bad_rows


@pytest.mark.parametrize("toml", SUITES, ids=[p.stem for p in SUITES])
def test_synthetic_suite_regenerates_byte_identical(toml: Path, tmp_path: Path) -> None:
    suite = load_suite(toml)
    if not suite.synthetic:
        pytest.skip("not a synthetic suite")
    out = tmp_path / suite.tsv
    make_bench(suite, out)
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(toml.with_name(suite.tsv).read_bytes()).digest()


@pytest.mark.parametrize("toml", LISTS, ids=[p.stem for p in LISTS])
def test_suite_list_names_existing_suites(toml: Path) -> None:
    from mobile_mllm.eval.run import resolve_benchmarks

    refs = resolve_benchmarks(toml)
    assert len(refs) >= 2 and all(r.tsv.is_file() and r.tsv.parent == EVAL_DIR for r in refs)


def test_suite_rules() -> None:
    with pytest.raises(ConfigError, match="a suite TSV holds one question form"):
        SuiteConfig(spec=SyntheticSpec())
    with pytest.raises(ConfigError, match="circular needs spec.forms"):
        SuiteConfig(circular=True, spec=SyntheticSpec(forms=(Form.YN,)))


def test_flags_override_the_suite_file(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('tsv = "s.tsv"\ndataset_type = "mcq"\nseed = 5\ncount = 9\n[spec]\nforms = ["mcq"]\nmax_side_px = 900\n')
    suite = build_suite_config(toml, {"seed": "7", "max_side_px": "700"})
    assert (suite.seed, suite.count, suite.spec.max_side_px, suite.spec.forms) == (7, 9, 700, (Form.MCQ,))
    toml.write_text('dataset_type = "mcq"\n[spec]\nforms = ["mcq"]\ncolours = ["red"]\n')
    with pytest.raises(ConfigError, match=r"spec\.colours: unknown key for SyntheticSpec"):
        build_suite_config(toml, {})
