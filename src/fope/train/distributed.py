"""torchrun / DDP plumbing: process-group set-up, rank-0 I/O, all-reduce helpers, deterministic sharding.

Launch (one node, N processes; gloo on CPU, nccl on CUDA)::

    torchrun --nproc_per_node 4 -m fope.cli train --preset c4-512-60M-fope --out runs/c4-512-60M-fope

Sharding: the training windows are visited in a seeded permutation per epoch; optimizer step s consumes the
global positions ``s*G .. s*G+G-1`` (G = global batch). Micro-batch i (of A accumulation steps) of rank r takes
positions ``s*G + (i*W + r)*m .. +m`` (W = world size, m = micro-batch). Every step therefore sees exactly
the same G windows whatever W and m are, so 2 processes x m equals 1 process x 2m up to summation order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: ``rank`` of ``world_size``; ``device`` it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def env_rank() -> int:
    """This process's rank as torchrun sets it (RANK; 0 without torchrun), before any process group exists."""
    return int(os.environ.get("RANK", 0))


def init(device: str = "auto") -> DistInfo:
    """Read torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and start the process group if needed."""
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    use_cuda = torch.cuda.is_available() if device == "auto" else device == "cuda"
    if use_cuda and not torch.cuda.is_available():
        raise ValueError("train.device=cuda but CUDA is not available")
    dev = torch.device(f"cuda:{local_rank}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[DistInfo]:
    """`init`; on exit, destroys the process group if this call started it (not when the caller did)."""
    started = not (dist.is_available() and dist.is_initialized())
    try:
        yield init(device)
    finally:
        if started and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_sum(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Sum over processes (in place; returns x)."""
    if info.distributed:
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
    return x


def any_process(flag: bool, info: DistInfo) -> bool:
    """True if ``flag`` is true on any process (used for the stop signal, so every rank stops together)."""
    if not info.distributed:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    return bool(all_reduce_sum(t, info).item() > 0)


def micro_batch_start(step: int, micro: int, *, global_batch: int, micro_batch: int, info: DistInfo) -> int:
    """Global position of the first window of micro-batch ``micro`` of optimizer step ``step`` (0-based) on
    this process (see the module docstring)."""
    return step * global_batch + (micro * info.world_size + info.rank) * micro_batch


def grad_accum_steps(global_batch: int, micro_batch: int, world_size: int) -> int:
    """Accumulation steps A with global_batch = micro_batch * A * world_size (ValueError naming the values)."""
    per_step = micro_batch * world_size
    if global_batch % per_step:
        raise ValueError(
            f"train.global_batch={global_batch} is not divisible by train.micro_batch={micro_batch} "
            f"x world_size={world_size} (= {per_step})"
        )
    return global_batch // per_step
