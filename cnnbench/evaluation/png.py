"""PNG files of RGB pixels, written with zlib.

Pillow's `Image.save` first imports its five most common format plugins (BMP, GIF, JPEG, PPM,
PNG), which costs more than encoding both of a run's pictures; an 8-bit RGB PNG is a few
chunks around the zlib-compressed rows, each row given PNG's "Up" filter (its difference from
the row above), which suits pictures of flat colour.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
UP = 2  # PNG's filter type "Up"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_bytes(picture, level: int = 3) -> bytes:
    """An RGB picture (a PIL image, or H x W x 3 uint8 pixels) as a PNG file's bytes."""
    pixels = np.asarray(picture, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"RGB pixels expected, not an array of shape {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = pixels.reshape(height, width * 3)
    data = np.empty((height, width * 3 + 1), dtype=np.uint8)
    data[:, 0] = UP
    data[0, 1:] = rows[0]  # the row above the first is zeros
    np.subtract(rows[1:], rows[:-1], out=data[1:, 1:])  # modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, RGB, no interlace
    return (SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(data, level)) + _chunk(b"IEND", b""))


def read_png(path: Path) -> np.ndarray:
    """A saved PNG as H x W x 3 uint8."""
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))
