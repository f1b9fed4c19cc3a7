"""Model families, one module each; configs in conf/model/ name a class by `_target_`.

Every class takes `in_channels`, `image_size` and `num_classes` from the dataset (never from the
user) plus its own options, and derives its flattened feature size from the input.

    mlp.py        MLP (source 001 mlp, source 000 mlp_small)
    lenet.py      LeNet5 (sources 001/004 lenet, source 000 lenet_sigmoid)
    small_cnn.py  SmallCNN (source 000 cnn_simple, cnn2)
    alexnet.py    AlexNetCIFAR (source 004 alexnet), AlexNetSmall (source 000 alexnet_small)
    vgg.py        VGG (source 003 vgg)
    twoconv.py    TwoConvNet (source 002 net1, net2)
    resnet.py     ResNet18 (CIFAR-style, beyond the seeds)
"""
from __future__ import annotations

from torch import nn

from cnnbench.models.registry import (
    build_model,
    model_config,
    model_names,
    model_summary,
)


def count_parameters(model: nn.Module) -> int:
    """Trainable and frozen parameters (not buffers such as BatchNorm running statistics)."""
    return sum(p.numel() for p in model.parameters())


__all__ = ["build_model", "count_parameters", "model_config", "model_names", "model_summary"]
