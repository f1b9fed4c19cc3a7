"""cnnbench: config-driven training and benchmarking of image classifiers.

From Python: `cnnbench.train(...)`, `cnnbench.sweep(...)`, `cnnbench.compare(path)`,
`cnnbench.Run.load(path)`; importing cnnbench stays cheap (they load on first use)."""
import sys as _sys
import time as _time
import types as _types

IMPORTED_AT = _time.perf_counter()
__version__ = "0.1.0"

_API = ("train", "sweep", "compare", "Run", "Comparison", "Checkpoints", "Picture",
        "Predictions", "CnnbenchError", "RunInterrupted")


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module("cnnbench.api"), name)
    raise AttributeError(f"module 'cnnbench' has no attribute {name!r}")


def __dir__() -> list:
    return sorted([*globals(), *_API])


class _Package(_types.ModuleType):
    """The package, whose `sweep` is the function `cnnbench.sweep(...)`: the sweep tier (the
    package cnnbench/sweep/, imported by its full names) is not set over it once imported."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _API and isinstance(value, _types.ModuleType):
            name = f"_{name}_package"
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
