"""What every loader of dataset files shares: the one-paragraph errors for a missing or damaged
file, the label checks, and torchvision's download as the fallback for a dataset not on disk."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cnnbench.errors import UserError


def fix_hint(name: str, folder: Path, expected: str) -> str:
    return (
        f"Put the {name} files there ({expected}), e.g. copy them from a machine that has them, "
        f"or point the tool at the folder that holds them with dataset.root=/path/to/data "
        f"(or the environment variable CNNBENCH_DATA); with network access, dataset.download=true "
        f"fetches them."
    )


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


def torchvision_download(tv_class: str, root: Path) -> None:
    """Let torchvision fetch the archives; any failure is reported by the caller's check."""
    import torchvision.datasets as tvd

    try:
        getattr(tvd, tv_class)(str(root), train=True, download=True)
        getattr(tvd, tv_class)(str(root), train=False, download=True)
    except Exception:  # noqa: BLE001 (no network, refused, bad checksum: the caller says what is missing)
        pass
