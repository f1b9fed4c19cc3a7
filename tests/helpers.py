"""Checks shared by the tests: PNG files, bench scripts loaded as modules."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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


def load_script(path: Path, name: str) -> ModuleType:
    """A script of bench/ (not a package) imported as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
