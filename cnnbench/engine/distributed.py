"""Data-parallel training across processes started by `torchrun` (DDP).

    torchrun --nproc-per-node=2 -m cnnbench train model=vgg dataset=cifar10

Every process holds the whole dataset on its own device and draws the same shuffled order and
the same per-image augmentation parameters; each takes its share of every global batch
(trainer.batch_size stays the global batch, and every image is augmented as in a one-GPU run, so
the result matches a one-GPU run with the same batch size). Validation and test sets are small and
evaluated whole by every process, which keeps them identical without communication. Only rank 0
writes files and prints.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cnnbench.errors import UserError


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> DistInfo:
    """What torchrun put in the environment (a single process when it is absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_process_group(info: DistInfo) -> None:
    """Join the group (NCCL on GPUs, gloo on CPUs) once per process."""
    if not info.enabled or dist.is_initialized():
        return
    backend = "nccl" if torch.cuda.is_available() and os.environ.get(
        "CNNBENCH_DIST_BACKEND", "") != "gloo" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend)


def broadcast_string(value: str | None, info: DistInfo) -> str:
    """Rank 0's value on every rank (e.g. the run directory all ranks share)."""
    if not info.enabled:
        return value or ""
    holder = [value]
    dist.broadcast_object_list(holder, src=0)
    return holder[0]


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
