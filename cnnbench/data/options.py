"""The values of a dataset's own options that need no file to check: dataset=synthetic's sizes,
dataset=imagefolder's path, channels and test split. One check, made by the command before it
imports torch and by the loader again (for callers of the loaders outside the command)."""
from __future__ import annotations

from typing import Any, Mapping

from cnnbench.errors import UserError

LAYOUT_HINT = ("Expected one subfolder per class with the images inside, e.g. "
               "<path>/cat/001.jpg, <path>/dog/002.png (or <path>/train/<class>/... and "
               "<path>/test/<class>/... for a fixed test set).")
# dataset=synthetic's sizes -> the least each may be
SYNTHETIC_LEAST = {"channels": 1, "image_size": 1, "num_classes": 2, "train_size": 1,
                   "test_size": 1, "seed": 0}


def check_synthetic(**sizes: Any) -> None:
    """Each of dataset=synthetic's sizes given is a whole number of at least its least."""
    for key, least in SYNTHETIC_LEAST.items():
        value = sizes.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(f"dataset.{key}={value!r} is not valid for dataset=synthetic: it must "
                            f"be a whole number of at least {least}, e.g. dataset.{key}="
                            f"{max(least, 2)}.")


def check_imagefolder(path: Any = None, channels: Any = "auto", test_split: Any = 0.2,
                      **_: Any) -> None:
    """dataset=imagefolder names its folder, and its channels and test split are valid."""
    if not path:
        raise UserError("dataset=imagefolder needs the folder of your images: add "
                        "dataset.path=/path/to/folder. " + LAYOUT_HINT)
    if channels not in ("auto", 1, 3):
        raise UserError(f"dataset.channels={channels!r} is not valid: use auto, 1 or 3.")
    if isinstance(test_split, bool) or not isinstance(test_split, (int, float)) \
            or not 0 < test_split < 1:
        raise UserError(f"dataset.test_split={test_split!r} is not valid: a fraction in (0, 1).")


def check_dataset_options(dataset: Mapping[str, Any]) -> None:
    """The checks above for the dataset a `dataset` config node names (others have none)."""
    options = {k: v for k, v in dataset.items() if k != "name"}
    if dataset.get("name") == "synthetic":
        check_synthetic(**{k: v for k, v in options.items() if k in SYNTHETIC_LEAST})
    elif dataset.get("name") == "imagefolder":
        check_imagefolder(**options)
