"""Data-parallel training across processes started by `torchrun` (DDP).

    torchrun --nproc-per-node=2 -m cnnbench train model=vgg dataset=cifar10

Every process holds the whole dataset on its own device and draws the same shuffled order and
the same per-image augmentation parameters; each takes its share of every global batch
(trainer.batch_size stays the global batch, and every image is augmented as in a one-GPU run, so
the result matches a one-GPU run with the same batch size). Validation and test sets are small and
evaluated whole by every process, which keeps them identical without communication. Only rank 0
(the global rank, RANK) writes files and prints.

Across machines (`torchrun --nnodes=2 ... --rdzv-backend=c10d --rdzv-endpoint=HOST:PORT`) it is
the same run: global rank 0 writes it, each machine's first process (LOCAL_RANK 0) prepares its
data before the machine's other processes read it, and a collective that waits on a process that
went away gives up after CNNBENCH_DIST_TIMEOUT seconds (default 900) instead of hanging.
"""
from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Iterator

import torch
import torch.distributed as dist

from cnnbench.engine.dist_env import DistInfo, from_environment
from cnnbench.errors import UserError

__all__ = ["DistInfo", "from_environment"]  # torch-free, in engine.dist_env; here for the engine


def backend_name() -> str:
    """NCCL on GPUs, gloo on CPUs (or where CNNBENCH_DIST_BACKEND=gloo asks for it)."""
    gloo = os.environ.get("CNNBENCH_DIST_BACKEND", "") == "gloo"
    return "nccl" if torch.cuda.is_available() and not gloo else "gloo"


def collective_timeout() -> datetime.timedelta:
    """How long a collective waits for the other processes (CNNBENCH_DIST_TIMEOUT seconds)."""
    raw = os.environ.get("CNNBENCH_DIST_TIMEOUT", "900")
    try:
        seconds = float(raw)
    except ValueError:
        raise UserError(f"CNNBENCH_DIST_TIMEOUT={raw!r} is not a number of seconds: set it to "
                        f"how long a process may wait for the others, e.g. 900.") from None
    return datetime.timedelta(seconds=max(1.0, seconds))


def init_process_group(info: DistInfo) -> None:
    """Join the group (NCCL on GPUs, gloo on CPUs) once per process."""
    if not info.enabled or dist.is_initialized():
        return
    backend = backend_name()
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, timeout=collective_timeout())


def collective_device() -> torch.device:
    """Where a tensor for a collective lives: this process's GPU under NCCL, else the CPU."""
    if dist.is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def job_block(info: DistInfo) -> dict[str, Any] | None:
    """The torchrun job for metrics.json and the first line a run prints (None: one process).
    `rendezvous` is the address of the job's store, MASTER_ADDR:MASTER_PORT, which torchrun
    gives its workers (its --rdzv-endpoint is not passed on); `run_id` is its --rdzv-id."""
    if not info.enabled:
        return None
    host, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    return {"nodes": info.nodes, "world_size": info.world_size,
            "processes_per_node": info.local_world_size, "backend": backend_name(),
            "rendezvous": f"{host}:{port}" if host and port else None,
            "run_id": os.environ.get("TORCHELASTIC_RUN_ID")}


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's `value` (anything picklable) on every rank."""
    if not info.enabled:
        return value
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


def all_gather_objects(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's `value` (picklable), in rank order, on every rank."""
    if not info.enabled:
        return [value]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, value)
    return gathered


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def machine_first(info: DistInfo) -> Iterator[None]:
    """The first process of each machine (LOCAL_RANK 0) runs the block before the machine's
    other processes do: a dataset is downloaded and prepared once per machine (into storage
    the machines may or may not share), then read by the others."""
    if info.local_rank != 0:
        barrier(info)
    yield
    if info.local_rank == 0:
        barrier(info)


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def device_for(info: DistInfo, requested: torch.device) -> torch.device:
    if not info.enabled or requested.type != "cuda":
        return requested
    if info.local_rank >= torch.cuda.device_count():
        raise UserError(f"torchrun started {info.world_size} processes on this machine but only "
                        f"{torch.cuda.device_count()} GPU(s) are visible: use "
                        f"--nproc-per-node={torch.cuda.device_count()} or fewer.")
    return torch.device("cuda", info.local_rank)


def sync_batchnorm(model: torch.nn.Module, info: DistInfo,
                   device: torch.device) -> tuple[torch.nn.Module, str]:
    """`trainer.sync_batchnorm=true`: the model with its BatchNorm layers (the Keras-default ones
    included) as SyncBatchNorm, which keeps each layer's eps, momentum, weights and running
    statistics and normalizes with the statistics of the whole global batch; and a status for
    metrics.json ('on' or 'skipped: why'). Nothing changes in a single process (BatchNorm sees
    the whole batch already) or off CUDA: PyTorch's SyncBatchNorm raises on CPU tensors in
    training, so a CPU (gloo) run keeps per-process BatchNorm rather than crash."""
    if not info.enabled:
        return model, "skipped: one process (BatchNorm already sees the whole batch)"
    if device.type != "cuda":
        return model, (f"skipped: SyncBatchNorm needs CUDA (device {device.type}); each "
                       f"process normalizes with the statistics of its own share of the batch")
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        return model, "skipped: the model has no BatchNorm layers"
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model), "on"


def wrap_model(model: torch.nn.Module, info: DistInfo, device: torch.device,
               comm_hook: str | None = None) -> torch.nn.Module:
    """The model in DistributedDataParallel (unchanged in a single process). `comm_hook` bf16 or
    fp16: PyTorch's compression hook, which sends the gradients as 16-bit floats (half the
    bytes of each all-reduce) and averages them back into the fp32 gradients."""
    if not info.enabled:
        return model
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks
    from torch.nn.parallel import DistributedDataParallel

    ids = [device.index] if device.type == "cuda" else None
    ddp = DistributedDataParallel(model, device_ids=ids)
    if comm_hook is not None:
        hook = {"bf16": default_hooks.bf16_compress_hook,
                "fp16": default_hooks.fp16_compress_hook}[comm_hook]
        ddp.register_comm_hook(None, hook)
    return ddp


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return getattr(model, "module", model)


def destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
