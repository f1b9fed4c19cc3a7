"""What every loader of dataset files shares: the one-paragraph errors for a missing or damaged
file or dataset, and the label checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnbench.errors import UserError


def not_on_disk(name: str, what: str, download_failure: str | None, by_hand: str,
                source: str) -> UserError:
    """The dataset `name` is missing (`what` says which files, where). `download_failure` is None
    when the download was off, else the line saying how it failed; `by_hand` says which files go
    where, `source` the address they come from."""
    elsewhere = ("or point the tool at the folder that holds them with dataset.root=/path/to/data "
                 "(or the environment variable CNNBENCH_DATA).")
    if download_failure is None:
        return UserError(
            f"The {name} dataset is not on disk ({what}) and dataset.download=false. Add "
            f"dataset.download=true to fetch it from {source} (needs network access), or "
            f"{by_hand}, {elsewhere}")
    return UserError(
        f"The {name} dataset is not on disk ({what}) and downloading it failed: "
        f"{download_failure}. Without network access, {by_hand} (fetched from {source} on a "
        f"machine that has access), {elsewhere}")


def bad_file(path: Path, what: str) -> UserError:
    return UserError(f"{path} {what}. The file is corrupted, incomplete or from another "
                     f"dataset: delete it and copy or download the dataset again.")


def check_labels(labels: np.ndarray | torch.Tensor, n_images: int, num_classes: int,
                 labels_file: Path, images_file: Path) -> None:
    """One label per image, each a class index in [0, num_classes)."""
    labels = torch.as_tensor(labels)
    if labels.ndim != 1:
        raise bad_file(labels_file, f"holds labels of shape {tuple(labels.shape)}, not one "
                                    f"label per image")
    if len(labels) != n_images:
        where = "" if labels_file == images_file else f" but {images_file} has"
        raise bad_file(labels_file, f"has {len(labels)} labels{where or ' for'} {n_images} "
                                    f"images: every image needs exactly one label")
    bad = ((labels < 0) | (labels >= num_classes)).nonzero()
    if len(bad):
        i = int(bad[0])
        raise bad_file(labels_file, f"has label {int(labels[i])} at position {i}, but the "
                                    f"dataset has {num_classes} classes (labels 0 to "
                                    f"{num_classes - 1})")
