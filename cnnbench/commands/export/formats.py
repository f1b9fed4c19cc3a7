"""The exported files: ONNX (through PyTorch's TorchScript-based exporter, which needs no
onnxscript) and TorchScript (traced), each with cnnbench's metadata inside.

The input is `input`, float32 N x C x H x W, normalized as the metadata says; the output is
`logits`, N x classes (softmax gives the probabilities). The batch size N is free. The metadata
is one JSON text: the `Preprocessing` fields (classes, mean, std, channels, height, width, ...),
`input_shape` [C, H, W], the model's name, and the checkpoint's path, epoch and sha256. ONNX keeps
it in `metadata_props` under the key "cnnbench"; TorchScript as the extra file cnnbench.json.
"""
from __future__ import annotations

import hashlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from cnnbench.errors import UserError

METADATA_KEY = "cnnbench"
EXTRA_FILE = "cnnbench.json"
OPSET = 17
INPUT, OUTPUT = "input", "logits"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def metadata(trained: Any) -> dict[str, Any]:
    from cnnbench import __version__

    return {**trained.prep.to_dict(), "input_shape": trained.prep.input_shape,
            "input": INPUT, "output": OUTPUT, "model": trained.name,
            "checkpoint": str(trained.checkpoint.resolve()), "epoch": trained.epoch,
            "checkpoint_sha256": sha256(trained.checkpoint), "cnnbench": __version__}


def example_batch(trained: Any, n: int = 2) -> torch.Tensor:
    """A seeded batch shaped as the model's input (what tracing runs; never batch 1, which
    could fix the batch size in the graph)."""
    generator = torch.Generator().manual_seed(0)
    return torch.randn(n, *trained.prep.input_shape, generator=generator)


def onnx_bytes(trained: Any) -> bytes:
    """The model as an ONNX file's bytes, with the metadata."""
    try:
        import onnx
    except ImportError:
        raise UserError("format=onnx needs the onnx package, which is not installed here: pip "
                        "install onnx onnxruntime (or pip install -e \".[export]\" in a "
                        "cnnbench checkout). format=torchscript needs nothing more.") from None
    from cnnbench.commands.export.portable import onnx_ready

    example = example_batch(trained)
    model = onnx_ready(trained.model, example)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the exporter's notes on its own deprecation
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata(trained))
    proto.doc_string = f"cnnbench {trained.name} for {trained.dataset}: logits of {INPUT}"
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def torchscript_bytes(trained: Any) -> bytes:
    """The model traced as TorchScript, with the metadata as the extra file cnnbench.json."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # torch.jit's notes on its own deprecation
        warnings.simplefilter("ignore")
        with torch.no_grad():
            traced = torch.jit.trace(trained.model, example_batch(trained))
        torch.jit.save(traced, buffer, _extra_files={EXTRA_FILE: json.dumps(metadata(trained))})
    return buffer.getvalue()


def is_export(path: Path) -> bool:
    """Whether `path` is a file `cnnbench export` wrote (its metadata inside): an earlier export
    that a new one may replace."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith(f"/extra/{EXTRA_FILE}") for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        pass
    try:
        import onnx

        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 (not ONNX, or no onnx package to tell)
        return False
    return any(entry.key == METADATA_KEY for entry in proto.metadata_props)


def exported_outputs(path: Path, fmt: str, batch: torch.Tensor) -> torch.Tensor | None:
    """The exported file's logits for `batch` (None: onnxruntime is not installed)."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu")  # the file just written
        with torch.no_grad():
            return module(batch)
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {INPUT: batch.numpy()})[0])

