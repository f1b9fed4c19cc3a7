"""cnnbench: config-driven training and benchmarking of image classifiers."""
import time as _time

IMPORTED_AT = _time.perf_counter()
__version__ = "0.1.0"
