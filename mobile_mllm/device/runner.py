"""The host runner: ``python -m mobile_mllm.device.runner``, the runner contract over the Python runtime.

Implements ``android_app/RUNNER.md`` (arguments, streamed text, one ``PyTorchObserver {json}``
line per run, exit codes) with :class:`~mobile_mllm.runtime.session.Session` over an exported
program, the same loop as ``mobile-mllm run``. The loopback ADB device runs it as its on-device
runner; the native Android runner prints the same lines, so ``profile`` parses both alike.
Deliberately not here: talking ADB (``adb.py``), parsing the lines (``run.py``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from mobile_mllm import contract
from mobile_mllm.errors import MobileMLLMError

logger = logging.getLogger(__name__)

__all__ = ["CONTRACT_EXIT_CODES", "main", "observer_record"]

CONTRACT_EXIT_CODES = frozenset({2, 3, 5, 6})
"""Exit codes the contract gives a meaning (bad arguments, image, context, contract); others are 1."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mobile-mllm-runner", description="Run an exported program (android_app/RUNNER.md).")
    p.add_argument("--program-dir", required=True, help="folder with model.pte, manifest.json, tokenizer.json")
    p.add_argument("--image", default=None, help="the image (single mode)")
    p.add_argument("--prompt", default=None, help="the question (single mode)")
    p.add_argument("--requests", default=None,
                   help="JSONL of {id, image, prompt[, max_new_tokens, styled]} (batch mode; styled false: the prompt "
                   "as-is, not in the model's question_template)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--tile-batch", type=int, default=None, help="tiles per vision_encoder call (default: manifest's)")
    p.add_argument("--prefill-chunk", type=int, default=None, help="positions per prefill call (default: manifest's)")
    p.add_argument("--threads", type=int, default=0, help="worker threads (0: the runtime's default)")
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--warmup", type=int, default=0)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--etdump", default=None, help="write ETDumps of the runs to PATH.<method> (one Program per method)")
    p.add_argument("--no-stream", action="store_true", help="print only the stats lines")
    return p


def observer_record(answer: Any, run: int) -> dict[str, Any]:
    """The stats line's JSON object of one answer: Stats.to_dict() plus ExecuTorch's and the contract's keys."""
    record = answer.stats.to_dict()
    record.update(
        prompt_tokens=answer.stats.num_prompt_tokens,
        generated_tokens=answer.stats.num_generated_tokens,
        SCALING_FACTOR_UNITS_PER_SECOND=1000,
        run=run,
        text=answer.text,
        stop_reason=answer.stop_reason,
    )
    return record


def _emit(out: TextIO, record: dict[str, Any]) -> None:
    out.write(contract.STATS_LINE_PREFIX + json.dumps(record, separators=(",", ":")) + "\n")
    out.flush()


def set_threads(threads: int) -> None:
    """Use ``threads`` worker threads in torch and ExecuTorch's thread pool (0 keeps the defaults)."""
    if threads <= 0:
        return
    import torch

    from mobile_mllm.runtime.pte import load_executorch_kernels

    load_executorch_kernels()  # the import-order rule: kernels registered before the bindings are used
    from executorch.extension.pybindings import portable_lib

    torch.set_num_threads(threads)
    portable_lib._unsafe_reset_threadpool(threads)


def _open_session(args: argparse.Namespace, max_new_tokens: int) -> Any:
    from mobile_mllm.runtime.pte import open_program_dir
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig, Session

    if not (Path(args.program_dir) / contract.PROGRAM_FILE).is_file():
        from mobile_mllm.errors import ContractError

        raise ContractError(f"no {contract.PROGRAM_FILE} in {args.program_dir}; push an exported program folder there")
    runtime = RuntimeConfig(prefill_chunk=args.prefill_chunk) if args.prefill_chunk else None
    b = open_program_dir(args.program_dir, runtime, enable_etdump=bool(args.etdump))
    if args.tile_batch:
        b.methods.max_tile_batch = min(args.tile_batch, b.methods.max_tile_batch)
    generation = GenerationConfig(max_new_tokens=max_new_tokens, temperature=args.temperature)
    return Session(
        b.methods, tokenizer=b.tokenizer, prompt=b.prompt, vision=b.vision, eos_ids=b.eos_ids,
        generation=generation, model_load_ms=(b.model_load_start_ms, b.model_load_end_ms),
    )


def _single(args: argparse.Namespace, out: TextIO) -> Any:
    session = _open_session(args, args.max_new_tokens)
    for _ in range(args.warmup):
        session.reset()  # every run a new conversation (RUNNER.md), with or without an image
        session.ask(args.prompt, args.image)

    def stream(piece: str) -> None:
        out.write(piece)
        out.flush()

    for run in range(args.runs):
        session.reset()
        answer = session.ask(args.prompt, args.image, on_token=None if args.no_stream else stream)
        out.write("\n")
        _emit(out, observer_record(answer, run))
    return session


def _batch(args: argparse.Namespace, out: TextIO) -> Any:
    from mobile_mllm.errors import ConfigError

    lines = [line for line in Path(args.requests).read_text().splitlines() if line.strip()]
    try:
        requests = [json.loads(line) for line in lines]
    except json.JSONDecodeError as e:
        raise ConfigError(f"--requests {args.requests}: not JSON lines ({e})") from e
    session = _open_session(args, args.max_new_tokens)
    for i, req in enumerate(requests):
        rid = req.get("id", str(i))
        try:
            session.generation = _with_max_new_tokens(session.generation, req.get("max_new_tokens", args.max_new_tokens))
            if not req.get("follow_up", False):  # requests are independent unless one says it follows up
                session.reset()
            answer = session.ask(req["prompt"], req.get("image"), styled=bool(req.get("styled", True)))
        except (MobileMLLMError, KeyError) as e:
            kind = type(e).__name__ if isinstance(e, MobileMLLMError) else "ConfigError"
            _emit(out, {"id": rid, "error": str(e).splitlines()[0] if str(e) else kind, "error_type": kind})
            continue
        _emit(out, {**observer_record(answer, i), "id": rid})
    return session


def _with_max_new_tokens(generation: Any, n: int) -> Any:
    import dataclasses

    return generation if generation.max_new_tokens == n else dataclasses.replace(generation, max_new_tokens=int(n))


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the contract's command line; return its exit code (errors: one line on stderr)."""
    out = out or sys.stdout
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: bad arguments -> 2, --help -> 0
        return int(e.code or 0)
    if (args.requests is None) == (args.prompt is None) or (args.requests and args.image):
        print("mobile-mllm-runner: error: give --prompt (with --image) or --requests, not both", file=sys.stderr)
        return 2
    if min(args.runs, args.max_new_tokens) < 1 or args.warmup < 0:
        print("mobile-mllm-runner: error: --runs and --max-new-tokens must be >= 1, --warmup >= 0", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")  # a program, not the library
    set_threads(args.threads)
    run: Callable[[argparse.Namespace, TextIO], Any] = _batch if args.requests else _single
    try:
        session = run(args, out)
        if args.etdump:
            session.methods.write_etdump(args.etdump)
    except MobileMLLMError as e:
        print(f"mobile-mllm-runner: error: {e}", file=sys.stderr)
        return e.exit_code if e.exit_code in CONTRACT_EXIT_CODES else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
