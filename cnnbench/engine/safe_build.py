"""Build the optimizer, scheduler and augmentation from a `_target_` config without running code.

A config is data, not code: `build_allowed` only calls a target that cnnbench itself ships in
conf/optimizer, conf/scheduler or conf/augmentation (ALLOWED), with the options
`settings.plain.plain_options` lets through. Never an import or a call of what the text names.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import torch
from omegaconf import DictConfig

from cnnbench.engine.augment import BatchAugment
from cnnbench.errors import UserError
from cnnbench.settings.plain import as_plain, plain_options, refuse

ALLOWED: dict[str, dict[str, Callable[..., Any]]] = {
    "optimizer": {
        "torch.optim.SGD": torch.optim.SGD,
        "torch.optim.Adam": torch.optim.Adam,
        "torch.optim.AdamW": torch.optim.AdamW,
        "torch.optim.Adadelta": torch.optim.Adadelta,
    },
    "scheduler": {
        "torch.optim.lr_scheduler.CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR,
        "torch.optim.lr_scheduler.OneCycleLR": torch.optim.lr_scheduler.OneCycleLR,
        "torch.optim.lr_scheduler.ReduceLROnPlateau": torch.optim.lr_scheduler.ReduceLROnPlateau,
    },
    "augmentation": {
        "cnnbench.engine.augment.BatchAugment": BatchAugment,
        "cnnbench.augment.BatchAugment": BatchAugment,  # its name in configs stored before 0.2
    },
}


def build_allowed(cfg: DictConfig | Mapping[str, Any], group: str) -> Any:
    """The object (or, with `_partial_: true`, the factory) `cfg` describes, if its `_target_`
    is one cnnbench ships for `group` (optimizer, scheduler, augmentation)."""
    cfg = as_plain(cfg)
    if not isinstance(cfg, Mapping):
        raise refuse(group, f"{cfg!r} is not a mapping of options")
    allowed = ALLOWED[group]
    target = cfg.get("_target_")
    if target not in allowed:
        raise UserError(
            f"{group}._target_={target!r} is refused: {'an' if group[0] in 'aeiou' else 'a'} "
            f"{group} config can only name one of the "
            f"classes cnnbench ships ({', '.join(allowed)}), so that a config from a checkpoint "
            f"or a run directory cannot make cnnbench import or call anything else. Choose one "
            f"with {group}=<name> (conf/{group}/ lists them).")
    partial = cfg.get("_partial_", False)
    if not isinstance(partial, bool):
        raise refuse(f"{group}._partial_", f"{partial!r} is not true or false")
    options = {k: v for k, v in cfg.items() if k not in ("_target_", "_partial_")}
    kwargs = plain_options(allowed[target], options, group)
    if partial:
        return functools.partial(allowed[target], **kwargs)
    return allowed[target](**kwargs)
