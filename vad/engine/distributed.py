"""Data-parallel training under ``torchrun``: detect the launcher's environment, set up the process group.

``torchrun --nproc_per_node N -m apps.cli train ...`` starts N processes with ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK`` set; :func:`setup` joins them into one process group (gloo on CPU, nccl on CUDA, each rank on
``cuda:LOCAL_RANK``). Without those variables everything here is a no-op and training is single-process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a data-parallel run."""

    rank: int  # global rank (0 validates, decides early stopping and writes the checkpoint)
    world: int  # number of processes
    local_rank: int  # rank on this machine (its CUDA device index)
    device: torch.device  # where this rank trains
    owns_group: bool  # True when :func:`setup` created the process group (so :func:`cleanup` destroys it)


def launched() -> bool:
    """True inside a ``torchrun`` launch of more than one process."""
    return all(v in os.environ for v in ENV_VARS) and int(os.environ["WORLD_SIZE"]) > 1


def setup(device: torch.device) -> DistInfo | None:
    """Join the process group of a ``torchrun`` launch (None when not launched); ``device`` picks the backend."""
    if not launched():
        return None
    rank, world, local = (int(os.environ[v]) for v in ENV_VARS)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world)
    return DistInfo(rank, world, local, device, owns)


def rank() -> int:
    """This process's global rank: the group's, else the launcher's (0 when not distributed)."""
    if dist.is_initialized():
        return dist.get_rank()
    return int(os.environ["RANK"]) if launched() else 0


def is_main() -> bool:
    """True on rank 0 (also after the group is gone), or when not distributed."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op when not distributed)."""
    if dist.is_initialized():
        dist.barrier()


def broadcast_floats(values: list[float], device: torch.device, src: int = 0) -> list[float]:
    """Rank ``src``'s ``values`` on every rank (returned unchanged when not distributed)."""
    if not dist.is_initialized():
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.broadcast(tensor, src)
    return tensor.tolist()


def mean_over_ranks(value: float, device: torch.device) -> float:
    """The mean of ``value`` over every rank (unchanged when not distributed)."""
    if not dist.is_initialized():
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return float(tensor.item()) / dist.get_world_size()


def cleanup(info: DistInfo | None) -> None:
    """Destroy the process group if :func:`setup` created it."""
    if info is not None and info.owns_group and dist.is_initialized():
        dist.destroy_process_group()
