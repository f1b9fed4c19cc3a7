"""The user's pictures: found from files, folders and globs, then decoded and converted the way
the model's dataset was (`Preprocessing`: channels, size; normalization comes later, per batch).

A path that does not exist, a glob that matches nothing or a folder without pictures is the
user's mistake (a UserError naming it); a file that Pillow cannot decode is reported by
`load_image` as a reason, so one bad picture among many is skipped, not fatal.
"""
from __future__ import annotations

import glob
from pathlib import Path
from typing import Iterable

import numpy as np

from cnnbench.data.pixels import as_rgb
from cnnbench.data.preprocessing import Preprocessing
from cnnbench.errors import UserError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # what a folder is searched for
GLOB_CHARACTERS = "*?["


def split_values(values: Iterable[str]) -> list[str]:
    """`inputs=a.png,b.png` values as single paths (a value that exists as a path is kept
    whole, commas and all)."""
    out: list[str] = []
    for value in values:
        if Path(value).expanduser().exists():
            out.append(value)
        else:
            out += [v for v in value.split(",") if v.strip()]
    return out


def _visible(path: Path, top: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(top).parts)


def _folder_images(folder: Path) -> list[Path]:
    """The pictures in `folder` and its subfolders (hidden ones left out), sorted."""
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in EXTENSIONS
                  and p.is_file() and _visible(p, folder))


def _expand(spec: str) -> list[Path] | str:
    """The files `spec` names, or why it names none."""
    path = Path(spec).expanduser()
    if path.is_dir():
        found = _folder_images(path)
        return found or (f"the folder {spec} holds no pictures (looked for "
                         f"{', '.join(EXTENSIONS)}, in subfolders too)")
    if path.is_file():
        return [path]
    if any(c in spec for c in GLOB_CHARACTERS):
        matches = [Path(m) for m in sorted(glob.glob(str(path), recursive=True))]
        found = [f for m in matches for f in (_folder_images(m) if m.is_dir() else [m])]
        return found or f"the pattern {spec} matches no file"
    return f"{spec} does not exist"


def find_images(specs: Iterable[str]) -> list[Path]:
    """Every file the specs name (files as given, folders searched, globs expanded), each once,
    in order; a UserError names the specs that name nothing."""
    files: list[Path] = []
    problems: list[str] = []
    for spec in specs:
        found = _expand(spec)
        if isinstance(found, str):
            problems.append(found)
        else:
            files += found
    if problems:
        raise UserError(f"No pictures to predict: {'; '.join(problems[:5])}"
                        f"{f' (and {len(problems) - 5} more)' if len(problems) > 5 else ''}. "
                        f"Give image files, folders of them or quoted globs, e.g. "
                        f"inputs=photo.jpg,scans/ or inputs='digits/*.png'.")
    if not files:
        raise UserError("No pictures to predict: give inputs=FILE,FOLDER,'GLOB' (or the paths "
                        "after the options), e.g. inputs=photo.jpg,scans/.")
    unique: dict[Path, Path] = {}
    for f in files:
        unique.setdefault(f.resolve(), f)
    return list(unique.values())


def load_image(path: Path, prep: Preprocessing) -> np.ndarray | str:
    """`path` as the model's dataset holds its images (uint8 C x H x W), or why it cannot be
    read. Any Pillow mode is converted to 8-bit RGB as the imagefolder loader does (`as_rgb`:
    16-bit grayscale scaled, alpha dropped, palettes expanded), stretched to
    H x W (bilinear; aspect ratio not kept), then made gray for one-channel models."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            rgb = as_rgb(img)
    except UnidentifiedImageError:
        return "not a picture Pillow can read"
    except Exception as err:  # noqa: BLE001 (truncated, a directory, too large, ...)
        why = (str(err).splitlines() or ["unreadable"])[0]
        return f"{type(err).__name__}: {why.replace(str(path), 'the file')[:200]}"
    if rgb.size != (prep.width, prep.height):
        rgb = rgb.resize((prep.width, prep.height), Image.Resampling.BILINEAR)
    if prep.channels == 1 and prep.to_gray == "luminance":
        return np.asarray(rgb.convert("L"), dtype=np.uint8)[None].copy()
    pixels = np.asarray(rgb, dtype=np.uint8).transpose(2, 0, 1)
    return np.ascontiguousarray(pixels[:1] if prep.channels == 1 else pixels)
