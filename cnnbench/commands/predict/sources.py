"""What computes the logits: a checkpoint (PyTorch) or an exported ONNX file (onnxruntime).

Both take float32 N x C x H x W batches (normalized) and give float32 N x classes logits, and
both carry the `Preprocessing` their pictures need. A checkpoint is loaded as `cnnbench eval`
loads one (`cnnbench.run.trained`); an ONNX file goes to onnxruntime as a copy alone in a new
folder, so it cannot pull in files from beside it (external tensor data), and its `cnnbench`
metadata is checked as a checkpoint's is. TorchScript files hold code: never loaded here.
"""
from __future__ import annotations

import json
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from cnnbench.data.preprocessing import Preprocessing
from cnnbench.errors import UserError
from cnnbench.rundir import Writer, write_bytes

METADATA_KEY = "cnnbench"  # the ONNX metadata_props entry `cnnbench export` writes
ONNX_MISSING = ("Reading an ONNX file needs onnxruntime, which is not installed here: "
                "pip install onnxruntime (or pip install -e \".[export]\" in a cnnbench "
                "checkout), or predict with the checkpoint the file was exported from.")


class TorchSource:
    def __init__(self, path: Path, device: str) -> None:
        from cnnbench.run.trained import load_trained

        if _is_torchscript(path):
            raise UserError(f"{path} is a TorchScript file (cnnbench export format=torchscript). "
                            f"TorchScript holds code, so predict does not load it: give the "
                            f"checkpoint it was exported from, or its ONNX export.")
        trained = load_trained(path, device)
        self.trained, self.prep, self.name = trained, trained.prep, trained.name
        self.described = f"{trained.checkpoint} (epoch {trained.epoch})"
        device = trained.device
        self.device_name = (f"cuda ({_cuda_name(device)})" if device.type == "cuda"
                            else device.type)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.trained.device)
            return self.trained.model(x).float().cpu().numpy()


def _cuda_name(device: Any) -> str:
    import torch

    return torch.cuda.get_device_name(device)


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in n or n.endswith("/extra/cnnbench.json")
                       for n in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


class OnnxSource:
    def __init__(self, path: Path, device: str) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise UserError(ONNX_MISSING) from None
        if not path.is_file():
            raise UserError(f"No ONNX file at {path}: the file does not exist.")
        self.session = _session(path, ort, _providers(device, ort))
        self.prep = self._metadata(path)
        self.name = self.meta.get("model") if isinstance(self.meta.get("model"), str) else "onnx"
        self.described = f"{path} (ONNX)"
        self.device_name = self.session.get_providers()[0].replace("ExecutionProvider", "").lower()
        self.input = self.session.get_inputs()[0].name

    def _metadata(self, path: Path) -> Preprocessing:
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise UserError(f"{path} has no cnnbench metadata (classes, image size, "
                            f"normalization), so predict cannot prepare pictures for it: use a "
                            f"file that `cnnbench export format=onnx` wrote.")
        try:
            self.meta = json.loads(text)
        except ValueError:
            raise UserError(f"{path} has cnnbench metadata that is not JSON: the file was "
                            f"edited. Export the checkpoint again.") from None
        if not isinstance(self.meta, dict):
            raise UserError(f"{path} has cnnbench metadata that is not a mapping: the file "
                            f"was edited. Export the checkpoint again.")
        return Preprocessing.checked(self.meta, path)

    def logits(self, batch: np.ndarray) -> np.ndarray:
        try:
            out = self.session.run(None, {self.input: batch})[0]
        except Exception as err:  # noqa: BLE001 (an input shape the graph does not take)
            raise UserError(f"The ONNX model did not accept a batch of shape {list(batch.shape)} "
                            f"({type(err).__name__}: {str(err).splitlines()[0][:200]}).") from None
        if out.shape != (batch.shape[0], len(self.prep.classes)):
            raise UserError(f"The ONNX model gave outputs of shape {list(out.shape)}, not one "
                            f"score per class ({len(self.prep.classes)} classes in its metadata).")
        return np.asarray(out, dtype=np.float32)


def _session(path: Path, ort: Any, providers: list[str]) -> Any:
    """An onnxruntime session of a private copy of the file, alone in a new folder: tensors
    stored as external data (read from paths the file names, relative to its folder) are not
    found there, so the file cannot pull in files from beside it."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: its warnings are not the user's
    with tempfile.TemporaryDirectory(prefix="cnnbench-onnx-") as folder:
        copy = write_bytes(Path(folder) / "model.onnx", path.read_bytes(),
                           Writer("predict", (Path(folder),)))
        try:
            return ort.InferenceSession(str(copy), options, providers=providers)
        except Exception as err:  # noqa: BLE001 (not ONNX, damaged, unknown operators...)
            why = str(err).splitlines()[0].replace(str(copy), "the file")[:200]
            raise UserError(f"{path} is not an ONNX model onnxruntime can load "
                            f"({type(err).__name__}: {why}).") from None


def _providers(device: str, ort: Any) -> list[str]:
    available = ort.get_available_providers()
    cuda = "CUDAExecutionProvider" in available
    if device == "cuda" and not cuda:
        raise UserError("trainer.device=cuda was asked for, but this onnxruntime has no CUDA "
                        "support (pip install onnxruntime-gpu), or use trainer.device=cpu.")
    if device not in ("cpu", "cuda", "auto"):
        raise UserError(f"trainer.device={device} is not a device for ONNX files: cpu, cuda "
                        f"or auto.")
    return (["CUDAExecutionProvider"] if cuda and device != "cpu" else []) + [
        "CPUExecutionProvider"]


def open_source(path: Path, device: str) -> TorchSource | OnnxSource:
    """The model at `path`: an `.onnx` file, else a checkpoint or run directory."""
    if path.suffix.lower() == ".onnx":
        return OnnxSource(path, device)
    return TorchSource(path, device)
