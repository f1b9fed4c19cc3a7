"""`dataset=imagefolder`: a user's own folder of images, one subfolder per class.

    my_images/                      or, with a fixed test set:   my_images/train/cat/...
      cat/001.jpg  cat/002.png ...                               my_images/test/cat/...
      dog/...

Images of any size and any format Pillow reads are decoded once, resized to `image_size`, and
cached as uint8 tensors in cnnbench's own cache folder (`cnnbench.rundir.cache_dir()`:
$CNNBENCH_CACHE_DIR, else $XDG_CACHE_HOME/cnnbench, else ~/.cache/cnnbench), never in the
user's folder. The cache is keyed on the list of files with their sizes and modification
times, so adding, removing or editing an image rebuilds it; otherwise the next run memory-maps
it and starts at once. From there on it is the same path as every other dataset.
"""
from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Collection, Sequence

import numpy as np
import torch

from cnnbench.data.image_data import ImageData, Split, channel_mean_std
from cnnbench.data.options import LAYOUT_HINT, check_imagefolder
from cnnbench.data.pixels import as_rgb
from cnnbench.data.sizes import pixel_size
from cnnbench.errors import UserError
from cnnbench.rundir import cache_dir, cache_writer, write_with

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".pbm"}
CACHE_FORMAT = "cnnbench-imagefolder-v2"  # v2: 16-bit images scaled, no longer clipped
CACHE_PREFIX = ".cnnbench_cache_"  # caches older versions left in the folder (never images)
GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


def _is_image(p: Path) -> bool:
    return p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _scan_classes(folder: Path) -> dict[str, list[Path]]:
    """{class name: its image files (sorted, any depth)} for the class subfolders of `folder`."""
    classes = {}
    for sub in _class_folders(folder):
        classes[sub.name] = sorted(p for p in sub.rglob("*") if p.is_file() and _is_image(p))
    return classes


def image_layout(root: Path) -> dict[str, dict[str, list[Path]]]:
    """{'all': classes} or {'train': classes, 'test': classes}, checked for the usual mistakes."""
    if not root.exists():
        raise UserError(f"dataset.path={root} does not exist. Point it at a folder with one "
                        f"subfolder of images per class. {LAYOUT_HINT}")
    if not root.is_dir():
        raise UserError(f"dataset.path={root} is a file, not a folder. {LAYOUT_HINT}")
    if not any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise UserError(f"dataset.path={root} is an empty folder. {LAYOUT_HINT}")
    splits = {}
    for train_name, test_name in (("train", "test"), ("train", "val")):
        train_dir, test_dir = root / train_name, root / test_name
        if train_dir.is_dir() and test_dir.is_dir() and _class_folders(train_dir):
            splits = {"train": _scan_classes(train_dir), "test": _scan_classes(test_dir)}
            break
    if not splits:
        if not _class_folders(root):
            loose = sum(1 for p in root.iterdir() if p.is_file() and _is_image(p))
            raise UserError(
                f"dataset.path={root} has no class subfolders"
                + (f" (it holds {loose} images directly)" if loose else "")
                + f": the class of each image is the name of the subfolder it is in. {LAYOUT_HINT}")
        splits = {"all": _scan_classes(root)}
    for name, classes in splits.items():
        where = root if name == "all" else root / name
        empty = [c for c, files in classes.items() if not files]
        if empty and len(empty) == len(classes):
            raise UserError(f"The class subfolders of {where} hold no images (looked for "
                            f"{', '.join(sorted(IMAGE_EXTENSIONS))}). {LAYOUT_HINT}")
        if empty:
            raise UserError(f"Class subfolder(s) {', '.join(empty)} of {where} hold no images. "
                            f"Add images or remove the empty folders.")
    names = list(next(iter(splits.values())))
    if len(names) < 2:
        raise UserError(f"dataset.path={root} has only one class ({names[0]}): a classifier needs "
                        f"at least two class subfolders. {LAYOUT_HINT}")
    if "test" in splits and set(splits["test"]) - set(splits["train"]):
        extra = sorted(set(splits["test"]) - set(splits["train"]))
        raise UserError(f"{root / 'test'} has classes that {root / 'train'} lacks: {', '.join(extra)}.")
    return splits


