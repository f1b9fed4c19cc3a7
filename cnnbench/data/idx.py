"""Reader for the IDX format of the MNIST family (gzip-compressed or not).

The header is checked before the data is read: it names the type and every dimension, so the
file's size is known from it. A header that asks for more than MAX_BYTES (the largest file of
the family, Fashion-MNIST's training images, is 47 MB) is refused before anything is allocated,
and only the bytes the header announces are read: a gzip file that inflates to gigabytes of
zeros after them is refused, not decompressed to the end.
"""
from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
MAX_DIMS = 4
MAX_BYTES = 1 << 30


def _read(f, n: int) -> bytes:
    """`n` bytes of `f`, fewer only at its end."""
    chunks, left = [], n
    while left:
        chunk = f.read(min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_idx(path: Path) -> torch.Tensor:
    """Return the array stored in an IDX file as a tensor (uint8 for images and labels); a
    ValueError (or OSError, EOFError) says what is wrong with the file."""
    try:
        return _read_idx(path)
    except zlib.error as err:  # a gzip header, then data that does not inflate
        raise ValueError(f"{path} is a damaged gzip file ({err})") from None


def _read_idx(path: Path) -> torch.Tensor:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        magic = _read(f, 4)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _DTYPES:
            raise ValueError(f"{path} is not an IDX file (bad magic number)")
        ndim = magic[3]
        if not 1 <= ndim <= MAX_DIMS:
            raise ValueError(f"{path} is not an IDX file of the MNIST family: its header "
                             f"gives {ndim} dimensions (1 to {MAX_DIMS} expected)")
        dims = _read(f, 4 * ndim)
        if len(dims) < 4 * ndim:
            raise ValueError(f"{path} is truncated: it ends inside its header")
        shape = tuple(int.from_bytes(dims[4 * i: 4 * i + 4], "big") for i in range(ndim))
        dtype = np.dtype(_DTYPES[magic[2]])
        size = math.prod(shape) * dtype.itemsize  # Python's integers: no overflow
        if size > MAX_BYTES:
            raise ValueError(f"{path} has a header that announces {shape} values "
                             f"({size:,} bytes), more than any file of the MNIST family holds "
                             f"({MAX_BYTES:,} bytes at most)")
        raw = _read(f, size)
        if len(raw) < size:
            raise ValueError(f"{path} is truncated: header says {shape}, file holds "
                             f"{len(raw) // dtype.itemsize} values")
        if f.read(1):
            raise ValueError(f"{path} holds more data than its header says: {shape} values")
    data = np.frombuffer(raw, dtype=dtype)
    return torch.from_numpy(data.reshape(shape).astype(np.uint8, copy=True))
