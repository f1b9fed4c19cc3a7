"""Datasets as uint8 tensors in memory, and the loaders that batch them on the device.

The names below load on first use (a module __getattr__), so that the modules that need no
torch (sizes, shapes, pixels, preprocessing) import without it: a command line refused before
any data is read ends without importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "ImageData": "image_data",
    "Split": "image_data",
    "DeviceLoader": "loader",
    "StreamingLoader": "loader",
    "blank_batch": "loader",
    "data_fits_on_device": "loader",
    "make_loader": "loader",
    "split_bytes": "loader",
    "LOADERS": "sources",
    "load_dataset": "sources",
}

__all__ = [
    "LOADERS",
    "DeviceLoader",
    "ImageData",
    "Split",
    "StreamingLoader",
    "blank_batch",
    "data_fits_on_device",
    "load_dataset",
    "make_loader",
    "split_bytes",
]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"cnnbench.data.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'cnnbench.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
