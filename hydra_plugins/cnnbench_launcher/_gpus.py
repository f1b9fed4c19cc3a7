"""Which GPU each job of a parallel sweep gets: the jobs are spread over the GPUs, each job seeing
one GPU alone through CUDA_VISIBLE_DEVICES (set in its own process, before anything there touches
CUDA); more jobs than GPUs share them, a new job going to the GPU with the fewest jobs running.

The GPUs are counted without initialising CUDA in the sweep's process, which must not happen
before it forks its jobs (a forked child cannot use a CUDA its parent initialised):
- CUDA_VISIBLE_DEVICES, when set, is the list (its entries are passed on as they are: indices,
  GPU-... or MIG-... UUIDs), as CUDA itself reads it: up to the first entry starting with '-';
- otherwise NVML (the driver's management library, which does not initialise CUDA) counts them.
  torch.cuda.device_count() is not used: it falls back to initialising CUDA whenever NVML cannot
  answer (MIG devices, a missing libnvidia-ml), which would break every job of the sweep.
No NVIDIA driver, or none of this works: no GPU, and the jobs' environment stays as it was.
Checked on two H200s (torch 2.11): NVML counted 2 with CUDA not initialised in the process that
had imported torch, torch._dynamo and cnnbench.run.lifecycle; children forked from it, each setting
CUDA_VISIBLE_DEVICES first, saw one GPU each (the UUIDs of GPU 0 and GPU 1 in turn).
"""
from __future__ import annotations

import ctypes
import os
import sys
from typing import Callable, Mapping, Sequence

VISIBLE = "CUDA_VISIBLE_DEVICES"


def nvml_gpu_count() -> int:
    """The number of NVIDIA GPUs the driver reports (0 without a driver or when NVML fails)."""
    try:
        nvml = ctypes.CDLL("libnvidia-ml.so.1")
        if nvml.nvmlInit_v2() != 0:
            return 0
    except (OSError, AttributeError):
        return 0
    try:
        count = ctypes.c_uint(0)
        return count.value if nvml.nvmlDeviceGetCount_v2(ctypes.byref(count)) == 0 else 0
    finally:
        nvml.nvmlShutdown()


def visible_gpus(environ: Mapping[str, str] | None = None,
                 count: Callable[[], int] | None = None) -> list[str]:
    """The GPUs jobs may be given, as values for CUDA_VISIBLE_DEVICES (by default from this
    process's environment, counted by `nvml_gpu_count`)."""
    listed = (os.environ if environ is None else environ).get(VISIBLE)
    if listed is None:
        return [str(i) for i in range((count or nvml_gpu_count)())]
    gpus = []
    for entry in (e.strip() for e in listed.split(",")):
        if not entry or entry.startswith("-"):
            break
        gpus.append(entry)
    return gpus


def pick_gpu(gpus: Sequence[str], busy: Sequence[str | None]) -> str | None:
    """The GPU for the next job: the one with the fewest running jobs (`busy` holds each running
    job's GPU), the first such in `gpus` on a tie; None when there is no GPU."""
    if not gpus:
        return None
    return min(gpus, key=lambda gpu: sum(b == gpu for b in busy))


def gives_its_own_gpu(device: object) -> bool:
    """A job whose trainer.device names one GPU (cuda:1) keeps the GPUs it can see."""
    return isinstance(device, str) and device.strip().lower().startswith("cuda:")


def use_gpu(gpu: str | None) -> None:
    """In the job's process, before CUDA is used: let it see only `gpu` (None: leave it be)."""
    if gpu is not None:
        os.environ[VISIBLE] = gpu


def cuda_initialised() -> bool:
    """Whether this process has initialised CUDA (without initialising it to find out)."""
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())
