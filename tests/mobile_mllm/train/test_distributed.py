"""Data-parallel training: W processes (gloo, CPU) follow the one-process run of the same global batch."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mobile_mllm.train.distributed import World
from mobile_mllm.train.loop import CHECKPOINT_FILE, LossWeighting, TrainConfig, train_reference

# 2 images per step, 3 questions each: the two ranks' answer-token counts differ, so an unscaled
# per-rank mean would weigh them wrongly (the token weighting checks the scaling)
RUN = TrainConfig(preset="tiny", steps=3, batch_size=2, log_every=1, warmup_steps=1, small_text_px=(20, 30),
                  questions_per_image=3, lr=3e-3)


def _cli_flags(cfg: TrainConfig) -> list[str]:
    """The command-line flags of ``cfg`` (the fields RUN sets)."""
    return ["--preset", cfg.preset, "--steps", str(cfg.steps), "--batch-size", str(cfg.batch_size),
            "--log-every", str(cfg.log_every), "--warmup-steps", str(cfg.warmup_steps),
            "--small-text-px", *map(str, cfg.small_text_px), "--questions-per-image", str(cfg.questions_per_image),
            "--lr", str(cfg.lr), "--loss-weighting", cfg.loss_weighting.value]


def _torchrun(nproc: int, flags: list[str], out: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc),
           "-m", "mobile_mllm.cli", "train-reference", *flags, "-o", str(out), "--json"]
    return subprocess.run(cmd, capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "1"}, timeout=180)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run / CHECKPOINT_FILE, map_location="cpu", weights_only=True)
    return {f"{part}.{k}": v for part in ("vision_encoder", "decoder") for k, v in state[part].items()}


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("weighting", [LossWeighting.TOKEN, LossWeighting.EXAMPLE])
def test_two_processes_follow_one_process_with_the_same_global_batch(tmp_path: Path, weighting: LossWeighting) -> None:
    cfg = dataclasses.replace(RUN, loss_weighting=weighting)
    train_reference(cfg, tmp_path / "one")
    done = _torchrun(2, _cli_flags(cfg), tmp_path / "two")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"end_step"') == 1, done.stdout  # rank 0 alone reports
    assert json.loads(done.stdout[done.stdout.index("{"):])["end_step"] == 3
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert one.keys() == two.keys()
    moved = max(float((a - b).abs().max()) for a, b in zip(one.values(), _weights_at_start(cfg).values()))
    assert moved > 1e-3  # the steps changed the weights, so agreeing below says something
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=3e-5)
    assert _losses(tmp_path / "two") == pytest.approx(_losses(tmp_path / "one"), rel=1e-4)
    assert len(_losses(tmp_path / "two")) == 3  # one log, written once


def _weights_at_start(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    import tempfile

    from mobile_mllm.train.loop import _initial_model

    torch.manual_seed(cfg.seed)
    with tempfile.TemporaryDirectory() as work:
        model = _initial_model(cfg, Path(work))
    parts = {"vision_encoder": model.vision_encoder, "decoder": model.extra["hf_decoder"]}
    return {f"{part}.{k}": v for part, m in parts.items() for k, v in m.state_dict().items()}


def test_shard_splits_each_step_into_contiguous_equal_shares() -> None:
    step = list(range(8, 14))
    shares = [World(rank=r, world_size=3).shard(step) for r in range(3)]
    assert shares == [[8, 9], [10, 11], [12, 13]]
    assert World().shard(step) == step


def test_single_process_needs_no_process_group() -> None:
    world = World()
    assert world.is_main and not world.distributed
    assert world.loss_scale(7, torch.device("cpu")) == 1.0
    assert world.sum_all([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]


def test_world_from_env_reads_torchruns_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    world = World.from_env()
    assert (world.rank, world.world_size, world.local_rank, world.is_main, world.distributed) == (3, 4, 1, False, True)


def test_batch_not_divisible_by_the_processes_is_refused(tmp_path: Path) -> None:
    done = _torchrun(2, [*_cli_flags(dataclasses.replace(RUN, batch_size=3))], tmp_path / "odd")
    assert done.returncode != 0
    assert "batch_size (3) must be divisible by the number of processes (2)" in done.stderr
    assert not (tmp_path / "odd" / CHECKPOINT_FILE).exists()
