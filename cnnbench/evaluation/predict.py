"""One pass of a model over a loader: the logits and labels of every test image, in order."""
from __future__ import annotations

import torch
from torch import nn

from cnnbench.data import DeviceLoader
from cnnbench.engine.runtime import Runtime


@torch.no_grad()
def predict(model: nn.Module, loader: DeviceLoader, runtime: Runtime) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits N x C as float32, labels N) on the CPU, in the loader's order (never shuffled).

    The batches' logits stay on the device until the pass ends: one copy to the host, not one
    wait per batch."""
    if loader.shuffle:
        raise ValueError("predict() needs an unshuffled loader: results are matched to images by index")
    model.eval()
    logits, labels = [], []
    for x, y in loader:
        if runtime.cuda_graphs:  # each replay may reuse the memory of the last one's output
            torch.compiler.cudagraph_mark_step_begin()
        with runtime.autocast():
            out = model(x).float()
        logits.append(out.clone() if runtime.cuda_graphs else out)
        labels.append(y)
    if not logits:
        return torch.zeros(0, 0), torch.zeros(0, dtype=torch.long)
    return torch.cat(logits).cpu(), torch.cat(labels).cpu()


def loss_and_accuracy(logits: torch.Tensor, labels: torch.Tensor,
                      loss_fn: nn.Module) -> dict[str, float]:
    """test/loss (the mean of `loss_fn` over the images) and test/acc (top-1) of a pass."""
    if labels.numel() == 0:
        return {"test/loss": 0.0, "test/acc": 0.0}
    return {"test/loss": loss_fn(logits, labels).item(),
            "test/acc": (logits.argmax(1) == labels).sum().item() / labels.numel()}


@torch.no_grad()
def accuracy(model: nn.Module, loader: DeviceLoader, runtime: Runtime) -> float:
    """Top-1 accuracy over `loader`, counted on the device (no logits kept)."""
    model.eval()
    correct = torch.zeros((), device=runtime.device, dtype=torch.long)
    for x, y in loader:
        with runtime.autocast():
            correct += (model(x).argmax(1) == y).sum()
    return correct.item() / max(loader.num_samples, 1)
