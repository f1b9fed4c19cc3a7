"""One pass of a model over a loader: the logits and labels of every test image, in order."""
from __future__ import annotations

import torch
from torch import nn

from ..data import DeviceLoader
from ..runtime import Runtime


@torch.no_grad()
def predict(model: nn.Module, loader: DeviceLoader, runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits N x C as float32, labels N) on the CPU, in the loader's order (never shuffled)."""
    if loader.shuffle:
        raise ValueError("predict() needs an unshuffled loader: results are matched to images by index")
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        with runtime.autocast():
            out = model(x)
        logits.append(out.float().cpu())
        labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)


@torch.no_grad()
def accuracy(model: nn.Module, loader: DeviceLoader, runtime: Runtime) -> float:
    """Top-1 accuracy over `loader`, counted on the device (no logits kept)."""
    model.eval()
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    for x, y in loader:
        with runtime.autocast():
            correct += (model(x).argmax(1) == y).sum()
    return correct.item() / max(loader.num_samples, 1)
