"""Evaluation: read VLMEvalKit benchmarks, build their prompts, extract and score answers exactly as
VLMEvalKit's exact-matching mode does, generate synthetic benchmarks, and run models over them.

Running: ``run.py`` (``mobile-mllm eval``: benchmarks -> prompts -> answers appended to a
resumable VLMEvalKit prediction file -> scores), answered by ``predict.py`` (eager model or
``.pte`` on the host), ``device_predict.py`` (phones over ADB) or ``ray_predict.py`` (a Ray
cluster); ``compare.py`` (``mobile-mllm eval-compare``) sets runs side by side.

Importing this package loads no image or model library (Pillow is imported when images are
decoded or drawn; torch, Ray and matplotlib when a model runs or a chart is drawn).
"""

from mobile_mllm.eval.data import Benchmark, EvalSample, decode_image, load_benchmark, read_table
from mobile_mllm.eval.extract import extract_option, extract_yes_no
from mobile_mllm.eval.prompts import build_mcq_prompt, build_vqa_prompt, build_yn_prompt
from mobile_mllm.eval.report import ScoreReport, ScoreTable, format_summary, write_report
from mobile_mllm.eval.run import EvalBackend, EvalConfig, run_eval
from mobile_mllm.eval.score import ScoreConfig, score_predictions
from mobile_mllm.eval.scorers import DatasetType, infer_dataset_type
from mobile_mllm.eval.suite import SuiteConfig, load_suite, make_bench
from mobile_mllm.eval.synthetic import Form, Kind, SyntheticSample, SyntheticSpec, generate_samples, write_tsv

__all__ = [
    "Benchmark",
    "DatasetType",
    "EvalBackend",
    "EvalConfig",
    "EvalSample",
    "Form",
    "Kind",
    "ScoreConfig",
    "ScoreReport",
    "ScoreTable",
    "SuiteConfig",
    "SyntheticSample",
    "SyntheticSpec",
    "build_mcq_prompt",
    "build_vqa_prompt",
    "build_yn_prompt",
    "decode_image",
    "extract_option",
    "extract_yes_no",
    "format_summary",
    "generate_samples",
    "infer_dataset_type",
    "load_benchmark",
    "load_suite",
    "make_bench",
    "read_table",
    "run_eval",
    "score_predictions",
    "write_report",
    "write_tsv",
]
