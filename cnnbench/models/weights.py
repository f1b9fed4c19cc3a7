"""Pretrained weights from disk, read as data: where they are, what they hold, where they came from.

`model.pretrained` names the weights of a timm model: a file (`.safetensors`, read by
safetensors; `.pth`/`.pt`/`.bin`/`.ckpt`, read by `torch.load(weights_only=True)`, which refuses
anything but tensors and plain containers), or `true` for the weights timm's own pretrained tag
left in the local Hugging Face cache (or torch's hub cache). Nothing is ever downloaded: a
missing file is a `UserError` that names every place looked at and how to fill it.

`WeightsFile.state_dict()` gives the tensors by name (a training checkpoint's `state_dict`,
`model` or `state_dict_ema` entry is unwrapped, DDP's `module.` and torch.compile's `_orig_mod.`
prefixes dropped); `WeightsFile.origin()` is what a run records (path, sha256, source).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

import torch

from cnnbench.errors import UserError

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")
SAFETENSORS_SUFFIX = ".safetensors"
# entries of a training checkpoint that hold the model's tensors, in order of preference
NESTED_KEYS = ("state_dict", "model", "state_dict_ema", "model_ema")
PREFIXES = ("module.", "_orig_mod.")
HF_FILES = ("model.safetensors", "pytorch_model.bin")
README_HINT = "README.md, section 'Pretrained weights', says how to fetch them once"


@dataclass(frozen=True)
class WeightsFile:
    path: Path
    source: str  # "file", "huggingface cache" or "torch hub cache"

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def origin(self) -> dict[str, str]:
        return {"path": str(self.path), "sha256": self.sha256(), "source": self.source}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The file's tensors by parameter name (see the module docstring)."""
        entry = _read(self.path)
        for key in NESTED_KEYS:
            if isinstance(entry, Mapping) and isinstance(entry.get(key), Mapping):
                entry = entry[key]
                break
        if not isinstance(entry, Mapping) or not entry:
            raise _unusable(self.path, "it holds no mapping of parameter names to tensors")
        tensors = {}
        for name, value in entry.items():
            if not isinstance(name, str) or not isinstance(value, torch.Tensor):
                raise _unusable(self.path, f"its entry {str(name)[:60]!r} is a "
                                           f"{type(value).__name__}, not a tensor")
            for prefix in PREFIXES:
                name = name[len(prefix):] if name.startswith(prefix) else name
            tensors[name] = value
        return tensors


def _unusable(path: Path, why: str) -> UserError:
    return UserError(f"model.pretrained={str(path)!r} cannot be used: {why}. Give a file of model "
                     f"weights: a .safetensors file, or a .pth/.pt/.bin file saved with "
                     f"torch.save(model.state_dict(), path) (a training checkpoint holding a "
                     f"'state_dict' or 'model' entry works too).")


def _read(path: Path) -> Any:
    try:
        if path.suffix == SAFETENSORS_SUFFIX:
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        raise _unusable(path, f"it could not be read ({err.strerror or err})") from None
    except Exception as err:  # noqa: BLE001 (a damaged file, or a pickle asking to run code)
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        if path.suffix != SAFETENSORS_SUFFIX and "weights_only" in str(err):
            raise _unusable(path, "it holds more than tensors and plain containers, and "
                                  "loading it would run code that the file names (cnnbench "
                                  "loads weights with torch.load(weights_only=True), never "
                                  "as code)") from None
        raise _unusable(path, f"it is damaged or not a weights file ({first})") from None


def weights_file(pretrained: str) -> WeightsFile:
    """The weights file `model.pretrained=<path>` names; a UserError when it is not one."""
    path = Path(os.path.expanduser(pretrained))
    if not path.is_file():
        where = "is a folder" if path.is_dir() else "does not exist"
        raise UserError(f"model.pretrained={pretrained!r}: {path.resolve()} {where}. Give the path "
                        f"of a weights file (.safetensors, .pth, .pt or .bin), or "
                        f"model.pretrained=true for weights already in the Hugging Face cache "
                        f"(nothing is downloaded; {README_HINT}).")
    if path.suffix not in (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES):
        raise _unusable(path, f"its suffix {path.suffix or '(none)'!r} is none of "
                              f"{', '.join((SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES))}")
    return WeightsFile(path.resolve(), "file")


def cached_weights(model_name: str, cfg: Any) -> WeightsFile:
    """The weights of timm's pretrained config `cfg` (of `model_name`) in the local caches:
    Hugging Face's (its `hf_hub_id`), then torch hub's (the file its `url` names)."""
    looked = []
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        from huggingface_hub import try_to_load_from_cache
        from huggingface_hub.constants import HF_HUB_CACHE

        names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else list(HF_FILES)
        for name in names:
            found = try_to_load_from_cache(hub_id, name)
            if isinstance(found, str) and Path(found).is_file():
                return WeightsFile(Path(found), "huggingface cache")
        folder = Path(HF_HUB_CACHE) / f"models--{hub_id.replace('/', '--')}"
        looked.append(f"{' or '.join(names)} of {hub_id} in the Hugging Face cache ({folder})")
    url = getattr(cfg, "url", None) or ""
    suffix = Path(urlparse(url).path).suffix
    if url and suffix in (SAFETENSORS_SUFFIX, *PICKLE_SUFFIXES):
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        if path.is_file():
            return WeightsFile(path, "torch hub cache")
        looked.append(f"{path} (torch's hub cache)")
    what = " and ".join(looked) or "nowhere: timm names no weights for it"
    raise UserError(
        f"model.pretrained=true found no weights for timm's {model_name}: cnnbench looked for "
        f"{what}, and never downloads. On a machine with internet, fill the cache once with "
        f"`python -c \"import timm; timm.create_model('{model_name}', pretrained=True)\"` and "
        f"copy the cache folder here (HF_HOME points to it), or save the weights as a file and "
        f"give its path: model.pretrained=/path/to/weights.safetensors ({README_HINT}).")
