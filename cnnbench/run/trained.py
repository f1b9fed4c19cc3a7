"""A trained model from a checkpoint, ready to run on pictures: the model (eval mode, fp32)
and how its input is made (`Preprocessing`). `cnnbench predict` and `cnnbench export` use it.
A model whose weights are NaN or infinite is refused (`require_finite_model`, which
`cnnbench eval` uses too).

Loaded as `cnnbench eval` loads a checkpoint: `torch.load(weights_only=True)`, the stored config
read as data (`stored_config`: no resolvers), the model built through the allow-list of
cnnbench's own classes. The classes and normalization come from the checkpoint's `data` entry
(checked plain values); a checkpoint written before that entry existed gets them from its
dataset, loaded once as `eval` does (never downloaded).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnbench.data.preprocessing import Preprocessing
from cnnbench.errors import UserError


@dataclass
class Trained:
    checkpoint: Path        # the checkpoint file itself (a run directory's last.pt)
    payload: dict[str, Any]
    model: Any              # nn.Module, in eval mode, on `device`
    prep: Preprocessing
    name: str               # the model's config name (lenet, ...), for titles and file names
    device: Any             # torch.device

    @property
    def dataset(self) -> str:
        return self.prep.dataset or "dataset"

    @property
    def epoch(self) -> Any:
        return self.payload.get("epoch")


def checkpoint_file(path: Path) -> Path:
    """The checkpoint a path names: the file itself, or a run directory's checkpoints/last.pt."""
    from cnnbench.rundir import last_checkpoint

    return last_checkpoint(path) if path.is_dir() else path


def load_trained(path: Path | str, device: str = "cpu") -> Trained:
    from cnnbench.run.checkpoint import load_checkpoint

    file = checkpoint_file(Path(path))
    payload = load_checkpoint(file)  # a path without a checkpoint is refused before torch
    from cnnbench.engine.runtime import select_device
    from cnnbench.run.stored_config import stored_config

    if not isinstance(payload.get("config"), str) or not isinstance(payload.get("model"), dict):
        raise UserError(f"{file} has no stored config or model weights to rebuild from.")
    cfg = stored_config(payload["config"], file)
    options = payload.get("options") if isinstance(payload.get("options"), dict) else {}
    name = str(options.get("model") or cfg.model.get("_target_", "model").rsplit(".", 1)[-1])
    prep = _preprocessing(payload, cfg, file)
    target = select_device(device)
    model = _model(cfg, prep, payload, file, name).to(target).eval()
    require_finite_model(model, file)
    return Trained(file, payload, model, prep, name, target)


def require_finite_model(model: Any, file: Path) -> None:
    """Refuse, in one paragraph, a checkpoint's model whose weights hold a NaN or an infinity:
    every number it computed would be one too."""
    from cnnbench.engine.finite import listed, nonfinite_names

    names = nonfinite_names(model)
    if names:
        raise UserError(
            f"{file} holds weights that are NaN or infinite ({listed(names)}): the training "
            f"that saved it diverged, so every output of the model would be NaN too, and it is "
            f"not used. Use a checkpoint saved before the divergence (a diverged run names its "
            f"last good checkpoint in its metrics.json reason), or train again with a lower "
            f"optimizer.lr.")


def _preprocessing(payload: dict[str, Any], cfg: Any, file: Path) -> Preprocessing:
    if payload.get("data") is not None:
        return Preprocessing.checked(payload["data"], file)
    from omegaconf import OmegaConf

    from cnnbench.data import load_dataset

    dataset = OmegaConf.to_container(cfg.dataset, resolve=True)
    try:
        return Preprocessing.from_data(load_dataset(**dataset, strict=False))
    except UserError as err:
        raise UserError(f"{file} was written before checkpoints kept their classes and "
                        f"normalization, so they come from its dataset ({dataset.get('name')}), "
                        f"which cannot be loaded here: {err}") from None


def weights_misfit(model_cfg: Any, weights: dict[str, Any], **shape: Any) -> str | None:
    """What keeps `weights` (a checkpoint's state dict) from fitting the model `model_cfg`
    describes for data of `shape` (in_channels, image_size, num_classes), found by building it
    on the meta device: no memory is taken before the weights are known to fit, so a stored
    config that asks for a model of many GB is refused at once. None when they fit, or when
    the model cannot be built on the meta device (loading the weights then tells)."""
    import torch

    from cnnbench.engine.finite import listed
    from cnnbench.models import build_model

    try:
        with torch.device("meta"):
            wanted = build_model(model_cfg, pretrained=False, **shape).state_dict()
    except Exception:  # noqa: BLE001 (the real build, which comes next, says what is wrong)
        return None
    missing = [k for k in wanted if k not in weights]
    extra = [k for k in weights if k not in wanted]
    wrong = [f"{k} is {_shape(weights[k])} where the model has {_shape(wanted[k])}"
             for k in wanted if k in weights and weights[k].shape != wanted[k].shape]
    found = ([f"it lacks {listed(missing)}"] if missing else []) + \
        ([f"it has {listed(extra)}, which the model has not"] if extra else []) + wrong[:3]
    return "; ".join(found) or None


def _shape(tensor: Any) -> str:
    return "x".join(map(str, tensor.shape)) or "a single number"


def _model(cfg: Any, prep: Preprocessing, payload: dict[str, Any], file: Path, name: str) -> Any:
    """The model of the stored config, shaped by `prep`, with the checkpoint's weights (the
    weight average where training kept one, as `eval` tests it), fp32."""
    from cnnbench.engine.ema import averaged_weights
    from cnnbench.models import build_model

    weights = averaged_weights(payload)
    shape = dict(in_channels=prep.channels, image_size=(prep.height, prep.width),
                 num_classes=len(prep.classes))

    def misfit(why: str) -> UserError:
        return UserError(
            f"The weights in {file} do not fit a {name} for {prep.channels}x{prep.height}x"
            f"{prep.width} images and {len(prep.classes)} classes: the checkpoint is damaged or "
            f"was edited. ({why})")

    why = weights_misfit(cfg.model, weights, **shape)
    if why:
        raise misfit(why)
    model = build_model(cfg.model, name=name, pretrained=False, **shape)
    try:
        model.load_state_dict(weights)
    except (RuntimeError, KeyError, TypeError, AttributeError, ValueError) as err:
        raise misfit(f"{type(err).__name__}: {str(err).splitlines()[0][:200]}") from None
    return model.float()
