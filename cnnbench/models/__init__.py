"""Model families, one module each. Configs in conf/model/ name a class by `_target_`; every class
takes `in_channels`, `image_size` and `num_classes` from the dataset, never from the user."""
from __future__ import annotations

from torch import nn


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
