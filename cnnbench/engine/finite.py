"""The one finiteness guard: every number that leaves the engine is checked here.

The weights (parameters and floating-point buffers) after every epoch, so that the last step of
a run is covered too; the training, validation and test losses; a model's outputs. A NaN or an
infinity anywhere raises `NotFinite`, whose message names what was not finite. The weights are
checked in one fused pass: the largest |value| of every tensor (NaN propagates through it, an
infinity is its own maximum, a large finite value cannot overflow it), then one look at those
few numbers, so a check costs one synchronisation whatever the model's size.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

NAMED = 3  # names shown in a message; the others are counted


class NotFinite(ArithmeticError):
    """Numbers that must be finite are NaN or infinite; `names` says which ones."""

    def __init__(self, message: str, names: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.names = list(names)


def describe(value: float) -> str:
    """How a message names a non-finite value, in words rather than as a result: NaN,
    infinite, minus infinite."""
    if math.isnan(value):
        return "NaN"
    return "infinite" if value > 0 else "minus infinite"


def listed(names: Sequence[str]) -> str:
    """'a, b and c', or 'a, b, c and 4 more' for a long list."""
    shown = list(names[:NAMED])
    rest = len(names) - len(shown)
    if rest:
        return f"{', '.join(shown)} and {rest} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def floating(source: nn.Module | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """The floating-point tensors of a model (its state: parameters and buffers) or of a
    state dict, by name."""
    state = source.state_dict() if isinstance(source, nn.Module) else source
    return {k: v for k, v in state.items()
            if isinstance(v, torch.Tensor) and v.is_floating_point() and v.numel()}


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every tensor is finite: one fused max-|value| per device and
    one synchronisation."""
    by_device: dict[torch.device, list[torch.Tensor]] = {}
    for t in tensors:
        by_device.setdefault(t.device, []).append(t.detach())
    for group in by_device.values():
        peaks = torch.stack(torch._foreach_norm(group, math.inf))
        if not bool(torch.isfinite(peaks).all()):
            return False
    return True


def nonfinite_names(source: nn.Module | Mapping[str, Any]) -> list[str]:
    """The names of the tensors of a model or state dict that hold a NaN or an infinity (none:
    []). Finding that there is one takes the fused check; naming them, a look at each."""
    tensors = floating(source)
    if all_finite(tensors.values()):
        return []
    return [name for name, t in tensors.items() if not bool(torch.isfinite(t).all())]


def require_finite_weights(source: nn.Module | Mapping[str, Any], when: str) -> None:
    """Raise NotFinite when a weight of the model (or state dict) is NaN or infinite; `when`
    says at which point they were checked ('after its last step')."""
    names = nonfinite_names(source)
    if names:
        raise NotFinite(f"the weights became NaN or infinite {when} ({listed(names)})", names)


def nonfinite_values(values: Mapping[str, Any]) -> list[str]:
    """The keys whose values are numbers (floats, 0-d tensors) that are not finite; None and
    other values are left alone."""
    numbers = {k: _number(v) for k, v in values.items()}
    return [k for k, v in numbers.items() if v is not None and not math.isfinite(v)]


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, np.floating, np.integer)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.item())
    return None


def require_finite(values: Mapping[str, Any], where: str = "") -> None:
    """Raise NotFinite when a number in `values` (losses: {'validation loss': 0.3}) is NaN or
    infinite, naming it and what it became; `where` is added to the message ('at batch 3')."""
    bad = nonfinite_values(values)
    if bad:
        said = " and ".join(f"the {k} became {describe(_number(values[k]))}" for k in bad)
        raise NotFinite(f"{said}{f' {where}' if where else ''}", bad)


def nonfinite_rows(outputs: torch.Tensor | np.ndarray) -> list[int]:
    """The rows (images) of a batch of outputs, N x classes, that hold a NaN or an infinity."""
    if isinstance(outputs, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(outputs))
    else:
        t = outputs.detach()
    if t.numel() == 0 or bool(torch.isfinite(t).all()):
        return []
    return torch.nonzero(~torch.isfinite(t.reshape(t.shape[0], -1)).all(dim=1)).flatten().tolist()


def nonfinite_row_count(outputs: torch.Tensor) -> torch.Tensor:
    """How many rows (images) of a batch of outputs hold a NaN or an infinity, as a 0-d tensor
    on the outputs' device: counted without waiting for the device."""
    return (~torch.isfinite(outputs.reshape(outputs.shape[0], -1)).all(dim=1)).sum()


def require_finite_outputs(outputs: torch.Tensor | np.ndarray, what: str) -> None:
    """Raise NotFinite when the model's outputs for some of `what` (the test images) are NaN or
    infinite, saying for how many."""
    rows = nonfinite_rows(outputs)
    if rows:
        raise NotFinite(f"the model's outputs became NaN or infinite for {len(rows)} of the "
                        f"{len(outputs)} {what}", [str(r) for r in rows])
