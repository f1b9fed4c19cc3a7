"""Device, mixed precision and seeding: chosen once per run, then passed around as plain values."""
from __future__ import annotations

import contextlib
import dataclasses
import inspect
import os
import random
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from cnnbench.errors import UserError
from cnnbench.settings.trainer import GRAPHING_COMPILE_MODES


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full precision
    channels_last: bool
    compile_mode: str | None = None  # torch.compile mode of the model, None when not compiled
    capture_step: bool = False       # training step to be captured as one CUDA graph (CUDA)
    threads: int = 1                 # PyTorch's threads for work on the CPU

    @property
    def cuda_graphs(self) -> bool:
        """Whether the compiled model runs as CUDA graphs (each step must be marked)."""
        return self.device.type == "cuda" and self.compile_mode in GRAPHING_COMPILE_MODES

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def amp_name(self) -> str:
        return {None: "off", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    @property
    def needs_scaler(self) -> bool:
        return self.amp_dtype == torch.float16 and self.device.type == "cuda"

    @property
    def device_name(self) -> str:
        if self.device.type == "cuda":
            return torch.cuda.get_device_name(self.device)
        return self.device.type

    def autocast(self, cache_enabled: bool = True) -> contextlib.AbstractContextManager:
        """Mixed precision as chosen (nothing when off). `cache_enabled=False` inside CUDA-graph
        capture: autocast's cast cache must not outlive the captured region."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype,
                              cache_enabled=cache_enabled)


def select_device(requested: str) -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise UserError("trainer.device=cuda was asked for, but PyTorch sees no CUDA GPU on this "
                        "machine (or this PyTorch build has no CUDA support). Use "
                        "trainer.device=auto to take the best device available, or trainer.device=cpu.")
    if requested == "mps" and not (getattr(torch.backends, "mps", None)
                                   and torch.backends.mps.is_available()):
        raise UserError("trainer.device=mps was asked for, but Apple's MPS backend is not available "
                        "here. Use trainer.device=auto or trainer.device=cpu.")
    return torch.device(requested)


def select_amp(requested: str, device: torch.device) -> torch.dtype | None:
    if requested == "off":
        return None
    if requested == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[requested]


def make_runtime(device: str, amp: str, channels_last: bool | str,
                 compile_mode: str | None = None, cuda_graph: bool | str = False) -> Runtime:
    dev = select_device(device)
    use_cl = dev.type == "cuda" if channels_last == "auto" else bool(channels_last)
    amp_dtype = select_amp(amp, dev)
    runtime = Runtime(dev, amp_dtype, use_cl, compile_mode, threads=cpu_threads())
    return dataclasses.replace(runtime, capture_step=capture_off_reason(cuda_graph, runtime) is None)


def cpu_threads() -> int:
    """The threads PyTorch uses on the CPU: OMP_NUM_THREADS when it is set to a number (a sweep's
    share of the cores gives way to it), else what PyTorch or the sweep chose."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    if value.isdigit() and int(value) > 0 and torch.get_num_threads() != int(value):
        torch.set_num_threads(int(value))
    return torch.get_num_threads()


def capture_off_reason(cuda_graph: bool | str, runtime: Runtime) -> str | None:
    """Why the training step will not be captured as a CUDA graph (None: it will be tried)."""
    if cuda_graph is False:
        return "trainer.cuda_graph=false"
    if runtime.device.type != "cuda":
        return f"CUDA graphs need a CUDA GPU (device {runtime.device.type})"
    if runtime.compile_mode in GRAPHING_COMPILE_MODES:
        return f"trainer.compile={runtime.compile_mode} makes CUDA graphs of its own"
    return None


def fused_options(factory: Callable[..., torch.optim.Optimizer],
                  device: torch.device) -> dict[str, Any]:
    """`fused=True` for optimizers that have a fused CUDA kernel (Adam, AdamW, SGD, ...) on CUDA:
    one kernel for the whole update instead of several per parameter. Respects a `fused` or
    `foreach` the config set itself."""
    if device.type != "cuda":
        return {}
    cls = getattr(factory, "func", factory)
    given = getattr(factory, "keywords", {}) or {}
    try:
        accepts = "fused" in inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return {}
    if not accepts or "fused" in given or given.get("foreach"):
        return {}
    return {"fused": True}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
