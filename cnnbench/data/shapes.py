"""What a model needs to know about a dataset's input, without reading its files.

`input_shape(dataset_cfg)` gives channels, image size and class count from a small table of the
known datasets (at `dataset.image_size` when it is set: their batches are resized to it), or from
the config (synthetic, imagefolder). `cnnbench models` uses it to size every model for a dataset
that may not even be on disk.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from cnnbench.data.sizes import AS_STORED, pixel_size
from cnnbench.errors import UserError


@dataclass(frozen=True)
class InputShape:
    channels: int
    height: int
    width: int
    num_classes: int

    @property
    def image_size(self) -> tuple[int, int]:
        return self.height, self.width

    def __str__(self) -> str:
        return f"{self.channels}x{self.height}x{self.width}, {self.num_classes} classes"


SHAPES: dict[str, InputShape] = {
    "mnist": InputShape(1, 28, 28, 10),
    "fashion_mnist": InputShape(1, 28, 28, 10),
    "cifar10": InputShape(3, 32, 32, 10),
    "cifar100": InputShape(3, 32, 32, 100),
}
CONFIGURED = ("synthetic",)  # datasets whose shape is in their config


def input_shape(dataset_cfg: Mapping[str, Any]) -> InputShape:
    """The input shape of the dataset described by a `dataset` config node."""
    name = dataset_cfg.get("name")
    if name in SHAPES:  # dataset.image_size, when set, is the size their batches are resized to
        size = dataset_cfg.get("image_size")
        if size is None:
            return SHAPES[name]
        height, width = pixel_size(size, hint=AS_STORED)
        return replace(SHAPES[name], height=height, width=width)
    if name == "imagefolder":  # classes from the folder's subfolders, size from the config
        from cnnbench.data.folder import folder_shape

        c, h, w, classes = folder_shape(**{k: v for k, v in dataset_cfg.items() if k != "name"})
        return InputShape(c, h, w, classes)
    if name in CONFIGURED:
        size = dataset_cfg.get("image_size", 28)
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        shape = InputShape(int(dataset_cfg.get("channels", 1)), int(h), int(w),
                           int(dataset_cfg.get("num_classes", 10)))
        if min(shape.channels, shape.height, shape.width, shape.num_classes) < 1:
            raise UserError(f"The synthetic dataset's shape ({shape}) is not valid: channels, "
                            f"image_size and num_classes must all be at least 1.")
        return shape
    known = ", ".join([*SHAPES, *CONFIGURED, "imagefolder"])
    raise UserError(f"No input shape is known for dataset '{name}'. Known datasets: {known}.")
