"""Scoring a prediction file end to end: merge with the benchmark, pick the type, bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from mobile_mllm.config import from_dict
from mobile_mllm.errors import EvalDataError
from mobile_mllm.eval.score import ScoreConfig, score_predictions
from mobile_mllm.eval.scorers import DatasetType, infer_dataset_type


def write(path: Path, rows: list[list[str]]) -> Path:
    path.write_text("\n".join("\t".join(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("GPT4o_MMBench_DEV_EN_V11", DatasetType.MCQ_CIRCULAR),
        ("MMBench_TEST_CN", DatasetType.MCQ_CIRCULAR),
        ("CCBench", DatasetType.MCQ_CIRCULAR),
        ("my_synth_circular", DatasetType.MCQ_CIRCULAR),
        ("Qwen_MMStar", DatasetType.MCQ),
        ("AI2D_TEST", DatasetType.MCQ),
        ("MME", DatasetType.MME),
        ("MME-RealWorld", DatasetType.MCQ),
        ("model_HallusionBench", DatasetType.HALLUSIONBENCH),
        ("POPE", DatasetType.POPE),
        ("TextVQA_VAL", DatasetType.TEXTVQA),
        ("DocVQA_VAL", DatasetType.DOCVQA),
        ("InfoVQA_TEST", DatasetType.DOCVQA),
        ("ChartQA_TEST", DatasetType.CHARTQA),
        ("OCRVQA_TESTCORE", DatasetType.OCRVQA),
        ("OCRBench", DatasetType.OCRBENCH),
        ("pope", None),  # VLMEvalKit's checks are case-sensitive except the circular ones
    ],
)
def test_infer_dataset_type_from_name(name: str, expected: DatasetType | None) -> None:
    assert infer_dataset_type(name) == expected


@pytest.mark.parametrize("name", ["preds", "my_quiz", "results_v2", "phone"])
def test_names_that_identify_no_benchmark_infer_nothing(name: str) -> None:
    assert infer_dataset_type(name) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [("MCQ", DatasetType.MCQ), ("Y/N", DatasetType.YN), ("y/n", DatasetType.YN), ("MCQ_CIRCULAR", DatasetType.MCQ_CIRCULAR),
     ("HallusionBench", DatasetType.HALLUSIONBENCH), ("TextVQA", DatasetType.TEXTVQA), (" pope ", DatasetType.POPE)],
)
def test_dataset_types_are_case_insensitive_and_take_vlmevalkit_spellings(text: str, expected: DatasetType) -> None:
    assert DatasetType(text) is expected
    assert ScoreConfig(dataset_type=text).dataset_type == text  # the dataclass stores what it was given ...
    assert from_dict(ScoreConfig, {"dataset_type": text}).dataset_type is expected  # ... config files coerce it


def test_unknown_dataset_type_spelling_is_refused() -> None:
    with pytest.raises(ValueError):
        DatasetType("VQA")  # VLMEvalKit's generic VQA names no one scorer (TextVQA? DocVQA?)


BENCH = [
    ["index", "question", "A", "B", "answer", "category"],
    ["1", "q1", "cat", "dog", "A", "x"],
    ["2", "q2", "cat", "dog", "B", "x"],
    ["3", "q3", "cat", "dog", "B", "y"],
]


def test_predictions_with_only_index_and_prediction_are_filled_from_data(tmp_path: Path) -> None:
    data = write(tmp_path / "quiz.tsv", BENCH)
    pred = write(tmp_path / "phone.tsv", [["index", "prediction"], ["1", "A"], ["2", "cat"], ["3", "dog"]])
    report = score_predictions(pred, ScoreConfig(data=data, dataset_type=DatasetType.MCQ))
    assert report.dataset_type == "mcq" and report.dataset_name == "quiz"
    assert report.tables[0].as_records() == [{"split": "none", "Overall": pytest.approx(2 / 3), "x": 0.5, "y": 1.0}]


def test_benchmark_answer_overrides_the_prediction_files_answer(tmp_path: Path) -> None:
    data = write(tmp_path / "quiz.tsv", BENCH)
    pred = write(tmp_path / "p.tsv", [["index", "answer", "prediction"], ["1", "B", "A"]])
    assert score_predictions(pred, ScoreConfig(data=data, dataset_type=DatasetType.MCQ)).headline == {"Overall": 100.0}


def test_missing_prediction_cell_scores_as_nan_text(tmp_path: Path) -> None:
    pred = write(tmp_path / "x_yn.tsv", [["index", "answer", "prediction"], ["1", "Yes", ""], ["2", "No", "no"]])
    report = score_predictions(pred, ScoreConfig(dataset_type=DatasetType.YN))
    assert [d[3] for d in report.details.rows] == ["nan", "no"] and report.headline == {"Overall": 50.0}


def test_suite_toml_beside_the_data_decides_the_type(tmp_path: Path) -> None:
    data = write(tmp_path / "anything.tsv", [["index", "question", "answer"], ["1", "q", "Yes"]])
    (tmp_path / "anything.toml").write_text('tsv = "anything.tsv"\ndataset_type = "yn"\nsynthetic = false\n')
    pred = write(tmp_path / "p.tsv", [["index", "prediction"], ["1", "yes"]])
    assert score_predictions(pred, ScoreConfig(data=data)).dataset_type == "yn"


def test_undecidable_type_lists_the_choices(tmp_path: Path) -> None:
    pred = write(tmp_path / "mystery.tsv", [["index", "answer", "prediction"], ["1", "x", "x"]])
    with pytest.raises(EvalDataError, match=r"pass --dataset-type \(one of: mcq, mcq-circular, yn"):
        score_predictions(pred)


def test_option_columns_alone_do_not_decide_mcq(tmp_path: Path) -> None:
    # The newcomer's preds.tsv was scored as MCQ "inferred from the name preds".
    pred = write(tmp_path / "preds.tsv", [BENCH[0] + ["prediction"], BENCH[1] + ["A"]])
    with pytest.raises(EvalDataError, match=r"name 'preds' identifies no known benchmark \(it has option columns A/B: --dataset-type mcq\?\)"):
        score_predictions(pred)


def test_missing_column_names_the_column(tmp_path: Path) -> None:
    pred = write(tmp_path / "MME.tsv", [["index", "category", "answer", "prediction"], ["1", "OCR", "Yes", "yes"]])
    with pytest.raises(EvalDataError, match=r"lacks column\(s\) 'image_path' needed to score mme"):
        score_predictions(pred)
    pred = write(tmp_path / "p.tsv", [["index", "answer"], ["1", "Yes"]])
    with pytest.raises(EvalDataError, match=r"lacks column\(s\) 'prediction'"):
        score_predictions(pred, ScoreConfig(dataset_type=DatasetType.YN))


def test_bad_rows_stop_or_are_skipped(tmp_path: Path) -> None:
    pred = write(
        tmp_path / "model_HallusionBench.tsv",
        [
            ["index", "category", "l2-category", "answer", "prediction"],
            ["VS_chart_x_0_0_0", "VS", "chart", "Yes", "Yes"],
            ["broken_index", "VS", "chart", "Yes", "Yes"],  # too few '_' tokens
            ["VS_chart_x_0_0_1", "VS", "chart", "", "No"],  # no answer
            ["VS_chart_x_0_0_0", "VS", "chart", "Yes", "No"],  # duplicate index
        ],
    )
    with pytest.raises(EvalDataError, match=r"model_HallusionBench\.tsv:3 \(index broken_index\): HallusionBench index"):
        score_predictions(pred)
    report = score_predictions(pred, ScoreConfig(skip_bad_rows=True))
    assert [(b.line, b.index) for b in report.bad_rows] == [(3, "broken_index"), (4, "VS_chart_x_0_0_1"), (5, "VS_chart_x_0_0_0")]
    assert "duplicate index" in report.bad_rows[2].reason
    assert report.headline["aAcc"] == 100.0 and len(report.details.rows) == 1


def test_prediction_index_not_in_benchmark(tmp_path: Path) -> None:
    data = write(tmp_path / "quiz.tsv", BENCH)
    pred = write(tmp_path / "p.tsv", [["index", "prediction"], ["1", "A"], ["42", "B"]])
    with pytest.raises(EvalDataError, match=r"p\.tsv:3 \(index 42\): index not found in the benchmark"):
        score_predictions(pred, ScoreConfig(data=data, dataset_type=DatasetType.MCQ))
    report = score_predictions(pred, ScoreConfig(data=data, dataset_type=DatasetType.MCQ, skip_bad_rows=True))
    assert report.headline == {"Overall": 100.0} and len(report.bad_rows) == 1


def test_ocrbench_unknown_category_is_a_bad_row(tmp_path: Path) -> None:
    pred = write(tmp_path / "OCRBench.tsv", [["index", "category", "answer", "prediction"], ["1", "Poetry", "['a']", "a"]])
    with pytest.raises(EvalDataError, match="category 'Poetry' is not an OCRBench category"):
        score_predictions(pred)


def test_judge_endpoint_unreachable_gives_clear_error(tmp_path: Path) -> None:
    from mobile_mllm.errors import ConfigError

    pred = write(tmp_path / "p_quiz.tsv", [["index", "question", "A", "B", "answer", "prediction"], ["1", "q", "cat", "dog", "A", "no idea"]])
    with pytest.raises(ConfigError, match=r"judge endpoint http://127\.0\.0\.1:9/chat/completions is unreachable"):
        score_predictions(pred, ScoreConfig(dataset_type=DatasetType.MCQ, judge_url="http://127.0.0.1:9"))
