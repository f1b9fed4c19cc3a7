"""A dataset as a run would have it: loaded, split into train/val/test with the run's
`trainer.val_split` and `trainer.seed`, and described in one JSON-ready summary."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from cnnbench.data.image_data import ImageData, channel_mean_std
from cnnbench.run.build import load_data

# datasets whose normalization constants the loader computes from the images; every other one
# has fixed constants (cnnbench/data/sources.py)
COMPUTED_NORMALIZATION = ("imagefolder",)


@dataclass
class Loaded:
    data: ImageData            # the run's splits: train (less val), val (None when 0), test
    folder: dict | None = None  # dataset=imagefolder: skipped files, original sizes


def load_folder(cfg: DictConfig, settings: Any) -> Loaded:
    """An image folder as a run would load it; files Pillow cannot decode (which stop a run)
    are left out here and listed in the report."""
    from cnnbench.commands.data.folder_report import folder_report
    from cnnbench.data.folder import UnreadableImages, image_layout

    unreadable: list[tuple[Path, str]] = []
    try:
        data = load_data(cfg, settings)
    except UnreadableImages as err:
        unreadable = err.files
        layout = image_layout(Path(cfg.dataset.path).expanduser())
        bad = {path for path, _ in unreadable}
        if any(all(f in bad for files in classes.values() for f in files)
               for classes in layout.values()):
            raise  # nothing left to describe in a split: the run's own paragraph
        with open_dict(cfg.dataset):
            cfg.dataset.exclude = [str(path) for path in bad]
        data = load_data(cfg, settings)
    root = Path(cfg.dataset.path).expanduser()
    report = folder_report(root, image_layout(root), unreadable, data.image_size)
    return Loaded(data, report)


def load_as_run(cfg: DictConfig, settings: Any) -> Loaded:
    if cfg.dataset.name == "imagefolder":
        return load_folder(cfg, settings)
    return Loaded(load_data(cfg, settings))


def splits_of(data: ImageData) -> dict:
    """{"train": Split, "val": Split (when there is one), "test": Split}, in that order."""
    splits = {"train": data.train, "val": data.val, "test": data.test}
    return {name: split for name, split in splits.items() if split is not None}


def class_counts(data: ImageData) -> dict[str, list[int]]:
    return {name: torch.bincount(split.labels, minlength=data.num_classes).tolist()
            for name, split in splits_of(data).items()}


def normalization(data: ImageData) -> dict:
    """The mean and std a run normalizes with, and those measured on its training split."""
    computed = data.name in COMPUTED_NORMALIZATION
    mean, std = channel_mean_std(data.train.images)
    about = ("values the loader computed over the folder's training images (before the "
             "validation hold-out)" if computed else "the dataset's fixed constants")
    return {"used": {"mean": list(data.mean), "std": list(data.std),
                     "source": "computed" if computed else "fixed", "about": about},
            "measured": {"mean": list(mean), "std": list(std), "split": "train",
                         "images": len(data.train)}}


def read_from(data: ImageData) -> dict | None:
    """The folder the images were read from, and whether it is the copy inside the package."""
    if data.source is None:
        return None
    return {"path": str(data.source), "shipped_inside_cnnbench": data.shipped}


def dataset_options(cfg: DictConfig) -> dict:
    options = OmegaConf.to_container(cfg.dataset, resolve=True)
    options.pop("exclude", None)
    return options


def summary(cfg: DictConfig, settings: Any, loaded: Loaded) -> dict:
    """Everything `cnnbench data` shows, as data.json holds it (pictures added by the caller)."""
    data = loaded.data
    sizes = {name: len(split) for name, split in splits_of(data).items()}
    out = {"dataset": data.name,
           "options": dataset_options(cfg),
           "split": {"val_split": settings.val_split, "seed": settings.seed},
           "image_shape": [data.channels, *data.image_size],
           "num_classes": data.num_classes,
           "classes": list(data.classes),
           "sizes": {**sizes, "total": sum(sizes.values())},
           "class_counts": class_counts(data),
           "normalization": normalization(data),
           "read_from": read_from(data)}
    if loaded.folder is not None:
        out["imagefolder"] = loaded.folder
    return out
