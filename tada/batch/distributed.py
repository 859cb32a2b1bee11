"""The torch.distributed side: one process per device under ``torchrun``, one process without it.

``torchrun`` sets ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``...; then the default process
group is ``nccl`` on GPUs (device ``cuda:LOCAL_RANK``) or ``gloo`` on CPUs.  Python objects (result
rows) always travel over a ``gloo`` group: pickles in host memory, never GPU buffers.  Without
torchrun every call below is the single-process identity, so the same code path runs either way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Dist", "init", "shard"]

#: Ranks finish their shards at different times and wait for each other only at the end.
_TIMEOUT = timedelta(hours=12)


@dataclass
class Dist:
    """This process's place in the run."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: a single process, no process group
    _objects: Any = None  # the gloo group for Python objects

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def all_gather(self, obj: Any) -> list[Any]:
        """``obj`` of every rank, in rank order."""
        if not self.distributed:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj, group=self._objects)
        return out

    def gather(self, obj: Any) -> list[Any] | None:
        """``obj`` of every rank on rank 0 (None elsewhere)."""
        if not self.distributed:
            return [obj]
        out: list[Any] | None = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, out, dst=0, group=self._objects)
        return out

    def total(self, value: int) -> int:
        """Sum of an integer over ranks, on the default backend (nccl tensors on GPUs)."""
        if not self.distributed:
            return int(value)
        t = torch.tensor([int(value)], dtype=torch.int64, device=self.device)
        dist.all_reduce(t)
        return int(t.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier(group=self._objects)

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def init(device: str | None = None) -> Dist:
    """Join the torchrun job when there is one; pick this rank's device.

    ``device``: ``"cpu"``, ``"cuda"`` or None (CUDA when present).  Under torchrun a CUDA rank uses
    ``cuda:$LOCAL_RANK`` and ``nccl``; a CPU rank uses ``gloo``.
    """
    want = device or ("cuda" if torch.cuda.is_available() else "cpu")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if want.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was asked for but no CUDA GPU is visible")
        index = local if want == "cuda" and "LOCAL_RANK" in os.environ else torch.device(want).index
        dev = torch.device("cuda", index or 0)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device(want)
    if world <= 1 or "RANK" not in os.environ:
        return Dist(device=dev, local_rank=local)
    backend = "nccl" if dev.type == "cuda" else "gloo"
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"backend": backend, "timeout": _TIMEOUT}
        if dev.type == "cuda":
            kwargs["device_id"] = dev
        dist.init_process_group(**kwargs)
    objects = dist.new_group(backend="gloo", timeout=_TIMEOUT) if backend != "gloo" else dist.group.WORLD
    return Dist(dist.get_rank(), dist.get_world_size(), local, dev, backend, objects)


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """Rank ``rank``'s share: every ``world_size``-th item, disjoint and complete (no padding).

    The official test loaders use ``DistributedSampler``, which pads the last round with repeats of
    the first items so that every rank has the same count; those repeats are then scored twice.
    Here shares differ by at most one item and nothing is repeated.
    """
    return items[rank::world_size]
