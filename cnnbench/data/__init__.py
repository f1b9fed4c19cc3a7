"""Datasets as uint8 tensors in memory, and the loaders that batch them on the device."""
from .image_data import ImageData, Split
from .loader import (DeviceLoader, StreamingLoader, blank_batch, data_fits_on_device,
                     make_loader, split_bytes)
from .sources import LOADERS, load_dataset

__all__ = ["ImageData", "Split", "DeviceLoader", "StreamingLoader", "blank_batch",
           "data_fits_on_device", "make_loader", "split_bytes", "LOADERS", "load_dataset"]
