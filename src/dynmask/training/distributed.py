"""Multi-process training under torchrun (torch.distributed): the process group and rank-zero-first sections."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def distributed_context() -> tuple[int, int]:
    """(rank, world size); joins the process group when launched by torchrun.

    With CUDA, NCCL and one GPU per process (a node cannot run more processes than it has GPUs);
    without CUDA, gloo on the CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        if torch.cuda.is_available():
            per_node = int(os.environ.get("LOCAL_WORLD_SIZE", world))
            if per_node > torch.cuda.device_count():
                raise RuntimeError(
                    f"torchrun started {per_node} processes on this node but it has {torch.cuda.device_count()} "
                    f"GPU(s); NCCL needs one GPU per process: pass --nproc_per_node={torch.cuda.device_count()}, "
                    "or set CUDA_VISIBLE_DEVICES= to train on the CPU with gloo"
                )
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if world > 1:
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def on_rank_zero_first(make, load):
    """Run ``make()`` on rank 0 only, wait for it, then ``load()`` everywhere (e.g. a tokenizer trained once)."""
    rank, world = distributed_context()
    if rank == 0:
        make()
    if world > 1:
        dist.barrier()
    return load()
