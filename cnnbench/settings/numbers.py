"""The numbers of every config group built into an object (optimizer.*, scheduler.*,
augmentation.*, model.*): finite, and inside the range each known key allows.

This is the one owner of "when a config number is acceptable". `check_numbers` runs before
anything is built (train and lr-find check the composed config first) and again wherever an
object is made from options (`settings.plain.plain_options`), so a config from the command line,
a checkpoint or a run directory goes through it in every command.

torch checks some values (a negative lr, momentum or weight decay) but lets NaN through every
`x < 0` test; an infinite rate, a NaN momentum, a NaN mixup alpha, an infinite rotation or a
zero-wide layer would only show as a diverged run, a ZeroDivisionError or a model that cannot
learn, many steps later, blamed on something else.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, NamedTuple

from cnnbench.errors import UserError
from cnnbench.settings.learning_rate import backbone_lr_scale, check_lr

INF = math.inf


class Bound(NamedTuple):
    """The values a key allows: between `low` and `high` (each end in or out), whole numbers
    only when `whole`; `example` is a value that works."""

    low: float
    high: float
    low_ok: bool
    high_ok: bool
    example: str
    whole: bool = False


_OPTIMIZER = {
    "lr": Bound(0, INF, False, False, "0.01"),
    "momentum": Bound(0, 1, True, True, "0.9"),
    "dampening": Bound(0, 1, True, True, "0"),
    "weight_decay": Bound(0, INF, True, False, "5e-4"),
    "betas": Bound(0, 1, True, False, "[0.9,0.999]"),
    "rho": Bound(0, 1, True, True, "0.9"),
    "eps": Bound(0, INF, False, False, "1e-8"),
}
_SCHEDULER = {
    "max_lr": Bound(0, INF, False, False, "0.1"),
    "pct_start": Bound(0, 1, True, True, "0.25"),
    "div_factor": Bound(0, INF, False, False, "25"),
    "final_div_factor": Bound(0, INF, False, False, "10000"),
    "factor": Bound(0, 1, False, False, "0.5"),
    "patience": Bound(0, INF, True, False, "5"),
    "min_lr": Bound(0, INF, True, False, "1e-6"),
    "eta_min": Bound(0, INF, True, False, "0"),
    "threshold": Bound(0, INF, True, False, "1e-4"),
    "cooldown": Bound(0, INF, True, False, "0"),
}
_AUGMENTATION = {
    "crop_padding": Bound(0, INF, True, False, "4", whole=True),
    "rotation": Bound(0, 180, True, True, "10"),
    "translate": Bound(0, 1, True, False, "0.1"),
    "scale": Bound(0, 1, True, False, "0.1"),
    "shear": Bound(0, INF, True, False, "0.1"),
    "erasing": Bound(0, 1, True, True, "0.5"),
    "auto_ops": Bound(1, 10, True, True, "2", whole=True),
    "auto_magnitude": Bound(0, 30, True, True, "9", whole=True),
    "mixup": Bound(0, INF, True, False, "0.2"),
    "cutmix": Bound(0, INF, True, False, "1.0"),
    "mix_prob": Bound(0, 1, True, True, "1.0"),
    "mix_switch": Bound(0, 1, True, True, "0.5"),
}
_MODEL = {
    "dropout": Bound(0, 1, True, False, "0.5"),
    "drop_rate": Bound(0, 1, True, False, "0.1"),
    "drop_path_rate": Bound(0, 1, True, False, "0.1"),
    "hidden": Bound(1, INF, True, False, "128", whole=True),
    "widths": Bound(1, INF, True, False, "[64,128,256]", whole=True),
    "channels": Bound(1, INF, True, False, "[8,16]", whole=True),
    "width": Bound(1, INF, True, False, "64", whole=True),
    "convs": Bound(1, INF, True, False, "2", whole=True),
    "first_padding": Bound(0, INF, True, False, "0", whole=True),
}
# group -> key -> its range; a key not named here (or a group not named) must only be finite
RANGES: dict[str, dict[str, Bound]] = {
    "optimizer": _OPTIMIZER, "scheduler": _SCHEDULER, "augmentation": _AUGMENTATION,
    "model": _MODEL,
}
GROUPS = tuple(RANGES)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _inside(value: float, bound: Bound) -> bool:
    above = value > bound.low or (bound.low_ok and value == bound.low)
    below = value < bound.high or (bound.high_ok and value == bound.high)
    return above and below and (not bound.whole or float(value).is_integer())


def _range_text(bound: Bound) -> str:
    kind = "whole number" if bound.whole else "number"
    low, high = f"{bound.low:g}", f"{bound.high:g}"
    if bound.high == INF:
        return (f"a finite {kind}, {low} or more" if bound.low_ok
                else f"a finite {kind} above {low}")
    if bound.low_ok and bound.high_ok:
        return f"a {kind} from {low} to {high}"
    return (f"a {kind} {'at least' if bound.low_ok else 'above'} {low} and "
            f"{'at most' if bound.high_ok else 'below'} {high}")


def _example(bound: Bound, value: Any) -> str:
    listed = isinstance(value, (list, tuple)) and not bound.example.startswith("[")
    return f"[{bound.example}]" if listed else bound.example


def check_numbers(group: str, options: Mapping[str, Any]) -> None:
    """A UserError (one paragraph) for the first number of `options` (the plain config of
    `group`) that is not finite or is outside its key's range. Keys starting with _ and values
    that are not numbers (text, booleans, null) are left to the other checks."""
    ranges = RANGES.get(group, {})
    for key, value in options.items():
        if not isinstance(key, str) or key.startswith("_"):
            continue
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in (v for v in values if _number(v)):
            bound = ranges.get(key)
            if math.isfinite(item) and (bound is None or _inside(item, bound)):
                continue
            must = _range_text(bound) if bound else "a finite number"
            example = f", e.g. {group}.{key}={_example(bound, value)}" if bound else ""
            raise UserError(f"{group}.{key}={value!r} is not valid: it must be {must}{example} "
                            f"(a value outside that would only show later, as a diverged or "
                            f"failed run).")


def check_config_numbers(cfg: Any) -> None:
    """optimizer.lr (a number or `auto`), optimizer.backbone_lr_scale and every other number of
    the groups built into objects (optimizer, scheduler, augmentation, model) of a composed
    config, checked before anything is built, and before torch is imported."""
    from omegaconf import DictConfig, OmegaConf

    check_lr(cfg.optimizer.get("lr"))
    backbone_lr_scale(cfg.optimizer)
    for group in GROUPS:
        if isinstance(cfg.get(group), DictConfig):
            options = OmegaConf.to_container(cfg[group], resolve=True)
            check_numbers(group, {k: v for k, v in options.items() if k != "lr"})
