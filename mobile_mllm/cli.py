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
from collections.abc import Callable, Sequence
from typing import Any

from mobile_mllm import __version__
from mobile_mllm.errors import MobileMLLMError

logger = logging.getLogger("mobile_mllm.cli")


def _print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


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
    if args.json:
        _print_json(result)
    else:
        for k, v in result.items():
            print(f"{k:>17}: {v}")
    return 0


# --------------------------------------------------------------------------- main

_COMMANDS: list[tuple[str, Callable[[argparse._SubParsersAction], None], Callable[[argparse.Namespace], int]]] = [
    ("grid", _add_grid, _run_grid),
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
