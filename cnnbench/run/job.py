"""The torchrun job a run belongs to (several processes, on one machine or several): what
metrics.json and the run's first line say about it, whether the machines share the run
directory, and the per-process random streams of a resumed job.

Global rank 0 writes the run. When every machine sees the run directory rank 0 holds (one
shared file system), that directory is the run; when they do not, the run is rank 0's
directory on rank 0's machine, and the other machines write nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cnnbench.engine.distributed import (
    DistInfo,
    all_reduce_sum,
    broadcast_object,
    collective_device,
    job_block,
)
from cnnbench.rundir.layout import LOCK_FILE
from cnnbench.rundir.stored_text import read_stored

SHARED = "shared"            # every machine sees rank 0's run directory
RANK0_ONLY = "rank 0 only"   # the run directory is on rank 0's machine alone


def storage_of(run_dir: Path, info: DistInfo) -> str | None:
    """SHARED or RANK0_ONLY (None: one process). Every process compares the lock rank 0 holds
    in `run_dir` with what it reads there itself; a collective, so every process calls it."""
    if not info.enabled:
        return None
    lock = Path(run_dir) / LOCK_FILE
    theirs = broadcast_object(_read(lock) if info.is_main else None, info)
    seen = torch.tensor([1.0 if theirs is not None and _read(lock) == theirs else 0.0],
                        device=collective_device())
    return SHARED if int(all_reduce_sum(seen).item()) == info.world_size else RANK0_ONLY


def _read(path: Path) -> str | None:
    try:
        return read_stored(path, limit=64 * 1024)
    except (OSError, ValueError):  # StoredTextError: not a small, regular text file
        return None


def distributed_block(info: DistInfo, run_dir: Path) -> dict[str, Any] | None:
    """metrics.json's `distributed`: nodes, world size, backend, rendezvous, run id and storage
    (SHARED or RANK0_ONLY); None for one process. A collective: every process calls it."""
    block = job_block(info)
    return None if block is None else {**block, "storage": storage_of(run_dir, info)}


def job_words(block: dict[str, Any] | None) -> str:
    """The job as the run's first line says it ('' for one process)."""
    if block is None:
        return ""
    where = ("on storage every node shares" if block["storage"] == SHARED else
             "on rank 0's machine only (the nodes do not share it; the others write nothing)")
    rdzv = f", rendezvous {block['rendezvous']}" if block.get("rendezvous") else ""
    return (f"torchrun: {block['nodes']} node{'s' if block['nodes'] != 1 else ''} x "
            f"{block['processes_per_node']} process{'es' if block['processes_per_node'] != 1 else ''} "
            f"({block['backend']}{rdzv}), run directory {where}")


def reseed_resumed(info: DistInfo, seed: int, epoch: int, loader: Any = None) -> None:
    """After a resume restored rank 0's random state on every process: the other ranks draw
    their own numbers again (dropout; and the augmentation of a per-batch augmentation
    callable, which sees only the rank's images), from streams set by the seed, their rank and
    the epoch the run continues from, so that no two processes repeat one another. Per-image
    augmentation and the data order are the same on every rank and stay rank 0's."""
    if not info.enabled or info.rank == 0:
        return
    torch.manual_seed(seed + info.rank + 1_000_003 * epoch)
    generator = getattr(loader, "aug_generator", None)
    if generator is not None and not getattr(loader, "_per_image", True):
        generator.manual_seed(seed + 1 + 7919 * info.rank + 1_000_003 * epoch)
