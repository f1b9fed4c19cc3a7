"""What `dataset=imagefolder` leaves out of a folder and why, and the sizes of the images it uses.

The loader (cnnbench/data/folder.py) reads every file with an image extension inside a class
subfolder and passes over everything else without a word: hidden files and folders, other
extensions, images outside the class subfolders. A file it cannot decode stops a run
(`UnreadableImages`, which names each file with Pillow's reason); here such files are listed with
that reason, and the rest of the folder is described as a run would see it once they are gone.
"""
from __future__ import annotations

import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cnnbench.data.folder import CACHE_PREFIX, IMAGE_EXTENSIONS

MAX_LISTED = 1000      # skipped files named in data.json (every one is counted)
MOST_COMMON_SIZES = 5
STOPS_RUN = "could not be read as an image ({why}): a training run stops on this file"


@dataclass
class Skipped:
    file: str          # relative to the folder; a folder ends in "/"
    reason: str
    stops_run: bool = False


def _files_of(layout: dict) -> list[Path]:
    return [f for classes in layout.values() for files in classes.values() for f in files]


def _test_dir(root: Path, layout: dict) -> str | None:
    """The folder of the fixed test set (test/ or val/), None without one."""
    tests = [f for files in layout.get("test", {}).values() for f in files]
    return tests[0].relative_to(root).parts[0] if tests else None


def _why(path: Path, root: Path, test_dir: str | None) -> str:
    """Why the loader passes over `path`, which is not hidden and not one of its images."""
    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        kind = f"'{path.suffix}'" if path.suffix else "a name without an extension"
        return f"{kind} is not an image extension the loader reads"
    parent = path.parent.relative_to(root).parts
    if test_dir is None or (len(parent) == 1 and parent[0] in ("train", test_dir)):
        where = f"{parent[0]}/" if parent else "the folder"
        return (f"directly in {where}, not in a class subfolder (an image's class is the "
                f"subfolder it is in)")
    return f"outside train/ and {test_dir}/, the only folders read when they are there"


def _hidden_folder(folder: Path, root: Path) -> Skipped:
    count = sum(len(files) for _, _, files in os.walk(folder))
    return Skipped(f"{folder.relative_to(root)}/",
                   f"hidden folder (its name starts with '.'), {count} file{'s' * (count != 1)}")


def skipped_files(root: Path, layout: dict) -> list[Skipped]:
    """Every file under `root` that the loader does not read (cnnbench's caches aside), with
    the reason; a hidden folder counts as one entry."""
    used = set(_files_of(layout))
    test_dir = _test_dir(root, layout)
    skipped = []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        skipped += [_hidden_folder(here / d, root) for d in sorted(dirs) if d.startswith(".")]
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = here / name
            if path in used or name.startswith(CACHE_PREFIX):
                continue
            reason = ("hidden file (its name starts with '.')" if name.startswith(".")
                      else _why(path, root, test_dir))
            skipped.append(Skipped(str(path.relative_to(root)), reason))
    return skipped


def _probe(path: Path) -> tuple[int, int, str] | None:
    """(width, height, Pillow mode) from the file's header, None where it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return img.width, img.height, img.mode
    except Exception:  # noqa: BLE001 (the loader's decoding says why; here it is just not counted)
        return None


def _spread(values: list[int]) -> dict:
    return {"min": int(min(values)), "median": float(np.median(values)), "max": int(max(values))}


def original_sizes(files: list[Path]) -> dict:
    """Width and height (min, median, max), the most common sizes and the colour modes of the
    original images, read from their headers (no decoding)."""
    with ThreadPoolExecutor(max_workers=min(16, (os.cpu_count() or 1) + 4)) as pool:
        probes = [p for p in pool.map(_probe, files) if p is not None]
    if not probes:
        return {"images": 0}
    common = Counter((w, h) for w, h, _ in probes).most_common(MOST_COMMON_SIZES)
    return {"images": len(probes),
            "width": _spread([w for w, _, _ in probes]),
            "height": _spread([h for _, h, _ in probes]),
            "most_common": [{"width": w, "height": h, "images": n} for (w, h), n in common],
            "distinct_sizes": len({(w, h) for w, h, _ in probes}),
            "modes": dict(Counter(mode for _, _, mode in probes).most_common())}


def folder_report(root: Path, layout: dict, unreadable: list[tuple[Path, str]],
                  image_size: tuple[int, int]) -> dict:
    """The imagefolder part of `cnnbench data`'s summary."""
    bad = {path for path, _ in unreadable}
    skipped = [Skipped(str(path.relative_to(root)), STOPS_RUN.format(why=why), True)
               for path, why in unreadable] + skipped_files(root, layout)
    used = [f for f in _files_of(layout) if f not in bad]
    return {"path": str(root.resolve()),
            "files_used": len(used),
            "resized_to": list(image_size),
            "skipped_count": len(skipped),
            "unreadable_count": len(unreadable),
            "skipped": [asdict(s) for s in skipped[:MAX_LISTED]],
            "original_sizes": original_sizes(used)}
