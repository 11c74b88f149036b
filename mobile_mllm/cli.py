"""The ``mobile-mllm`` command: parse, call one library function, print the result.

Each subcommand is a pair ``_add_<name>(subparsers)`` / ``_run_<name>(args) -> int`` listed in
``_COMMANDS``. Results go to stdout (a table, or JSON with ``--json``); logs and progress to
stderr. Heavy libraries (torch, executorch, gradio, adb_shell) are imported inside the
``_run_`` functions only, so ``mobile-mllm --help`` stays fast. This is the only place that
catches :class:`~mobile_mllm.errors.MobileMLLMError`: one line on stderr and an exit code per
error family (``-v`` adds the traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from mobile_mllm import __version__
from mobile_mllm.errors import MobileMLLMError

logger = logging.getLogger("mobile_mllm.cli")


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    """A command's result on stdout: one JSON object, or ``key: value`` lines aligned on the colon."""
    if as_json:
        _print_json(result)
        return
    width = max((len(k) for k in result), default=0)
    for k, v in result.items():
        print(f"{k:>{width}}: {v}")


# --------------------------------------------------------------------------- grid


def _add_grid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="show the tile grid a policy picks for an image or a WxH size")
    p.add_argument("image", metavar="IMAGE_OR_WxH", help="an image file, or a size such as 1080x2400")
    from mobile_mllm.config import add_arguments
    from mobile_mllm.vision.processor import VisionConfig

    add_arguments(p, VisionConfig)
    p.add_argument("--token-budget", type=int, default=None, help="largest number of image tokens allowed")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_grid(args: argparse.Namespace) -> int:
    from mobile_mllm.config import resolve  # noqa: PLC0415
    from mobile_mllm.vision.processor import VisionConfig, plan_grid  # noqa: PLC0415

    overrides = dict(vars(args))
    if "max_tiles" in overrides and "max_side" not in overrides:
        overrides["max_side"] = None  # --max-tiles alone: no side bound (internvl may pick 5:1)
    cfg = resolve(VisionConfig, overrides=overrides)
    result = plan_grid(args.image, cfg, token_budget=args.token_budget).summary()
    _print_result(result, args.json)
    return 0


# --------------------------------------------------------------------------- run


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="answer a question about an image on the host (eager model or exported program)")
    from mobile_mllm.model.registry import DEFAULT_MODEL

    p.add_argument(
        "model", metavar="MODEL", nargs="?", default=DEFAULT_MODEL,
        help=f"a model directory, an exported program directory or builtin:NAME (default: {DEFAULT_MODEL})",
    )
    p.add_argument("--image", default=None, help="the image to ask about (omit for a text-only question)")
    p.add_argument("--prompt", required=True, help="the question")
    p.add_argument(
        "--short-answer", action="store_true",
        help="append VLMEvalKit's short-answer instruction to each question (benchmark wording; the built-in model "
             "answers plain questions without it: a model's own prompt style is in its config, question_template)",
    )
    p.add_argument("--follow-up", action="append", default=[], help="another question about the same image (repeatable)")
    p.add_argument("--json", action="store_true", help="print one JSON object (answers and stats) instead of text")
    from mobile_mllm.config import add_arguments
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig

    add_arguments(p, GenerationConfig)
    add_arguments(p, RuntimeConfig)


def _stats_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    grid = f"{stats['grid'][0]}x{stats['grid'][1]}" if stats["grid"] else "-"
    reduced = " (reduced to fit the context)" if stats["reduced_by_budget"] else ""
    return [
        ("model load", f"{stats['model_load_ms']:.0f} ms"),
        ("grid", f"{grid}{reduced}, {stats['num_tiles']} tiles, {stats['num_image_tokens']} image tokens"),
        ("image encode", f"{stats['image_encode_ms']:.1f} ms ({stats['image_encode_ms_per_tile']:.1f} ms/tile)"),
        ("prefill", f"{stats['num_prompt_tokens']} tokens in {stats['prefill_ms']:.1f} ms ({stats['prefill_tok_s']:.1f} tok/s)"),
        ("cached", f"{stats['num_cached_tokens']} tokens reused"),
        ("first token", f"{stats['time_to_first_token_ms']:.1f} ms"),
        ("decode", f"{stats['num_generated_tokens']} tokens ({stats['decode_tok_s']:.1f} tok/s)"),
        ("peak RSS", f"{stats['peak_rss_bytes'] / 2**20:.0f} MiB"),
    ]


