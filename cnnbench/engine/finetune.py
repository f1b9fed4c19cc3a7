"""Fine-tuning: a model's parameters split into its classifier head and the rest (its backbone),
for `optimizer.backbone_lr_scale` (the backbone trains at lr x scale, the head at lr) and
`trainer.freeze_backbone_epochs` (only the head is updated in the first N epochs).

The head is what the bare model's `get_classifier()` returns (timm's models have it), else its
last nn.Linear in `modules()` order (cnnbench's own models all end in one). The bare model is the
one inside DistributedDataParallel and torch.compile's wrapper, whose parameters are the same
tensors.

Freezing never changes `requires_grad` (a captured CUDA-graph step, torch.compile, DDP and the
fused optimizers all expect the set of gradients to stay as it is): gradients are computed as
usual, and only around the optimizer step are the backbone's `.grad` set to None, then put back
(with a captured step those tensors belong to the graph). Torch optimizers and the GradScaler skip
a parameter whose gradient is None: no update, no weight decay, no optimizer state, which starts
when the backbone unfreezes. BatchNorm running statistics are not parameters and keep adapting.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Sequence

from torch import nn

from cnnbench.engine.distributed import unwrap
from cnnbench.errors import UserError
from cnnbench.settings.learning_rate import SCALE_KEY, backbone_lr_scale


def bare_model(model: nn.Module) -> nn.Module:
    """`model` without its DistributedDataParallel and torch.compile wrappers."""
    for _ in range(8):  # wrappers nest a few deep at most
        inner = getattr(model, "_orig_mod", None)
        if not isinstance(inner, nn.Module):
            inner = unwrap(model)
        if inner is model or not isinstance(inner, nn.Module):
            break
        model = inner
    return model


def _head_modules(model: nn.Module) -> list[nn.Module]:
    get_classifier = getattr(model, "get_classifier", None)
    if callable(get_classifier):
        head = get_classifier()
        heads = list(head) if isinstance(head, (tuple, list)) else [head]  # timm: a head pair
        return [h for h in heads if isinstance(h, nn.Module)]
    return [m for m in model.modules() if isinstance(m, nn.Linear)][-1:]


def head_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of `model`'s classifier head; a UserError when it has none."""
    bare = bare_model(model)
    params: dict[int, nn.Parameter] = {}  # by identity: a pair of heads may share one
    for module in _head_modules(bare):
        params.update((id(p), p) for p in module.parameters())
    if not params:
        raise UserError(
            f"The model ({type(bare).__name__}) has no classifier head to tell from its "
            f"backbone: optimizer.{SCALE_KEY} and trainer.freeze_backbone_epochs take the head "
            f"to be what the model's get_classifier() returns, else its last nn.Linear layer, "
            f"and it has neither (with parameters). Leave both at their defaults "
            f"(optimizer.{SCALE_KEY}=1.0, trainer.freeze_backbone_epochs=0) for this model.")
    return list(params.values())


def split_parameters(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """(head, backbone): the head's parameters, and every other parameter of `model` in order."""
    head = head_parameters(model)
    ids = {id(p) for p in head}
    return head, [p for p in model.parameters() if id(p) not in ids]


def without_scale(options: Any) -> tuple[Any, float]:
    """The optimizer's options without backbone_lr_scale (cnnbench's own key, not an argument of
    the torch optimizer), and the scale, checked."""
    if not isinstance(options, Mapping):  # not options at all: the optimizer's builder says so
        return options, 1.0
    return {k: v for k, v in options.items() if k != SCALE_KEY}, backbone_lr_scale(options)


def lr_groups(model: nn.Module, scale: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups for `scale`: the head first (its lr is the configured
    one, the lr the history logs), then the backbone. Each group keeps its `lr_scale`;
    `apply_lr_scales` sets the backbone's lr once the optimizer has filled in its defaults."""
    head, backbone = split_parameters(model)
    return [{"params": head, "lr_scale": 1.0}, {"params": backbone, "lr_scale": scale}]


def apply_lr_scales(optimizer) -> None:
    """Each group's lr x its `lr_scale` (groups without one are left as they are)."""
    for group in optimizer.param_groups:
        if "lr_scale" in group:
            group["lr"] = group["lr"] * group["lr_scale"]


@dataclass(eq=False)
class BackboneFreeze:
    """The backbone's parameters and the number of epochs (from the first) they stay still."""

    params: tuple[nn.Parameter, ...]
    epochs: int

    def frozen_in(self, epoch: int) -> Sequence[nn.Parameter]:
        """The parameters the optimizer must leave alone in `epoch` (1-based): the backbone's
        while it is frozen, else none. Depends on the epoch number alone (an exact resume)."""
        return self.params if epoch <= self.epochs else ()


def backbone_freeze(model: nn.Module, epochs: int, total_epochs: int,
                    note: Callable[..., None]) -> BackboneFreeze | None:
    """The freeze `trainer.freeze_backbone_epochs=epochs` asks for (None for 0)."""
    if not epochs:
        return None
    _, backbone = split_parameters(model)
    if epochs >= total_epochs:
        note(f"trainer.freeze_backbone_epochs={epochs} covers every epoch of this run "
             f"(trainer.epochs={total_epochs}): the backbone never trains, only the classifier "
             f"head does.", kind="warning")
    return BackboneFreeze(tuple(backbone), epochs)


@contextlib.contextmanager
def grads_hidden(params: Sequence[nn.Parameter]) -> Iterator[None]:
    """`params`' gradients set to None inside the block (an optimizer step skips them), and put
    back after it: the same tensors, which a captured step keeps writing into."""
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    try:
        yield
    finally:
        for p, grad in zip(params, saved):
            p.grad = grad
