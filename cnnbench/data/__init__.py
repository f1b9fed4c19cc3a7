"""Datasets as uint8 tensors in memory, and the loaders that batch them on the device."""
from cnnbench.data.image_data import ImageData, Split
from cnnbench.data.loader import (
    DeviceLoader,
    StreamingLoader,
    blank_batch,
    data_fits_on_device,
    make_loader,
    split_bytes,
)
from cnnbench.data.sources import LOADERS, load_dataset

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
