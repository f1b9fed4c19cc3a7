"""`dataset.image_size`: the size in pixels a model takes its images at (an int, or [height, width]).

`dataset=imagefolder` decodes its pictures at that size; the file datasets (MNIST, CIFAR, ...)
keep their stored size unless it is set, and then every batch is resized on the training device.
"""
from __future__ import annotations

from typing import Any, Sequence

from cnnbench.errors import UserError

# the end of the error for a dataset whose images have a size of their own (MNIST, CIFAR, ...)
AS_STORED = " dataset.image_size=null keeps the size the files have."
# Datasets whose image size comes from their files: `image_size` (None: as stored) resizes their
# batches on the training device. imagefolder decodes at its image_size, synthetic makes them so.
RESIZED_ON_DEVICE = ("mnist", "fashion_mnist", "cifar10", "cifar100")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def pixel_size(image_size: Any, *, hint: str = "") -> tuple[int, int]:
    """`image_size` (an int, or [height, width]) as (height, width); anything else, or a side
    under 1, is a UserError that names the value and gives an example (then `hint`)."""
    if _whole(image_size):
        h = w = image_size
    elif (isinstance(image_size, Sequence) and not isinstance(image_size, str)
          and len(image_size) == 2 and all(_whole(v) for v in image_size)):
        h, w = image_size
    else:
        h = w = 0
    if h < 1 or w < 1:
        raise UserError(f"dataset.image_size={image_size!r} is not valid: give a size in pixels, "
                        f"e.g. dataset.image_size=32 or 'dataset.image_size=[48,64]'.{hint}")
    return int(h), int(w)
