"""Profile exported programs on a device: push, run the runner N times, summarise, write JSON, table and charts.

One runner invocation per program does ``warmup`` + ``runs`` runs (the program loads once, as
an app would); each run's ``PyTorchObserver`` record is kept raw, and every figure is
summarised as min/median/max over the runs. Memory is sampled on the device from
``/proc/PID/status`` for the whole invocation. Rates come from the runner's records, which come
from :func:`mobile_mllm.runtime.stats.derive_rates`, so host and device numbers compare directly.
Deliberately not here: the transport (adb.py), running (run.py), drawing on a terminal (cli.py).
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mobile_mllm import contract
from mobile_mllm.device.app import Via, run_app_benchmark
from mobile_mllm.device.run import RunnerConfig, check_image, check_runner_images, find_runner, push_input, run_on_device, runner_argv

logger = logging.getLogger(__name__)

__all__ = ["FIGURES", "ProfileConfig", "ProgramProfile", "format_table", "profile_program", "profile_programs",
           "summarize", "write_report"]


@dataclass(frozen=True)
class ProfileConfig(RunnerConfig):
    """Runner settings for profiling: several measured runs after a warm-up."""

    runs: int = 5
    """Measured runs."""
    warmup: int = 1
    """Runs before the measured ones."""
    via: Via = Via.RUNNER
    """What runs the program: runner (the runner binary of RUNNER.md) or app (the Android app's BenchmarkActivity)."""

FIGURES: tuple[tuple[str, str, float], ...] = (
    # (record key, label, scale to the unit in the label)
    ("model_load_ms", "model load (ms)", 1.0),
    ("num_tiles", "tiles", 1.0),
    ("num_image_tokens", "image tokens", 1.0),
    ("image_encode_ms", "image encode (ms)", 1.0),
    ("image_encode_ms_per_tile", "encode per tile (ms)", 1.0),
    ("time_to_first_token_ms", "time to first token (ms)", 1.0),
    ("prefill_tok_s", "prefill (tok/s)", 1.0),
    ("decode_tok_s", "decode (tok/s)", 1.0),
    ("num_generated_tokens", "generated tokens", 1.0),
    ("peak_rss_bytes", "runner peak RSS (MiB)", 1 / 2**20),
)


@dataclass(frozen=True)
class ProgramProfile:
    """One program profiled on one device."""

    name: str
    program_dir: str
    remote_dir: str
    file_bytes: dict[str, int]
    runs: tuple[dict[str, Any], ...]
    summary: dict[str, dict[str, float]]
    peak_memory_bytes: int
    """max(VmHWM, VmRSS+VmSwap) sampled on the device while the runner lived."""
    memory_samples: int
    runner: str
    etdump: dict[str, Any] | None = None


def summarize(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """min/median/max of every figure over the runs.

    Example:
        >>> summarize([{"decode_tok_s": 10.0}, {"decode_tok_s": 30.0}, {"decode_tok_s": 20.0}])["decode_tok_s"]
        {'min': 10.0, 'median': 20.0, 'max': 30.0}
    """
    out = {}
    for key, _label, _scale in FIGURES:
        values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float))]
        if values:
            out[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    return out


def profile_program(
    device: Any, out: Path, image: Path | None, prompt: str, cfg: RunnerConfig, *, remote_dir: str, abi: str = "",
    etdump: bool = False, on_text: Callable[[str], None] | None = None,
) -> ProgramProfile:
    """Run the (already pushed) program at ``remote_dir`` and summarise its runs."""
    import posixpath

    runner = None if _via(cfg) is Via.APP else find_runner(device, remote_dir, abi)
    if runner is not None:
        check_runner_images(runner, out, image)  # before anything is pushed
    image_remote = push_input(device, image, remote_dir) if image is not None else None
    etdump_remote = posixpath.join(remote_dir, "profile.etdump") if etdump else None
    logger.info("profiling %s on %s: %d warmup + %d runs", out.name, device.serial, cfg.warmup, cfg.runs)
    if runner is None:
        result = run_app_benchmark(device, remote_dir, image_remote, prompt, cfg)
    else:
        argv = runner_argv(runner, remote_dir, image_remote, prompt, cfg, etdump_remote)
        result = run_on_device(device, remote_dir, argv, timeout_s=cfg.timeout_s, on_text=on_text)
    etdump_summary = _etdump_summary(device, etdump_remote) if etdump_remote else None
    files = {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()
             and p.name in (contract.PROGRAM_FILE, contract.MANIFEST_FILE, contract.TOKENIZER_FILE)}
    return ProgramProfile(
        name=out.resolve().name, program_dir=str(out), remote_dir=remote_dir, file_bytes=files, runs=result.records,
        summary=summarize(result.records), peak_memory_bytes=result.peak_memory_bytes,
        memory_samples=len(result.memory_samples), runner=result.runner, etdump=etdump_summary,
    )


def _via(cfg: RunnerConfig) -> Via:
    """What runs the program (a plain RunnerConfig has no choice: the runner)."""
    return Via(getattr(cfg, "via", Via.RUNNER))


def _etdump_summary(device: Any, remote: str) -> dict[str, Any]:
    """Pull the runner's ETDumps (``remote``, or ``remote.<method>`` from the host runner) and summarise them."""
    import posixpath
    import shlex

    from mobile_mllm.errors import RunnerError
    from mobile_mllm.runtime.etdump import summarize_etdump

    folder, base = posixpath.split(remote)
    names = [n for n in device.run(f"ls {shlex.quote(folder)}").stdout.split()
             if (n == base or n.startswith(base + ".")) and not n.endswith(".debug")]
    if not names:
        raise RunnerError(f"the runner on {device.serial} wrote no ETDump at {remote}; was it built with ETDump support?")
    with tempfile.TemporaryDirectory() as tmp:
        local = [Path(tmp) / n for n in names]
        for name, path in zip(names, local):
            device.pull(posixpath.join(folder, name), path)
        return {"files": names, **summarize_etdump(local)}


def format_table(device: dict[str, Any], programs: Sequence[ProgramProfile]) -> str:
    """min / median / max per figure, one column per program, device facts on top."""
    facts = ", ".join(f"{k} {device[k]}" for k in ("model", "soc", "abi", "android_version") if device.get(k))
    head = ["figure"] + [p.name for p in programs]
    rows = [head]
    for key, label, scale in FIGURES:
        cells = []
        for p in programs:
            s = p.summary.get(key)
            cells.append("-" if s is None else " / ".join(_num(s[k] * scale) for k in ("min", "median", "max")))
        rows.append([label, *cells])
    rows.append(["peak memory, sampled (MiB)", *[f"{p.peak_memory_bytes / 2**20:.0f}" for p in programs]])
    rows.append(["program size (MB)", *[f"{p.file_bytes.get(contract.PROGRAM_FILE, 0) / 1e6:.2f}" for p in programs]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"device {device.get('serial', '?')}: {facts}", "min / median / max over the runs"]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.1f}"


def write_report(report_dir: Path, device: dict[str, Any], programs: Sequence[ProgramProfile],
                 settings: dict[str, Any]) -> list[Path]:
    """Write ``profile.json`` and the PNG charts (atomically); the paths written."""
    report_dir.mkdir(parents=True, exist_ok=True)
    doc = {"device": device, "settings": settings, "programs": [asdict(p) for p in programs]}
    written = [_atomic_write(report_dir / "profile.json", (json.dumps(doc, indent=1) + "\n").encode())]
    written += _charts(report_dir, programs)
    return written


def _atomic_write(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 is for secrets, not reports
    os.replace(tmp, path)
    return path


def _charts(report_dir: Path, programs: Sequence[ProgramProfile]) -> list[Path]:
    """runs.png: per-run bars of the main figures; ttft.png: stacked time to first token (load, encode, prefill)."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = ("time_to_first_token_ms", "image_encode_ms", "prefill_tok_s", "decode_tok_s")
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.2))
    width = 0.8 / max(1, len(programs))
    for ax, key in zip(axes, keys):
        for i, p in enumerate(programs):
            values = [float(r.get(key, 0.0)) for r in p.runs]
            ax.bar([j + i * width for j in range(len(values))], values, width, label=p.name)
        ax.set_title(dict((k, lbl) for k, lbl, _ in FIGURES)[key], fontsize=9)
        ax.set_xlabel("run")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    paths = [_save(fig, report_dir / "runs.png", io, plt)]

    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(programs) + 2), 3.6))
    parts = (("model load", "model_load_ms"), ("image encode", "image_encode_ms"), ("prefill", "prefill_ms"))
    bottom = [0.0] * len(programs)
    for label, key in parts:
        values = [float(statistics.median([r.get(key, 0.0) for r in p.runs])) for p in programs]
        ax.bar([p.name for p in programs], values, bottom=bottom, label=label)
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("ms (median over runs)")
    ax.set_title("time to first token, with model load")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, report_dir / "ttft.png", io, plt))
    return paths


def _save(fig: Any, path: Path, io: Any, plt: Any) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return _atomic_write(path, buf.getvalue())


def profile_programs(
    serial: str | None, outs: Sequence[Path], image: Path | None, prompt: str, cfg: RunnerConfig, report_dir: Path, *,
    remote_dir: str | None = None, etdump: bool = False, on_progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, Any], list[ProgramProfile], list[Path]]:
    """Push each program if needed, profile it, write the report; (device facts, profiles, files written)."""
    from mobile_mllm.device.discover import describe, open_device
    from mobile_mllm.device.push import program_files, push_program

    check_image(image)
    if etdump and _via(cfg) is Via.APP:
        from mobile_mllm.errors import ConfigError

        raise ConfigError("--etdump needs --via runner: the app does not write ETDumps")
    for out in outs:  # a wrong folder fails before any device is contacted
        program_files(out)
    with open_device(serial) as device:
        facts = describe(device, device.serial).to_dict()
        programs = []
        for out in outs:
            target = remote_dir if remote_dir and len(outs) == 1 else None
            pushed = push_program(device, out, remote_dir=target, abi=facts["abi"], on_progress=on_progress)
            programs.append(profile_program(device, out, image, prompt, cfg, remote_dir=pushed.remote_dir,
                                            abi=facts["abi"], etdump=etdump))
    settings = {**asdict(cfg), "image": str(image) if image else None, "prompt": prompt, "etdump": etdump}
    return facts, programs, write_report(report_dir, facts, programs, settings)
