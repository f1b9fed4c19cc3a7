"""The CIFAR files are Python pickles, and a pickle can run code: they are read by an unpickler
that resolves only the few names the real files hold."""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Callable

import numpy as np

from cnnbench.data.source_files import bad_file
from cnnbench.errors import UserError
from cnnbench.rundir.stored_text import StoredTextError, read_stored_bytes


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """What pickle protocol 2 calls to rebuild `bytes` (as `_codecs.encode`): latin-1 only."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"_codecs.encode({encoding!r}) is not a CIFAR encoding")
    return text.encode("latin1")


def _numpy_reconstruct() -> Callable:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


# Everything the CIFAR pickles name: numpy's array reconstruction (the `data` arrays), and
# _codecs.encode, which protocol 2 from Python 3 uses for bytes. Lists, dicts, numbers and
# strings need no name. Anything else (os.system, builtins.eval, ...) is refused.
_CIFAR_GLOBALS: dict[tuple[str, str], Callable[[], object]] = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    ("_codecs", "encode"): lambda: _latin1_encode,
}


class UntrustedPickle(pickle.UnpicklingError):
    """A pickle asked for something a CIFAR file never holds."""


class CifarUnpickler(pickle.Unpickler):
    """Unpickles the CIFAR files and nothing else: only the names in _CIFAR_GLOBALS resolve."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _CIFAR_GLOBALS:
            raise UntrustedPickle(f"{module}.{name}")
        return _CIFAR_GLOBALS[(module, name)]()


# The largest CIFAR file, CIFAR-100's train, is 158 MB.
MAX_BYTES = 512 * 1024 * 1024


def read_cifar_pickle(path: Path) -> dict:
    """One CIFAR file (a pickled dict), loaded without running anything it names. The file is
    read whole first (at most MAX_BYTES), so that a length inside it that runs past its end is
    a truncated pickle rather than a request for that much memory."""
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise bad_file(path, f"is {size:,} bytes, more than any CIFAR file ({MAX_BYTES:,} "
                             f"bytes at most)")
    try:
        data = read_stored_bytes(path, MAX_BYTES)  # a regular file only: a FIFO does not hang
    except StoredTextError as err:
        raise bad_file(path, str(err).removeprefix("it ")) from None
    try:
        entry = CifarUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UntrustedPickle as err:
        raise UserError(
            f"{path} is not a CIFAR file that can be trusted: it asks to load {err} while "
            f"unpickling, and the real CIFAR files hold only numpy arrays, lists, numbers and "
            f"strings (a pickle can run code, so nothing else is loaded). Delete the folder and "
            f"download CIFAR again (dataset.download=true, or from "
            f"https://www.cs.toronto.edu/~kriz/cifar.html).") from None
    except (MemoryError, RecursionError, AttributeError, IndexError) as err:
        raise bad_file(path, f"is not a pickle a CIFAR file could be ({type(err).__name__} "
                             f"while unpickling)") from None
    if not isinstance(entry, dict):
        raise bad_file(path, f"holds a {type(entry).__name__}, not the dict of a CIFAR file")
    return entry
