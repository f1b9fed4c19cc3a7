"""Datasets as uint8 tensors in memory, and the on-device batch loader."""
from .image_data import ImageData, Split
from .loader import DeviceLoader
from .sources import LOADERS, load_dataset

__all__ = ["ImageData", "Split", "DeviceLoader", "LOADERS", "load_dataset"]
