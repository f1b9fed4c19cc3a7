"""How a model's input is made from a picture: the dataset's classes, channels, image size and
normalization, kept with the model (in its checkpoint, in an exported file's metadata).

Training turns each dataset's images into uint8 C x H x W tensors and normalizes them on the
device as `(x / 255 - mean) / std`; `normalize` does the same to a batch from elsewhere. The
picture-side rules (`to_gray`, `resample`) are the ones `dataset=imagefolder` applies when it
decodes a folder: any Pillow mode converted to 8-bit RGB (`pixels.as_rgb`: 16-bit gray scaled,
alpha dropped), stretched to H x W with bilinear resampling (aspect ratio not kept), then for
one-channel models either the luminance (the MNIST family, whose files are gray already) or the
first channel (imagefolder, as its decoder does).

A `Preprocessing` read from a file (a checkpoint's `data` entry, an ONNX file's metadata) is
checked by `checked`: plain values of the right types and sizes, so a doctored file can name
classes but cannot choose anything else.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from cnnbench.errors import UserError

FORMAT = "cnnbench-preprocessing-v1"
TO_GRAY = ("luminance", "first_channel")
RESAMPLE = ("bilinear",)
MAX_SIDE = 4096        # pixels: larger inputs are no model cnnbench trains
MAX_CLASSES = 100_000
MAX_NAME = 200         # characters of a class name


@dataclass(frozen=True)
class Preprocessing:
    """What a trained model expects, and its class names, in output order."""

    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    channels: int
    height: int
    width: int
    to_gray: str = "luminance"
    resample: str = "bilinear"
    dataset: str = ""

    @property
    def input_shape(self) -> list[int]:
        """[C, H, W]: one image; a batch adds the batch size in front."""
        return [self.channels, self.height, self.width]

    def describe(self) -> str:
        gray = {"luminance": "gray (luminance)", "first_channel": "gray (first channel)"}
        mode = gray[self.to_gray] if self.channels == 1 else "RGB"
        return f"{mode} {self.height}x{self.width}, {self.resample}, aspect ratio not kept"

    def normalize(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x C x H x W -> float32, as the training loader does it (one multiply-add)."""
        std = np.asarray(self.std, np.float32).reshape(1, -1, 1, 1)
        mean = np.asarray(self.mean, np.float32).reshape(1, -1, 1, 1)
        scale, shift = np.float32(1.0) / (np.float32(255.0) * std), -mean / std
        return (images.astype(np.float32) * scale + shift).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain values only: what a checkpoint (`torch.load(weights_only=True)`) and JSON hold."""
        data = asdict(self)
        data.update(format=FORMAT, classes=list(self.classes), mean=list(self.mean),
                    std=list(self.std))
        return data

    @classmethod
    def from_data(cls, data: Any) -> Preprocessing:
        """The preprocessing of an `ImageData` (the dataset a model was trained on)."""
        height, width = data.image_size
        return cls(tuple(map(str, data.classes)), tuple(map(float, data.mean)),
                   tuple(map(float, data.std)), int(data.channels), int(height), int(width),
                   to_gray="first_channel" if data.name == "imagefolder" else "luminance",
                   dataset=str(data.name))

    @classmethod
    def checked(cls, entry: Any, source: object) -> Preprocessing:
        """`entry` (from a file) as a Preprocessing, if every value is plain and in range;
        else a UserError that names `source` and the value refused."""
        if not isinstance(entry, Mapping) or entry.get("format") != FORMAT:
            raise _refused(source, f"it has no {FORMAT} entry")
        channels = _whole(entry.get("channels"), "channels", source, 1, 4)
        if channels not in (1, 3):
            raise _refused(source, f"channels={channels} (1 or 3 expected)")
        height = _whole(entry.get("height"), "height", source, 1, MAX_SIDE)
        width = _whole(entry.get("width"), "width", source, 1, MAX_SIDE)
        mean = _numbers(entry.get("mean"), "mean", channels, source)
        std = _numbers(entry.get("std"), "std", channels, source)
        if min(std) <= 0:
            raise _refused(source, f"std={list(std)} (each must be above 0)")
        classes = _names(entry.get("classes"), source)
        to_gray, resample = entry.get("to_gray"), entry.get("resample")
        if to_gray not in TO_GRAY or resample not in RESAMPLE:
            raise _refused(source, f"to_gray={to_gray!r}, resample={resample!r} (known: "
                                   f"{', '.join(TO_GRAY)}; {', '.join(RESAMPLE)})")
        dataset = entry.get("dataset", "")
        return cls(classes, mean, std, channels, height, width, to_gray, resample,
                   dataset if isinstance(dataset, str) else "")


def _refused(source: object, why: str) -> UserError:
    return UserError(f"{source} does not say how to prepare images for its model in a form "
                     f"cnnbench can trust: {why}. cnnbench writes plain values there, so the "
                     f"file was edited or comes from elsewhere; use a checkpoint that "
                     f"`cnnbench train` wrote, or a file that `cnnbench export` wrote.")


def _whole(value: Any, key: str, source: object, least: int, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
        raise _refused(source, f"{key}={value!r} (a whole number from {least} to {most} "
                               f"expected)")
    return value


def _numbers(value: Any, key: str, count: int, source: object) -> tuple[float, ...]:
    if (not isinstance(value, Sequence) or isinstance(value, str) or len(value) != count
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                       and math.isfinite(v) for v in value)):
        raise _refused(source, f"{key}={value!r} ({count} finite number(s) expected, one per "
                               f"channel)")
    return tuple(float(v) for v in value)


def _names(value: Any, source: object) -> tuple[str, ...]:
    if (not isinstance(value, Sequence) or isinstance(value, str)
            or not 2 <= len(value) <= MAX_CLASSES):
        raise _refused(source, f"classes is not a list of 2 to {MAX_CLASSES} names")
    for name in value:
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or not name.isprintable():
            raise _refused(source, f"the class name {str(name)[:40]!r} is not a printable text "
                                   f"of 1 to {MAX_NAME} characters")
    return tuple(value)

