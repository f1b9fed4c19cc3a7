"""`dataset=synthetic`: random images with class structure, made in memory (no file)."""
from __future__ import annotations

import torch

from cnnbench.data.image_data import ImageData, Split
from cnnbench.data.options import check_synthetic


def load_synthetic(channels: int = 1, image_size: int = 28, num_classes: int = 10,
                   train_size: int = 2048, test_size: int = 512, seed: int = 0,
                   **_: object) -> ImageData:
    """Random images with class structure: each class is a fixed random pattern plus noise."""
    check_synthetic(channels=channels, image_size=image_size, num_classes=num_classes,
                    train_size=train_size, test_size=test_size, seed=seed)
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.rand(num_classes, channels, image_size, image_size, generator=g)

    def make(n: int) -> Split:
        labels = torch.randint(0, num_classes, (n,), generator=g)
        noise = torch.rand(n, channels, image_size, image_size, generator=g)
        images = (0.6 * prototypes[labels] + 0.4 * noise) * 255
        return Split(images.round().to(torch.uint8), labels)

    return ImageData("synthetic", make(train_size), make(test_size),
                     [f"class_{i}" for i in range(num_classes)], (0.5,) * channels, (0.25,) * channels)
