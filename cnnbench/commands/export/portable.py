"""A model made exportable to ONNX without changing what it computes.

ONNX (opset 17, through PyTorch's TorchScript-based exporter) has adaptive average pooling only
where each output cell averages equally many inputs; AlexNet's 6x6 pooling of a 3x3 or 4x4 map
is not such a case. The input size of an export is fixed (only the batch varies), so each such
pooling is replaced by the same average written as two matrix products.
"""
from __future__ import annotations

import copy

import torch
from torch import nn


def _pooling_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """size_out x size_in: row i averages the inputs adaptive pooling gives output cell i."""
    matrix = torch.zeros(size_out, size_in)
    for i in range(size_out):
        lo, hi = (i * size_in) // size_out, -(-(i + 1) * size_in // size_out)
        matrix[i, lo:hi] = 1.0 / (hi - lo)
    return matrix


class MatrixAvgPool(nn.Module):
    """Adaptive average pooling of an H x W map to `out` as rows @ x @ columns^T."""

    def __init__(self, size_in: tuple[int, int], size_out: tuple[int, int]) -> None:
        super().__init__()
        self.register_buffer("rows", _pooling_matrix(size_in[0], size_out[0]))
        self.register_buffer("columns", _pooling_matrix(size_in[1], size_out[1]).t().contiguous())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(torch.matmul(self.rows, x), self.columns)


def _out_size(module: nn.AdaptiveAvgPool2d, size_in: tuple[int, int]) -> tuple[int, int]:
    out = module.output_size
    out = (out, out) if isinstance(out, int) else tuple(out)
    return tuple(s if o is None else o for o, s in zip(out, size_in))


def onnx_ready(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """`model` (a copy, when anything changes) with each adaptive average pooling that ONNX
    cannot express at this input size replaced by `MatrixAvgPool`."""
    sizes: dict[str, tuple[int, int]] = {}
    hooks = [m.register_forward_hook(lambda mod, args, _out, name=name:
                                     sizes.__setitem__(name, tuple(args[0].shape[-2:])))
             for name, m in model.named_modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for hook in hooks:
            hook.remove()
    uneven = {}
    for name, size_in in sizes.items():
        size_out = _out_size(model.get_submodule(name), size_in)
        if any(i % o for i, o in zip(size_in, size_out)):
            uneven[name] = MatrixAvgPool(size_in, size_out)
    if not uneven:
        return model
    model = copy.deepcopy(model)
    for name, replacement in uneven.items():
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, replacement)
    return model