def _run_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_mllm.config import log_config, resolve
    from mobile_mllm.errors import ImageError
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig, Session

    runtime = resolve(RuntimeConfig, overrides=args)
    generation = resolve(GenerationConfig, overrides=args)
    if args.image is not None and not Path(args.image).is_file():  # fail before the slow model load
        raise ImageError(f"image file not found: {args.image} (check the path)")
    log_config("runtime", runtime)
    log_config("generation", generation)
    session = Session.from_dir(args.model, runtime=runtime, generation=generation)
    stream = None if args.json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    turns = []
    questions = [args.prompt, *args.follow_up]
    if args.short_answer:
        from mobile_mllm.eval.prompts import build_vqa_prompt

        questions = [build_vqa_prompt(q) for q in questions]
    for i, question in enumerate(questions):
        if not args.json:
            print(f"> {question}", flush=True)
        answer = session.ask(question, args.image if i == 0 else None, on_token=stream)
        stats = answer.stats.to_dict()
        turns.append({"prompt": question, "answer": answer.text, "stop_reason": answer.stop_reason,
                      "tokens": list(answer.tokens), "stats": stats})
        if not args.json:
            print(f"\n[stopped: {answer.stop_reason}]")
            for name, value in _stats_rows(stats):
                print(f"{name:>13}: {value}")
            print(answer.stats.observer_line())
    if args.json:
        _print_json({"model": args.model, "image": args.image, "turns": turns})
    return 0


# --------------------------------------------------------------------------- init-model


