"""Checks shared by the evaluation and comparison tests."""
from __future__ import annotations

from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_width: int = 200, min_height: int = 150) -> tuple[int, int]:
    """`path` is a real PNG image of at least the given size, that an image library can decode."""
    from PIL import Image

    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    with Image.open(path) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        width, height = image.size
    assert width >= min_width and height >= min_height, f"{path} is only {width}x{height}"
    return width, height
