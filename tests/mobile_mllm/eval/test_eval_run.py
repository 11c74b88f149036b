"""``run_eval``: benchmarks resolved, prompts built, answers from the eager model and the .pte, files and scores."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest

from mobile_mllm.errors import ConfigError, EvalDataError, UnsupportedModelError
from mobile_mllm.eval.data import load_benchmark
from mobile_mllm.eval.prompts import build_prompt
from mobile_mllm.eval.run import EvalBackend, EvalConfig, resolve_benchmarks, row_score, run_eval
from mobile_mllm.eval.score import ScoreConfig, score_predictions
from mobile_mllm.eval.scorers import DatasetType

MAX_NEW_TOKENS = 4  # as the eager_results fixture


def test_a_suite_list_resolves_to_its_benchmarks_with_their_scorers(small_suites: Path) -> None:
    refs = resolve_benchmarks(small_suites)
    assert [(r.name, r.dataset_type) for r in refs] == [
        ("s_yn", DatasetType.YN), ("s_mcq", DatasetType.MCQ_CIRCULAR), ("s_vqa", DatasetType.TEXTVQA)]
    assert resolve_benchmarks(small_suites.with_name("s_mcq.tsv"))[0].dataset_type is DatasetType.MCQ_CIRCULAR  # sidecar TOML


def test_a_tsv_whose_scoring_cannot_be_told_is_one_clear_error(tmp_path: Path, small_suites: Path) -> None:
    plain = tmp_path / "mystery.tsv"
    plain.write_bytes(small_suites.with_name("s_yn.tsv").read_bytes())  # no sidecar TOML, no telling name
    with pytest.raises(EvalDataError, match="cannot tell how to score mystery.tsv.*--dataset-type"):
        resolve_benchmarks(plain)


def test_row_score_follows_the_benchmark_scorers() -> None:
    mcq = {"index": "1", "A": "red", "B": "blue", "answer": "B"}
    assert row_score(DatasetType.MCQ_CIRCULAR, {**mcq, "prediction": "The answer is B"}) == 1.0
    assert row_score(DatasetType.MCQ, {**mcq, "prediction": "red"}) == 0.0
    assert row_score(DatasetType.MME, {"index": "1", "answer": "Yes", "prediction": "yes, and no"}) == 0.0  # Unknown
    assert row_score(DatasetType.TEXTVQA, {"index": "1", "answer": repr(["2"] * 10), "prediction": "Two."}) == 1.0


def test_prompts_are_vlmevalkit_defaults_unless_the_family_overrides_them(small_suites: Path) -> None:
    sample = load_benchmark(small_suites.with_name("s_mcq.tsv")).samples[0]
    text = build_prompt(sample, "mcq")
    assert text.startswith(f"Question: {sample.question}\nOptions:\nA. ") and text.endswith("options above. \n")
    assert build_prompt(sample, "vqa").endswith("\nAnswer the question using a single word or phrase.")
    assert build_prompt(sample, "mcq", lambda s, form, default: f"<{form}>" + default[:8]) == "<mcq>Question"


def test_backend_must_fit_the_model(tiny_dir: Path, small_suites: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs an exported program directory"):
        run_eval(str(tiny_dir), EvalConfig(data=str(small_suites), backend=EvalBackend.PTE), tmp_path)
    with pytest.raises(ConfigError, match="--serial goes with --backend device"):
        EvalConfig(data="x.tsv", serial="emulator-5554")


def test_a_text_only_model_is_refused_before_anything_runs(tmp_path: Path, small_suites: Path) -> None:
    llm = tmp_path / "llama"
    llm.mkdir()
    (llm / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(UnsupportedModelError, match="not a vision-language model.*model_type 'llama'"):
        run_eval(str(llm), EvalConfig(data=str(small_suites)), tmp_path / "out")
    assert not (tmp_path / "out" / "s_yn").exists()


@pytest.mark.slow
def test_eager_run_writes_vlmevalkit_files_answers_as_a_session_does_and_scores_them(
    tiny_dir: Path, small_suites: Path, eager_results: Path, read_predictions
) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    predictions = read_predictions(eager_results)
    assert sorted(predictions) == ["s_mcq", "s_vqa", "s_yn"]
    # the independent reference: a Session asked directly, with VLMEvalKit's prompt text
    session = Session.from_dir(tiny_dir, generation=GenerationConfig(max_new_tokens=MAX_NEW_TOKENS))
    bench = load_benchmark(small_suites.with_name("s_mcq.tsv"))
    for sample in bench.samples:
        from mobile_mllm.eval.data import decode_image

        expected = session.ask(build_prompt(sample, "mcq"), decode_image(sample.images[0])).text.strip()
        assert predictions["s_mcq"][str(sample.index)] == expected
    assert len(predictions["s_mcq"]) == len(bench.samples)  # every rotation answered once

    tsv = next((eager_results / "s_mcq").glob("*.tsv"))
    with tsv.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh, delimiter="\t"))
    with small_suites.with_name("s_mcq.tsv").open(encoding="utf-8", newline="") as fh:
        bench_header = next(csv.reader(fh, delimiter="\t"))
    assert header == [c for c in bench_header if c != "image"] + ["prediction"]  # VLMEvalKit's infer_data_job layout

    summary = json.loads((eager_results / "summary.json").read_text())
    for name in ("s_yn", "s_mcq", "s_vqa"):
        b = summary["benchmarks"][name]
        report = score_predictions(eager_results / b["predictions"], ScoreConfig(dataset_type=DatasetType(b["dataset_type"])))
        assert b["headline"] == pytest.approx(dict(report.headline), nan_ok=True)  # what eval-score says of the file
        assert len(b["samples"]) == len(predictions[name])
        assert all(s["num_tiles"] >= 1 and s["num_image_tokens"] == 16 * s["num_tiles"] for s in b["samples"])
        mean_tiles = sum(s["num_tiles"] for s in b["samples"]) / len(b["samples"])
        assert b["means"]["num_tiles"] == pytest.approx(mean_tiles)
        assert b["means"]["time_to_first_token_ms"] > 0 and b["means"]["decode_tok_s"] > 0


@pytest.mark.slow
def test_fp32_program_answers_exactly_as_the_eager_model(tiny_program: Path, small_suites: Path, eager_results: Path,
                                                         tmp_path: Path, read_predictions) -> None:
    cfg = EvalConfig(data=str(small_suites), max_new_tokens=MAX_NEW_TOKENS, limit=4)
    results = run_eval(str(tiny_program), cfg, tmp_path)
    mcq_rows = len(load_benchmark(small_suites.with_name("s_mcq.tsv")).samples)  # 3 questions: --limit keeps whole groups
    assert [r.num_answered for r in results] == [4, mcq_rows, 4]
    eager = read_predictions(eager_results)
    program = read_predictions(tmp_path)
    for name, answers in program.items():
        assert answers == {k: eager[name][k] for k in answers}, name
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["identity"]["backend"] == "pte"
    with pytest.raises(ConfigError, match="other settings.*max_new_tokens"):  # a resumed run must not mix settings
        run_eval(str(tiny_program), EvalConfig(data=str(small_suites), max_new_tokens=9), tmp_path)


@pytest.mark.slow
def test_skip_bad_rows_reports_an_undecodable_image_and_scores_the_rest(tiny_dir: Path, small_suites: Path,
                                                                         tmp_path: Path) -> None:
    csv.field_size_limit(sys.maxsize)
    with small_suites.with_name("s_yn.tsv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    rows[2][1] = "aGVsbG8gd29ybGQgdGhpcyBpcyBub3QgYW4gaW1hZ2UgYXQgYWxsLCBqdXN0IHRleHQ="  # base64 of text
    bad = tmp_path / "broken_yn.tsv"
    with bad.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, delimiter="\t", lineterminator="\n").writerows(rows)
    bad.with_suffix(".toml").write_text('tsv = "broken_yn.tsv"\ndataset_type = "yn"\nsynthetic = false\n')
    with pytest.raises(EvalDataError, match=r"broken_yn.tsv:3 \(index 1\): .*undecodable image.*--skip-bad-rows"):
        run_eval(str(tiny_dir), EvalConfig(data=str(bad)), tmp_path / "strict")
    results = run_eval(str(tiny_dir), EvalConfig(data=str(bad), skip_bad_rows=True, max_new_tokens=2), tmp_path / "lenient")
    assert results[0].num_answered == len(rows) - 2
    assert [b.index for b in results[0].bad_rows] == ["1"]
    summary = json.loads((tmp_path / "lenient" / "summary.json").read_text())
    assert summary["benchmarks"]["broken_yn"]["bad_rows"][0]["index"] == "1"


W4_PROGRAM = Path(os.environ.get("MOBILE_MLLM_W4_PROGRAM", "/work/coord/baseline/w4"))
"""A w4 export of builtin:synth-small (``mobile-mllm export -o DIR``); the test skips without one."""
W4_MAX_DIFFERENT = 3
"""Of the 24 questions below, at most this many w4 answers may differ from the float model's. Recorded:
11 of 223 answers differ on the whole quick suite (4.9 %; bench/RESULTS.md), 0 of these 24."""


@pytest.mark.slow
@pytest.mark.skipif(not (W4_PROGRAM / "model.pte").is_file(), reason=f"no w4 program of the built-in model at {W4_PROGRAM}")
def test_builtin_w4_program_answers_within_the_recorded_tolerance_of_the_float_model(tmp_path: Path, repo_root: Path,
                                                                                   read_predictions) -> None:
    suite = tmp_path / "three.toml"
    names = ["synth_mcq", "synth_yn", "synth_vqa"]
    suite.write_text("benchmarks = [" + ", ".join(f'"{repo_root / "eval" / n}.toml"' for n in names) + "]\n")
    cfg = EvalConfig(data=str(suite), limit=8, workers=2)
    run_eval("builtin:synth-small", cfg, tmp_path / "float")
    run_eval(str(W4_PROGRAM), cfg, tmp_path / "w4")
    eager, w4 = read_predictions(tmp_path / "float"), read_predictions(tmp_path / "w4")
    assert sorted(eager) == sorted(w4) == sorted(names)
    different = [(n, k) for n in names for k in eager[n] if eager[n][k] != w4[n][k]]
    assert sum(len(v) for v in w4.values()) == 24
    assert len(different) <= W4_MAX_DIFFERENT, different


def test_a_family_adapter_may_override_the_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    from mobile_mllm.eval.run import prompt_hook
    from mobile_mllm.model.reference.adapter import ReferenceAdapter

    assert prompt_hook("builtin:synth-small") is None  # the built-in model was trained on the defaults
    monkeypatch.setattr(ReferenceAdapter, "eval_prompt", lambda self, sample, form, default: "custom", raising=False)
    hook = prompt_hook("builtin:synth-small")
    assert hook is not None and hook(None, "mcq", "x") == "custom"