def _without(splits: dict, exclude: Collection[str | Path]) -> dict:
    """The layout less the files in `exclude`."""
    if not exclude:
        return splits
    gone = {Path(p).resolve() for p in exclude}
    return {name: {cls: [f for f in files if f.resolve() not in gone]
                   for cls, files in classes.items()} for name, classes in splits.items()}


def _cache_key(root: Path, splits: dict, size: tuple[int, int], channels: str | int,
               split: tuple[float, int]) -> str:
    listing = []
    for name, classes in splits.items():
        for cls, files in classes.items():
            for f in files:
                st = f.stat()
                listing.append([name, cls, str(f.relative_to(root)), st.st_size, st.st_mtime_ns])
    blob = json.dumps([CACHE_FORMAT, list(size), str(channels), list(split), listing]).encode()
    return hashlib.sha256(blob).hexdigest()


def _cache_paths(root: Path, size: tuple[int, int], channels: str | int) -> list[Path]:
    tag = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [cache_dir() / f"imagefolder_{tag}_{size[0]}x{size[1]}_{channels}.pt"]


def _decode(path: Path, size: tuple[int, int]) -> tuple[np.ndarray, bool] | str:
    """(H x W x 3 uint8 array, whether the file is grayscale), or why it cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            gray = img.mode in GRAY_MODES or (img.mode == "P" and _palette_is_gray(img))
            rgb = as_rgb(img)
    except UnidentifiedImageError:
        return "not an image format Pillow can decode"
    except Exception as err:  # noqa: BLE001 (truncated, not an image, a decoder bomb check...)
        why = (str(err).splitlines() or ["unreadable"])[0]
        why = why.replace(repr(str(path)), "the file").replace(str(path), "the file")
        return f"{type(err).__name__}: {why}"
    if rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8), gray


def _palette_is_gray(img) -> bool:
    palette = img.getpalette() or []
    return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette), 3))


class UnreadableImages(UserError):
    """Files with an image extension that Pillow could not decode: `files` holds every one of
    them as (path, why), the message names the first few."""

    def __init__(self, message: str, files: list[tuple[Path, str]]) -> None:
        super().__init__(message)
        self.files = files


def _refuse_unreadable(root: Path, jobs: list, decoded: list) -> None:
    """One error that names every file (relative to the folder) Pillow could not decode."""
    bad = [(jobs[i][2], why) for i, why in enumerate(decoded) if isinstance(why, str)]
    if not bad:
        return
    shown = "; ".join(f"{f.relative_to(root)} ({why})" for f, why in bad[:5])
    more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
    raise UnreadableImages(
        f"{len(bad)} file{'s' if len(bad) != 1 else ''} in dataset.path={root} could not be read "
        f"as an image: {shown}{more}. Every file with an image extension under a class "
        f"subfolder is used: remove or replace the broken file{'s' if len(bad) != 1 else ''} "
        f"(or move them out of the folder), then run again.", bad)


def _build(root: Path, splits: dict, size: tuple[int, int], channels: str | int) -> dict:
    """Decode every image (threads: Pillow releases the GIL while decoding and resizing)."""
    classes = list(next(iter(splits.values())))
    index = {c: i for i, c in enumerate(classes)}
    jobs = [(name, index[cls], f) for name, per_class in splits.items()
            for cls, files in per_class.items() for f in files]
    with ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4)) as pool:
        decoded = list(pool.map(lambda job: _decode(job[2], size), jobs))
    _refuse_unreadable(root, jobs, decoded)
    all_gray = all(gray for _, gray in decoded)
    n_channels = (1 if all_gray else 3) if channels == "auto" else int(channels)
    payload: dict = {"format": CACHE_FORMAT, "classes": classes}
    for name in splits:
        rows = [i for i, job in enumerate(jobs) if job[0] == name]
        images = np.stack([decoded[i][0] for i in rows]).transpose(0, 3, 1, 2)  # N x 3 x H x W
        images = images[:, :1] if n_channels == 1 else images
        payload[f"{name}_images"] = torch.from_numpy(np.ascontiguousarray(images))
        payload[f"{name}_labels"] = torch.tensor([jobs[i][1] for i in rows], dtype=torch.long)
    return payload


def _save_cache(payload: dict, candidates: list[Path]) -> None:
    for path in candidates:
        try:
            write_with(path, lambda tmp: torch.save(payload, tmp), cache_writer())
            return
        except (OSError, UserError):
            continue  # an unwritable cache folder: without a cache it still works


def _load_cache(candidates: list[Path], key: str) -> dict | None:
    for path in candidates:
        if not path.is_file():
            continue
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 (truncated, foreign or from another version: rebuild it)
            continue
        if isinstance(payload, dict) and payload.get("format") == CACHE_FORMAT \
                and payload.get("key") == key:
            return payload
    return None


def load_imagefolder(path: str | None = None, image_size: int | Sequence[int] = 32,
                     channels: str | int = "auto", test_split: float = 0.2, split_seed: int = 0,
                     exclude: Collection[str | Path] = (), **_: object) -> ImageData:
    """Load (decoding once, then from the cache) the image folder at `path`; files named in
    `exclude` are left out as if they were not there."""
    check_imagefolder(path, channels, test_split)
    root = Path(path).expanduser()
    size = pixel_size(image_size)
    splits = _without(image_layout(root), exclude)
    key = _cache_key(root, splits, size, channels, (test_split, split_seed))
    candidates = _cache_paths(root, size, channels)
    payload = _load_cache(candidates, key)
    if payload is None:
        payload = _build(root, splits, size, channels)
        if "all_images" in payload:  # no fixed test set: hold out a seeded random part
            images, labels = payload.pop("all_images"), payload.pop("all_labels")
            n = len(labels)
            if n < 2:
                raise UserError(f"dataset.path={root} holds {n} image: too few to train and test.")
            n_test = min(n - 1, max(1, int(round(n * test_split))))
            order = torch.randperm(n, generator=torch.Generator().manual_seed(split_seed))
            payload["train_images"], payload["train_labels"] = images[order[n_test:]], labels[order[n_test:]]
            payload["test_images"], payload["test_labels"] = images[order[:n_test]], labels[order[:n_test]]
        payload["key"] = key
        payload["mean"], payload["std"] = channel_mean_std(payload["train_images"])  # training part only
        _save_cache(payload, candidates)
    train = Split(payload["train_images"], payload["train_labels"])
    test = Split(payload["test_images"], payload["test_labels"])
    return ImageData("imagefolder", train, test, list(payload["classes"]),
                     tuple(payload["mean"]), tuple(payload["std"]), source=root.absolute())


def folder_shape(path: str | None = None, image_size: int | Sequence[int] = 32,
                 channels: str | int = "auto", **_: object) -> tuple[int, int, int, int]:
    """(channels, height, width, classes) without decoding: classes from the subfolders;
    channels 'auto' counts as 3 unless a cache of this folder says otherwise."""
    check_imagefolder(path, channels)
    root = Path(path).expanduser()
    splits = image_layout(root)
    h, w = pixel_size(image_size)
    n_channels = 3 if channels == "auto" else int(channels)
    if channels == "auto":
        for cache in _cache_paths(root, (h, w), channels):
            if cache.is_file():
                try:
                    payload = torch.load(cache, map_location="cpu", weights_only=True, mmap=True)
                    n_channels = int(payload["train_images"].shape[1])
                    break
                except Exception:  # noqa: BLE001 (an unreadable cache: decode again)
                    continue
    return n_channels, h, w, len(next(iter(splits.values())))
