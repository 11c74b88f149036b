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

from mobile_mllm import __version__, contract
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


def _check_output(path: str, *, folder: bool) -> None:
    """Refuse an output path that cannot be created before any slow work starts (writes stay atomic in the library).

    Checks the path's nearest existing ancestor rather than file modes alone: root ignores modes,
    but not a regular file standing where a folder must be.
    """
    import os
    from pathlib import Path

    from mobile_mllm.errors import OutputError

    target = Path(path)
    if target.exists() and target.is_dir() != folder:
        raise OutputError(f"cannot write {target}: it exists and is {'a file' if folder else 'a folder'}; "
                          f"-o takes {'a folder' if folder else 'a file'} path")
    parent = next(p for p in (target, *target.absolute().parents) if p.exists())
    if not parent.is_dir():
        raise OutputError(f"cannot write {target}: {parent} is a file, not a folder; choose another -o")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {target}: folder {parent} is not writable; choose another -o")


# --------------------------------------------------------------------------- grid


def _add_grid(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grid", help="show the tile grid a model (or a policy) picks for an image or a WxH size")
    from mobile_mllm.model.registry import DEFAULT_MODEL

    p.add_argument(
        "model", metavar="MODEL", nargs="?", default=DEFAULT_MODEL,
        help=f"whose preprocessing to show, as for run: a model directory, an exported program directory or "
             f"builtin:NAME (default: {DEFAULT_MODEL}); the flags below override its settings",
    )
    p.add_argument("image", metavar="IMAGE_OR_WxH", help="an image file, or a size such as 1080x2400")
    from mobile_mllm.config import add_arguments
    from mobile_mllm.vision.config import VisionConfig

    add_arguments(p, VisionConfig)
    p.add_argument("--token-budget", type=int, default=None, help="largest number of image tokens allowed")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _run_grid(args: argparse.Namespace) -> int:
    from pathlib import Path  # noqa: PLC0415

    from mobile_mllm.config import resolve, to_dict  # noqa: PLC0415
    from mobile_mllm.runtime.preflight import check_image, read_vision_config  # noqa: PLC0415
    from mobile_mllm.vision.config import VisionConfig, with_grid_limits  # noqa: PLC0415
    from mobile_mllm.vision.processor import plan_grid  # noqa: PLC0415

    given = vars(args)
    cfg = resolve(VisionConfig, recipe=to_dict(read_vision_config(args.model)), overrides=given)
    limits = {k: getattr(cfg, k) if k in given else None for k in ("max_tiles", "max_side")}
    cfg = with_grid_limits(cfg, **limits)  # --max-tiles alone lifts the side bound, as export's does
    if Path(args.image).exists():  # a file run would refuse (truncated, not an image) gets no grid either
        check_image(Path(args.image), cfg)
    result = plan_grid(args.image, cfg, token_budget=args.token_budget).summary()
    _print_result({"model": args.model, **result}, args.json)
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
    p.add_argument("--serial", default=None, help="run on this ADB device (host:port or USB serial) instead of the host")
    p.add_argument("--remote-dir", default=None, help="program folder on the device (with --serial)")
    from mobile_mllm.config import add_arguments
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig

    add_arguments(p, GenerationConfig)
    add_arguments(p, RuntimeConfig)


def _run_run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_mllm.config import log_config, resolve
    from mobile_mllm.runtime.preflight import check_image, check_question, read_vision_config
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig, Session
    from mobile_mllm.runtime.stats_text import stats_rows

    runtime = resolve(RuntimeConfig, overrides=args)
    generation = resolve(GenerationConfig, overrides=args)
    for text in (args.prompt, *args.follow_up):  # every input is checked before the slow model load
        check_question(text)
    vision = read_vision_config(args.model)
    image = None if args.image is None else check_image(Path(args.image), vision)
    if args.serial is not None:
        return _run_on_device(args, generation)
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
        session.check(question, image if i == 0 else None)  # an over-long prompt is refused before it is echoed
        if not args.json:
            print(f"> {question}", flush=True)
        answer = session.ask(question, image if i == 0 else None, on_token=stream)
        stats = answer.stats.to_dict()
        turns.append({"prompt": question, "answer": answer.text, "stop_reason": answer.stop_reason,
                      "tokens": list(answer.tokens), "stats": stats})
        if not args.json:
            print(f"\n[stopped: {answer.stop_reason}]")
            for name, value in stats_rows(stats):
                print(f"{name:>13}: {value}")
            print(answer.stats.observer_line())
    if args.json:
        _print_json({"model": args.model, "image": args.image, "turns": turns})
    return 0


def _run_on_device(args: argparse.Namespace, generation: Any) -> int:
    """``run --serial``: the answer streamed from the device's runner, then its stats rows."""
    from pathlib import Path

    from mobile_mllm.device.run import RunnerConfig, answer_on_device
    from mobile_mllm.runtime.stats_text import stats_rows

    cfg = RunnerConfig(max_new_tokens=generation.max_new_tokens, tile_batch=getattr(args, "tile_batch", None),
                       prefill_chunk=getattr(args, "prefill_chunk", None))
    stream = None if args.json else (lambda piece: (sys.stdout.write(piece), sys.stdout.flush()))
    with _progress("push") as on_progress:
        result = answer_on_device(args.serial, Path(args.model), Path(args.image) if args.image else None, args.prompt,
                                  cfg, remote_dir=args.remote_dir, on_text=stream, on_progress=on_progress)
    if args.json:
        _print_json({"serial": args.serial, "runs": list(result.records), "peak_memory_bytes": result.peak_memory_bytes})
        return 0
    for name, value in stats_rows(result.records[-1]):
        print(f"{name:>13}: {value}")
    print(f"{'peak memory':>13}: {result.peak_memory_bytes / 2**20:.0f} MiB (sampled on the device)")
    return 0


def _progress(desc: str) -> Any:
    """A context giving an ``on_progress(name, done, total)`` callback drawn with tqdm on a terminal."""
    import contextlib

    @contextlib.contextmanager
    def bar() -> Any:
        state: dict[str, Any] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            if not sys.stderr.isatty():
                return
            if "bar" not in state:
                from tqdm import tqdm

                state["bar"] = tqdm(total=total, unit="B", unit_scale=True, file=sys.stderr, desc=desc)
            state["bar"].set_description(f"{desc} {name}")
            state["bar"].update(done - state["bar"].n)

        try:
            yield on_progress
        finally:
            if "bar" in state:
                state["bar"].close()

    return bar()


# --------------------------------------------------------------------------- devices, push, profile, loopback


def _add_devices(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("devices", help="list ADB devices: serial, state, model, SoC, ABI, Android, RAM, free space")
    p.add_argument("--json", action="store_true", help="print a JSON list")


def _run_devices(args: argparse.Namespace) -> int:
    from mobile_mllm.device.discover import list_devices

    devices = [d.to_dict() for d in list_devices()]
    if args.json:
        _print_json(devices)
        return 0
    print("serial                 state         model            soc                 abi          android   RAM     free")
    for d in devices:
        print(f"{d['serial']:<22} {d['state']:<13} {d['model'][:16]:<16} {d['soc'][:19]:<19} {d['abi']:<12} "
              f"{d['android_version'][:9]:<9} {d['ram_bytes'] / 2**30:4.1f}G {d['free_bytes'] / 2**30:6.1f}G")
    if not devices:
        print("(none: connect a phone with USB debugging on, or set MOBILE_MLLM_ADB_DEVICES=HOST:PORT)")
    return 0


def _add_push(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("push", help="push an exported program folder to a device (skips files already there)")
    p.add_argument("out", metavar="OUT", help="the export folder")
    p.add_argument("--serial", default=None, help="the device (default: the only one connected)")
    p.add_argument("--remote-dir", default=None, help="folder on the device (default /data/local/tmp/mobile_mllm/NAME)")


def _run_push(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_mllm.device.discover import describe, open_device
    from mobile_mllm.device.push import program_files, push_program

    program_files(Path(args.out))  # a wrong folder fails before any device is contacted
    with open_device(args.serial) as device, _progress("push") as on_progress:
        result = push_program(device, Path(args.out), remote_dir=args.remote_dir,
                              abi=describe(device, device.serial).abi, on_progress=on_progress)
    _print_result({"serial": device.serial, "remote_dir": result.remote_dir, "pushed": ", ".join(result.pushed) or "-",
                   "skipped": ", ".join(result.skipped) or "-", "bytes_sent": result.bytes_sent}, False)
    return 0


def _add_profile(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="profile exported programs on a device: JSON, table and PNG charts")
    p.add_argument("outs", metavar="OUT", nargs="+", help="export folders (one table column each)")
    p.add_argument("--serial", default=None, help="the device (default: the only one connected)")
    p.add_argument("--image", default=None, help="the image")
    p.add_argument("--prompt", required=True, help="the question")
    p.add_argument("--etdump", action="store_true", help="collect ExecuTorch's per-operator profile (ETDump)")
    p.add_argument("--remote-dir", default=None, help="folder on the device (one program only)")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR", help="where profile.json and the charts go")
    from mobile_mllm.config import add_arguments
    from mobile_mllm.device.profile import ProfileConfig

    add_arguments(p, ProfileConfig)


def _run_profile(args: argparse.Namespace) -> int:
    from pathlib import Path

    from mobile_mllm.config import resolve
    from mobile_mllm.device.profile import ProfileConfig, format_table, profile_programs

    cfg = resolve(ProfileConfig, overrides=args)
    _check_output(args.output, folder=True)
    with _progress("push") as on_progress:
        facts, programs, written = profile_programs(
            args.serial, [Path(o) for o in args.outs], Path(args.image) if args.image else None, args.prompt, cfg,
            Path(args.output), remote_dir=args.remote_dir, etdump=args.etdump, on_progress=on_progress)
    print(format_table(facts, programs))
    for p in programs:
        if p.etdump:
            from mobile_mllm.runtime.etdump import format_etdump

            print(f"\n{p.name}: ETDump\n{format_etdump(p.etdump)}")
    print("\nwrote " + ", ".join(str(w) for w in written))
    return 0


def _add_loopback_device(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("loopback-device", help="serve a loopback ADB device on 127.0.0.1 (the push/profile flow, no phone)")
    from mobile_mllm.config import add_arguments
    from mobile_mllm.device.loopback import LoopbackConfig

    add_arguments(p, LoopbackConfig)


def _run_loopback_device(args: argparse.Namespace) -> int:
    from mobile_mllm.config import resolve
    from mobile_mllm.device.loopback import LoopbackConfig, LoopbackDevice

    config = resolve(LoopbackConfig, overrides=args)
    if config.root is not None:
        _check_output(config.root, folder=True)
    device = LoopbackDevice(config).start()
    print(f"loopback device {device.config.serial} on {device.address} (/data/local/tmp = {device.root}); "
          f"try: mobile-mllm devices (MOBILE_MLLM_ADB_DEVICES={device.address}) or adb connect {device.address}", flush=True)
    try:
        device.serve_forever()
    finally:
        device.close()
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

    _check_output(args.output, folder=True)
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
    from mobile_mllm.eval.data import check_table_file
    from mobile_mllm.eval.report import format_summary, write_report
    from mobile_mllm.eval.score import ScoreConfig, score_predictions

    config = resolve(ScoreConfig, overrides=args)
    for table in (args.predictions, config.data):
        if table is not None:
            check_table_file(table)
    _check_output(args.output_dir, folder=True)
    log_config("eval-score", config)
    report = score_predictions(args.predictions, config)
    paths = write_report(report, args.output_dir, config={"predictions": args.predictions, **to_dict(config)})
    if args.json:
        print(paths[-1].read_text(encoding="utf-8"), end="")
    else:
        print(format_summary(report))
    return 0


# --------------------------------------------------------------------------- eval


def _add_eval(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.config import add_arguments
    from mobile_mllm.eval.run import EvalConfig
    from mobile_mllm.model.registry import DEFAULT_MODEL

    p = sub.add_parser("eval", help="answer benchmarks with a model (eager, .pte or phone), appending and scoring predictions")
    p.add_argument(
        "model", metavar="MODEL_OR_PROGRAM", nargs="?", default=DEFAULT_MODEL,
        help=f"a model directory, an exported program directory or builtin:NAME (default: {DEFAULT_MODEL})",
    )
    add_arguments(p, EvalConfig, exclude=("ray",))
    p.add_argument("--ray", nargs="?", const="local", default=argparse.SUPPRESS, metavar="ADDRESS",
                   help="shard questions over a Ray cluster: no ADDRESS starts a local one, else e.g. auto or ray://head:10001")
    p.add_argument("-o", "--output-dir", required=True, metavar="RESULTS_DIR",
                   help="results directory (an interrupted run there is resumed)")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the text summary")


def _run_eval(args: argparse.Namespace) -> int:
    from mobile_mllm.config import log_config, resolve
    from mobile_mllm.eval.report import format_summary
    from mobile_mllm.eval.run import SUMMARY_FILE, EvalConfig, EvalProgress, run_eval

    config = resolve(EvalConfig, overrides=args)
    _check_output(args.output_dir, folder=True)
    log_config("eval", config)
    bars: dict[str, Any] = {}
    show = sys.stderr.isatty() and not args.quiet

    def on_progress(p: EvalProgress) -> None:
        if not show:
            return
        from tqdm import tqdm

        bar = bars.get(p.benchmark)
        if bar is None:
            bar = bars[p.benchmark] = tqdm(total=p.total, initial=p.resumed, desc=p.benchmark, unit="q", file=sys.stderr)
        bar.n = p.done
        bar.set_postfix_str(f"acc {100 * p.running_score:.1f}%")
        if p.done >= p.total:
            bar.close()

    try:
        results = run_eval(args.model, config, args.output_dir, on_progress=on_progress)
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        from pathlib import Path

        print((Path(args.output_dir) / SUMMARY_FILE).read_text(encoding="utf-8"), end="")
        return 0
    for r in results:
        print(format_summary(r.report, tables=()))
        m = r.means
        print(f"answered {r.num_answered} ({r.num_resumed} resumed) -> {r.prediction_file}")
        print(f"mean per question: {m['num_tiles']:.2f} tiles, {m['num_image_tokens']:.0f} image tokens, "
              f"encode {m['image_encode_ms']:.1f} ms, first token {m['time_to_first_token_ms']:.1f} ms, "
              f"decode {m['decode_tok_s']:.1f} tok/s\n")
    return 0


def _add_eval_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval-compare", help="compare eval results side by side (accuracy, paired McNemar test, tokens, latency)")
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="results directories of `mobile-mllm eval` (the first is the baseline)")
    p.add_argument("--label", action="append", default=None, help="a name per results directory, in order (repeatable)")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR", help="where compare.md, compare.json and compare.png go")


def _run_eval_compare(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from mobile_mllm.errors import ConfigError
    from mobile_mllm.eval.compare import compare_runs, format_markdown, load_results, plot_comparison

    labels = args.label or [None] * len(args.results)
    if len(labels) != len(args.results):
        raise ConfigError(f"{len(labels)} --label value(s) for {len(args.results)} results directories; give one per directory")
    _check_output(args.output_dir, folder=True)
    comparisons = compare_runs([load_results(r, label) for r, label in zip(args.results, labels)])
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    text = format_markdown(comparisons)
    (out / "compare.md").write_text(text, encoding="utf-8")
    (out / "compare.json").write_text(json.dumps([dataclasses.asdict(c) for c in comparisons], indent=2, default=str) + "\n",
                                      encoding="utf-8")
    plot_comparison(comparisons, out / "compare.png")
    print(text, end="")
    logger.info("wrote %s", ", ".join(str(out / n) for n in ("compare.md", "compare.json", "compare.png")))
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

    if args.output is None and args.suite is None:
        raise ConfigError("make-bench needs -o FILE.tsv (or --suite SUITE.toml to regenerate a suite)")
    suite = build_suite_config(args.suite, vars(args))
    if args.output is None and not suite.tsv:
        raise ConfigError(f"{args.suite} names no tsv file; pass -o FILE.tsv")
    out = Path(args.output) if args.output else Path(args.suite).with_name(suite.tsv)
    _check_output(str(out), folder=False)
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
    from mobile_mllm.model.registry import read_vision_config
    from mobile_mllm.quant.recipe import PRESETS, QuantConfig, preset
    from mobile_mllm.runtime.parity import verify_export

    given = vars(args)
    overrides: dict[str, Any] = {"model": args.model, "output": args.output}
    for table, cls in (("target", TargetConfig), ("quant", QuantConfig)):
        overrides.update({f"{table}.{f.name}": given[f.name] for f in dataclasses.fields(cls) if f.name in given})
    overrides.update({k: given[k] for k in ("verify", "verify_tokens", "seed", "accuracy_limit", "accuracy_data",
                                            "accuracy_reference") if k in given})
    if args.recipe not in PRESETS and not args.recipe.endswith(".toml"):
        preset(args.recipe)  # raises ConfigError listing the presets
    recipe: Any = {"quant": to_dict(PRESETS[args.recipe])} if args.recipe in PRESETS else args.recipe
    job = resolve(ExportJob, recipe=recipe, overrides=overrides)
    read_vision_config(job.model)  # a wrong MODEL fails here, before minutes of export
    _check_output(job.output, folder=True)
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
    if job.accuracy_limit:
        from mobile_mllm.eval.side_by_side import add_accuracy_to_report

        report["accuracy"] = add_accuracy_to_report(result.output, model=job.model, reference=job.accuracy_reference,
                                                    data=job.accuracy_data, limit=job.accuracy_limit)
    if args.json:
        _print_json(report)
        return 0
    if report["backend"] == "mediatek":
        from mobile_mllm.export.static_program import summary_lines

        print(f"{'output':>22}: {result.output}")
        print("\n".join(f"{label:>22}: {value}" for label, value in summary_lines(report)))
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
        o = v.get(contract.VISION_ONNX_FILE)
        if o is not None:
            ref = "the eager int8 tower (no .pte vision)" if o.get("reference") == "eager_int8_tower" else "the .pte's vision"
            print(f"{contract.VISION_ONNX_FILE:>22}: rel err vs float median {o['median_rel_err_vs_float']:.2e} "
                  f"({o['tolerance']:.1e}; {ref} {o['pte_median_rel_err_vs_float']:.2e}); greedy "
                  f"{o['greedy']['num_agreeing_prefix_vs_pte_vision']}/{g['num_tokens']} as with the .pte's vision")
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
    _check_output(args.output, folder=True)
    log_config("train-reference", config)
    result = {k: str(v) if k in ("output", "model_dir") else v
              for k, v in dataclasses.asdict(train_reference(config, args.output)).items()}
    if World.from_env().is_main:  # one summary, not one per torchrun process
        _print_result(result, args.json)
    return 0


# --------------------------------------------------------------------------- demo


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from mobile_mllm.chat.config import DemoConfig
    from mobile_mllm.config import add_arguments
    from mobile_mllm.model.registry import DEFAULT_MODEL

    p = sub.add_parser("demo", help="chat with models in the browser (Gradio): streamed answers, tile overlay, side by side")
    p.add_argument(
        "models", metavar="MODEL_OR_PROGRAM", nargs="*", default=[DEFAULT_MODEL],
        help=f"model directories, exported program directories or builtin:NAME (default: {DEFAULT_MODEL})",
    )
    p.add_argument("--app", default=None, metavar="APP.py", help="a Gradio layout file defining build(slots, config) "
                   "(default: the repository's demo/app.py)")
    add_arguments(p, DemoConfig)


def _run_demo(args: argparse.Namespace) -> int:
    from mobile_mllm.chat.config import DemoConfig
    from mobile_mllm.chat.launch import serve
    from mobile_mllm.config import log_config, resolve

    config = resolve(DemoConfig, overrides=args)
    log_config("demo", config)
    serve(list(args.models), config, args.app)
    return 0


# --------------------------------------------------------------------------- main

_COMMANDS: list[tuple[str, Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = [
    ("grid", _add_grid, _run_grid),
    ("run", _add_run, _run_run),
    ("init-model", _add_init_model, _run_init_model),
    ("eval-score", _add_eval_score, _run_eval_score),
    ("eval", _add_eval, _run_eval),
    ("eval-compare", _add_eval_compare, _run_eval_compare),
    ("make-bench", _add_make_bench, _run_make_bench),
    ("export", _add_export, _run_export),
    ("demo", _add_demo, _run_demo),
    ("train-reference", _add_train_reference, _run_train_reference),
    ("devices", _add_devices, _run_devices),
    ("push", _add_push, _run_push),
    ("profile", _add_profile, _run_profile),
    ("loopback-device", _add_loopback_device, _run_loopback_device),
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
        parts = [line.strip() for line in str(e).splitlines() if line.strip()]  # one line, even for a list of problems
        print(f"mobile-mllm {args.command}: error: {' '.join(parts[:1] + ['; '.join(parts[1:])]).strip()}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("mobile-mllm: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
