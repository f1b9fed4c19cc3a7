"""The export formats `format=` takes and the file suffix of each: torch-free, so that a command
line is checked before torch is imported."""
from __future__ import annotations

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
