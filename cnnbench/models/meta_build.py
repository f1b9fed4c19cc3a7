"""Building a model on PyTorch's "meta" device without running its weight initialization.

On meta, tensors have shapes and no values, so initializing them computes nothing; yet PyTorch
still runs every init operation through its Python reference kernels, which costs more than the
rest of the build. Inside `meta_build()`, in-place operations on meta tensors (the
`normal_`, `uniform_`, `zero_` ... of weight init) return their tensor at once: shapes, parameter
counts and names come out the same, in a fraction of the time.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.overrides import TorchFunctionMode


class _SkipMetaInit(TorchFunctionMode):
    """In-place operations on meta tensors are no-ops: they return their first argument."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        if (name.endswith("_") and not name.startswith("_") and args
                and isinstance(args[0], torch.Tensor) and args[0].is_meta):
            return args[0]
        return func(*args, **(kwargs or {}))


@contextmanager
def meta_build() -> Iterator[None]:
    """Modules made inside live on the meta device, their weight initialization skipped. Only
    for building: a forward pass runs outside, where in-place operations check shapes."""
    with torch.device("meta"), _SkipMetaInit():
        yield


class _ShapeOnlyNorm(TorchFunctionMode):
    """Batch norm on a meta tensor keeps its shape: return that at once, without PyTorch's
    Python decomposition (the slowest part of a forward pass on meta)."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (),
                           kwargs: dict | None = None) -> Any:
        if (func in _NORMS and args and isinstance(args[0], torch.Tensor)
                and args[0].is_meta and args[0].ndim >= 2):
            return torch.empty_like(args[0])
        return func(*args, **(kwargs or {}))


_NORMS = (torch.nn.functional.batch_norm, torch.batch_norm)


@contextmanager
def meta_forward() -> Iterator[None]:
    """A forward pass on meta tensors that works out shapes only, without gradients."""
    with torch.inference_mode(), _ShapeOnlyNorm():
        yield
