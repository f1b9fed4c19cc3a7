"""Any picture Pillow opens, as 8-bit RGB: the one conversion the imagefolder loader and
`cnnbench predict` share, so a model sees a file the same way in training and in prediction.

Pillow's own `convert("RGB")` clips 16-bit grayscale (modes I;16, I;16B, I;16L, and I, which
16-bit PNG and TIFF files decode to) at 255, which turns almost every pixel white. Those modes
are scaled instead: a 16-bit value v becomes v // 257, which maps 0..65535 onto 0..255 and
undoes the usual 8-to-16-bit widening exactly (v = 257 * w gives back w). Mode I holds 32-bit
integers; values outside 0..65535 are clipped to that range first.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def sixteen_to_eight(values: np.ndarray) -> np.ndarray:
    """16-bit pixel values (any integer array) as uint8: v // 257, clipped to 0..65535 first."""
    return (np.clip(values.astype(np.int64), 0, 65535) // 257).astype(np.uint8)


def as_rgb(img: Image) -> Image:
    """`img` as an 8-bit RGB image: 16-bit grayscale scaled (see the module docstring), every
    other mode converted by Pillow (alpha dropped, palettes expanded)."""
    from PIL import Image as PILImage

    if img.mode in SIXTEEN_BIT_MODES:  # a 2-D uint8 array is a mode L image
        return PILImage.fromarray(sixteen_to_eight(np.asarray(img))).convert("RGB")
    return img.convert("RGB")
