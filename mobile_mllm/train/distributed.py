"""Data-parallel training over several processes (one per GPU), started by ``torchrun``.

Why: the small model's training step is bound by many small GPU kernels, not by data (see
``bench/train_reference.md``), so one GPU runs at a fixed number of steps per second whatever
the batch; N GPUs each taking 1/N of a larger batch train N times as many samples per second.

The split keeps a run's data independent of the number of processes: ``batch_size`` is the
global batch (drawn images per step); rank ``r`` of ``W`` takes the ``r``-th contiguous 1/W of
each step's sample indices. The loss of a rank is scaled so that the average of the ranks'
gradients is exactly the gradient of the global mean (over all answer tokens, or all examples),
so a W-process run follows the one-process run of the same batch up to floating-point order
(tested). Gradients are summed with one ``all_reduce`` of a flat buffer per step: the model is
a few million parameters, and an explicit reduction keeps the loop readable (no module wrapper).

``torchrun`` sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
without them (or with ``WORLD_SIZE=1``) everything here is a no-op for a single process.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mobile_mllm.errors import ConfigError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

__all__ = ["World", "init_world"]


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> World:
        """This process's place as ``torchrun``'s environment describes it (without joining the group)."""
        return cls(rank=int(os.environ.get("RANK", "0")), world_size=int(os.environ.get("WORLD_SIZE", "1")),
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        """Rank 0 writes the log, checkpoints and the model; the others only train."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def shard(self, indices: list[int]) -> list[int]:
        """This rank's contiguous share of one step's sample indices (``len(indices)`` divisible by the world size).

        Example:
            >>> World(rank=1, world_size=2).shard([8, 9, 10, 11])
            [10, 11]
        """
        per_rank = len(indices) // self.world_size
        return indices[self.rank * per_rank:(self.rank + 1) * per_rank]

    def loss_scale(self, local_count: int, device: torch.device) -> float:
        """Factor on this rank's mean loss so that averaging the ranks' gradients gives the global mean's gradient.

        A rank's loss is a mean over ``local_count`` items (answer tokens or examples); the global
        mean weighs each rank by its count: ``sum_r count_r * mean_r / sum_r count_r``, and the
        gradient all-reduce divides by the world size, hence ``world_size * count / total``.
        """
        if not self.distributed:
            return 1.0
        total = self.sum_all([float(local_count)], device)[0]
        return self.world_size * local_count / max(total, 1.0)

    def sum_all(self, values: list[float], device: torch.device) -> list[float]:
        """The element-wise sum of ``values`` over all ranks (the values themselves with one process)."""
        if not self.distributed:
            return list(values)
        import torch
        import torch.distributed as dist

        buf = torch.tensor(values, dtype=torch.float64, device=device)
        dist.all_reduce(buf)
        return buf.tolist()

    def average_gradients(self, params: list[torch.nn.Parameter]) -> None:
        """Replace each parameter's gradient by its mean over the ranks (one all-reduce of a flat buffer).

        A parameter without a gradient contributes zeros, so every rank reduces the same layout.
        """
        if not self.distributed:
            return
        import torch
        import torch.distributed as dist

        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for p in params:
            n = p.numel()
            p.grad = flat[offset:offset + n].view_as(p)
            offset += n

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group (after the last collective)."""
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


def init_world(device_type: str) -> World:
    """Join the process group ``torchrun`` describes in the environment (a single process when it describes none).

    Args:
        device_type (str): ``"cuda"`` (NCCL; each process takes GPU ``LOCAL_RANK``) or ``"cpu"`` (gloo).

    Raises:
        ConfigError: the environment names more CUDA processes than this machine has GPUs.
    """
    world = World.from_env()
    if not world.distributed:
        return World()
    import torch
    import torch.distributed as dist

    if device_type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"process LOCAL_RANK={world.local_rank} has no GPU: this machine has {torch.cuda.device_count()}; "
                "start torchrun with --nproc-per-node at most the number of GPUs"
            )
        torch.cuda.set_device(world.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")
    logger.info("data-parallel training: rank %d of %d (local rank %d)", world.rank, world.world_size, world.local_rank)
    return world