def _add_init_model(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.model.reference.init_model import STORAGE_DTYPES
    from mobile_mllm.model.reference.presets import PRESETS

    p = sub.add_parser("init-model", help="write a random-weight model directory of a preset (tests, speed numbers)")
    p.add_argument("--preset", required=True, choices=list(PRESETS), help="architecture preset")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write (created)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    p.add_argument("--dtype", choices=list(STORAGE_DTYPES), default=None,
                   help="storage dtype (default: bfloat16 for bluelm-v-3b, float32 otherwise)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_init_model(args: argparse.Namespace) -> int:
    import dataclasses

    from mobile_mllm.model.reference.init_model import init_model

    result = dataclasses.asdict(init_model(args.preset, args.output, seed=args.seed, dtype=args.dtype))
    _print_result(result, args.json)
    return 0


# --------------------------------------------------------------------------- eval-score


def _add_eval_score(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.config import add_arguments
    from mobile_mllm.eval.score import ScoreConfig

    p = sub.add_parser("eval-score", help="score a VLMEvalKit prediction file (.tsv/.xlsx) as VLMEvalKit would")
    p.add_argument("predictions", metavar="PREDICTIONS", help="prediction file: benchmark columns plus 'prediction'")
    add_arguments(p, ScoreConfig)
    p.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR", help="where the CSV and JSON tables go")
    p.add_argument("--json", action="store_true", help="print scores.json's content instead of the text summary")


def _run_eval_score(args: argparse.Namespace) -> int:
    from mobile_mllm.config import log_config, resolve, to_dict
    from mobile_mllm.eval.report import format_summary, write_report
    from mobile_mllm.eval.score import ScoreConfig, score_predictions

    config = resolve(ScoreConfig, overrides=args)
    log_config("eval-score", config)
    report = score_predictions(args.predictions, config)
    paths = write_report(report, args.output_dir, config={"predictions": args.predictions, **to_dict(config)})
    if args.json:
        print(paths[-1].read_text(encoding="utf-8"), end="")
    else:
        print(format_summary(report))
    return 0


# --------------------------------------------------------------------------- make-bench


def _add_make_bench(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.config import add_arguments
    from mobile_mllm.eval.suite import SuiteConfig
    from mobile_mllm.eval.synthetic import SyntheticSpec

    p = sub.add_parser("make-bench", help="write a synthetic VLMEvalKit-format benchmark TSV (+ its suite TOML)")
    p.add_argument("-o", "--output", metavar="FILE.tsv", help="TSV to write (default: the --suite's tsv)")
    p.add_argument("--suite", metavar="SUITE.toml", help="start from an existing suite record (regenerates it exactly)")
    add_arguments(p, SuiteConfig, exclude=("tsv", "dataset_type", "synthetic", "spec"))
    add_arguments(p, SyntheticSpec)


def _run_make_bench(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_mllm.errors import ConfigError
    from mobile_mllm.eval.suite import build_suite_config, make_bench

    suite = build_suite_config(args.suite, vars(args))
    if args.output is None and args.suite is None:
        raise ConfigError("make-bench needs -o FILE.tsv (or --suite SUITE.toml to regenerate a suite)")
    out = Path(args.output) if args.output else Path(args.suite).with_name(suite.tsv)
    record, rows = make_bench(suite, out)
    print(f"wrote {out} ({rows} rows, {out.stat().st_size} bytes, dataset type {record.dataset_type.value}) "
          f"and {out.with_suffix('.toml')}")
    return 0


# --------------------------------------------------------------------------- export


def _add_export(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.config import add_arguments
    from mobile_mllm.export.program import ExportJob, TargetConfig
    from mobile_mllm.quant.recipe import PRESETS, QuantConfig

    p = sub.add_parser("export", help="export a model directory to an ExecuTorch .pte (+ tokenizer, manifest, report)")
    from mobile_mllm.model.registry import DEFAULT_MODEL

    p.add_argument(
        "model", metavar="MODEL", nargs="?", default=DEFAULT_MODEL,
        help=f"the model directory or builtin:NAME (default: {DEFAULT_MODEL})",
    )
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="directory to write (created)")
    p.add_argument(
        "--recipe", default="w4", metavar="RECIPE",
        help=f"precision preset ({', '.join(PRESETS)}) or an export recipe .toml (default: w4); flags override it",
    )
    p.add_argument("--json", action="store_true", help="print the export report as JSON")
    add_arguments(p, TargetConfig)
    add_arguments(p, QuantConfig)
    add_arguments(p, ExportJob, exclude=("model", "output", "quant", "target"))


def _divergence_note(divergence: dict[str, float] | None) -> str:
    """Where two greedy runs part, with the top-2 logit margins there (a near-tie is int8 noise, not a bug)."""
    if not divergence:
        return ""
    return (f" (first difference at token {divergence['token']}: top-2 logit margin there "
            f"{divergence['margin']:.3f} in the program, {divergence['reference_margin']:.3f} in the reference)")


def _run_export(args: argparse.Namespace) -> int:
    import dataclasses

    from mobile_mllm.config import log_config, resolve, to_dict
    from mobile_mllm.export.program import STAGES, ExportJob, TargetConfig, export_program
    from mobile_mllm.quant.recipe import PRESETS, QuantConfig, preset
    from mobile_mllm.runtime.parity import verify_export

    given = vars(args)
    overrides: dict[str, Any] = {"model": args.model, "output": args.output}
    for table, cls in (("target", TargetConfig), ("quant", QuantConfig)):
        overrides.update({f"{table}.{f.name}": given[f.name] for f in dataclasses.fields(cls) if f.name in given})
    overrides.update({k: given[k] for k in ("verify", "verify_tokens", "seed") if k in given})
    if args.recipe not in PRESETS and not args.recipe.endswith(".toml"):
        preset(args.recipe)  # raises ConfigError listing the presets
    recipe: Any = {"quant": to_dict(PRESETS[args.recipe])} if args.recipe in PRESETS else args.recipe
    job = resolve(ExportJob, recipe=recipe, overrides=overrides)
    log_config("export", job)
    bar = None
    if sys.stderr.isatty() and not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=len(STAGES), file=sys.stderr, desc="export", unit="stage")

    def on_progress(stage: str, module: str) -> None:
        if bar is not None:
            bar.n = STAGES.index(stage) + 1
            bar.set_description(f"{stage} {module}"[:60])
            bar.refresh()

    try:
        result = export_program(job, verifier=verify_export, on_progress=on_progress)
    finally:
        if bar is not None:
            bar.close()
    report = result.report
    if args.json:
        _print_json(report)
        return 0
    q = report["quantization"]
    print(f"{'output':>22}: {result.output}")
    print(f"{'program':>22}: {report['program']['size_bytes'] / 1e6:.2f} MB, {report['bytes_per_parameter']:.3f} bytes/parameter")
    print(f"{'precision':>22}: {q['by_method']}")
    print(f"{'fallbacks':>22}: {len(q['fallbacks'])}" + "".join(f"\n{'':>24}{f['name']}: {f['reason']}" for f in q["fallbacks"]))
    print(f"{'unexpected fp32 layers':>22}: {q['num_unexpected_fp32']}")
    v = report["verification"]
    if v is not None:
        print(f"{'rel err vs quant':>22}: median (allowed) / max (allowed); the eager model's own 1-ulp noise floor: "
              "median / max; samples without int8 rounding flips")
        for method, s in v["by_method"].items():
            print(f"{method:>22}: {s['median_rel_err_vs_quantized']:.2e} ({s['tolerance']:.1e}) / "
                  f"{s['max_rel_err_vs_quantized']:.2e} ({s['flip_tolerance']:.1e}); floor {s['median_noise_floor']:.2e} / "
                  f"{s['max_noise_floor']:.2e}; {s['num_exact']}/{s['num_samples']} without flips")
        print(f"{'max rel err vs float':>22}: {v['max_rel_err_vs_float']:.2e}")
        g = v["greedy"]
        print(f"{'greedy vs float':>22}: {g['num_agreeing_prefix']}/{g['num_tokens']} first tokens agree"
              + _divergence_note(g.get("first_divergence_vs_float")))
        if "num_agreeing_prefix_vs_quantized" in g:
            print(f"{'greedy vs quantized':>22}: {g['num_agreeing_prefix_vs_quantized']}/{g['num_tokens']} first tokens agree"
                  + _divergence_note(g.get("first_divergence_vs_quantized")))
    else:
        print(f"{'verification':>22}: skipped (--no-verify)")
    print(f"{'export time':>22}: {report['export_time_s']:.1f} s")
    return 0


# --------------------------------------------------------------------------- train-reference


def _add_train_reference(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.config import add_arguments
    from mobile_mllm.train.loop import TrainConfig

    p = sub.add_parser(
        "train-reference", help="train the small reference model on synthetic visual questions (resumable)",
        description="Train the small reference model on synthetic visual questions (resumable). On several GPUs, start it "
                    "with torchrun (`torchrun --standalone --nproc-per-node N -m mobile_mllm.cli train-reference ...`): "
                    "data-parallel, --batch-size is the global batch, rank 0 writes the run directory.")
    add_arguments(p, TrainConfig)
    p.add_argument("-o", "--output", required=True, metavar="DIR",
                   help="run directory: checkpoint.pt, train_log.jsonl and model/ (an existing checkpoint is resumed)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_train_reference(args: argparse.Namespace) -> int:
    import dataclasses

    from mobile_mllm.config import log_config, resolve
    from mobile_mllm.train.distributed import World
    from mobile_mllm.train.loop import TrainConfig, train_reference

    config = resolve(TrainConfig, overrides=args)
    log_config("train-reference", config)
    result = {k: str(v) if k in ("output", "model_dir") else v
              for k, v in dataclasses.asdict(train_reference(config, args.output)).items()}
    if World.from_env().is_main:  # one summary, not one per torchrun process
        _print_result(result, args.json)
    return 0


# --------------------------------------------------------------------------- main

_COMMANDS: list[tuple[str, Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = [
    ("grid", _add_grid, _run_grid),
    ("run", _add_run, _run_run),
    ("init-model", _add_init_model, _run_init_model),
    ("eval-score", _add_eval_score, _run_eval_score),
    ("make-bench", _add_make_bench, _run_make_bench),
    ("export", _add_export, _run_export),
    ("train-reference", _add_train_reference, _run_train_reference),
]


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (used by ``main`` and by tests that check flags)."""
    parser = argparse.ArgumentParser(
        prog="mobile-mllm",
        description="Deploy multimodal LLMs on Android phones: export, run, profile and evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"mobile-mllm {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv: debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for _name, add, _run in _COMMANDS:
        add(sub)
    return parser


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose >= 2 else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname).1s %(name)s: %(message)s" if verbose else "%(message)s"))
    root = logging.getLogger("mobile_mllm")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # Import-time warnings of dependencies that say nothing about the user's job (torchao's
    # optional CUDA kernels failing to load on a CPU machine, a torch deprecation torchao
    # triggers); shown again with -vv.
    for name in _NOISY_DEPENDENCY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if verbose >= 2 else logging.ERROR)
    # Likewise the deprecation notices torch/ExecuTorch raise at every lowering pass (an export
    # printed ~30 FutureWarnings: ``LeafSpec`` in copyreg, ``_check_is_size`` in ExecuTorch's
    # custom ops); this package raises no FutureWarning of its own.
    if verbose < 2:
        warnings.filterwarnings("ignore", category=FutureWarning)


_NOISY_DEPENDENCY_LOGGERS = ("torchao", "torch.utils._pytree")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``mobile-mllm`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose, args.quiet)
    runners = {name: run for name, _add, run in _COMMANDS}
    try:
        return runners[args.command](args)
    except MobileMLLMError as e:
        if args.verbose:
            logger.exception("error")
        print(f"mobile-mllm {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("mobile-mllm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
