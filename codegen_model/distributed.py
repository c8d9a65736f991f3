"""torchrun integration (docs/design.md §6): one process per GPU (or CPU process with gloo).

The harness needs no collective but a final barrier: work is split by key (results.shard), each
rank writes its own shard files, and rank 0 merges once every rank has passed the barrier.
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def under_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "MASTER_ADDR" in os.environ


def init(timeout_s: float = 6 * 3600) -> bool:
    """Join torchrun's process group (NCCL on CUDA, gloo otherwise). False when not under torchrun."""
    if not under_torchrun() or int(os.environ["WORLD_SIZE"]) < 2:
        return False
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
        log.info("rank %d/%d joined the %s process group", dist.get_rank(), dist.get_world_size(), backend)
    return True


def barrier() -> None:
    if dist.is_initialized():
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
