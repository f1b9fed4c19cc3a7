"""The options of `cnnbench lr-find`: the test's own, and the overrides it shares with train."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

from cnnbench.errors import UserError
from cnnbench.settings.names import check_override_names, plain_group_choices
from cnnbench.settings.options import normalized

USAGE = """\
usage: cnnbench lr-find [key=value ...]

The learning-rate range test: training steps with the learning rate rising
exponentially from start_lr to end_lr, on the run that `cnnbench train` with
the same overrides would start (its model, optimizer, loss, data, device and
AMP; the scheduler is not stepped). Prints the suggested rate and writes
lr_find.png (loss against lr) and lr_find.csv (lr, loss, smoothed_loss).
Options:
  model=..., optimizer=..., dataset.KEY=VALUE, ...  as for cnnbench train
  start_lr=1e-7      the first step's learning rate
  end_lr=10          the last step's learning rate
  num_steps=100      training steps (fewer when the loss runs away first)
  out=DIR            where the files go (default:
                     outputs/lr_find/<date>/<time>_<model>_<dataset>_<id>);
                     files there are never replaced
The config groups and keys are train's: `cnnbench --help` lists the groups,
`cnnbench train --help` every key.
Example:
  cnnbench lr-find model=lenet dataset=mnist optimizer=sgd
"""
SHORT_USAGE = "`cnnbench lr-find --help` lists its options."
OWN = ("out", "start_lr", "end_lr", "num_steps")
MIN_STEPS, MAX_STEPS = 10, 100_000


@dataclass
class LrFindOptions:
    overrides: list[str] = field(default_factory=list)
    out: str | None = None
    start_lr: float = 1e-7
    end_lr: float = 10.0
    num_steps: int = 100


def _rate(key: str, value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        raise UserError(f"{key}={value} is not valid: it must be a learning rate above 0, "
                        f"e.g. {key}={'1e-7' if key == 'start_lr' else '10'}.")
    return rate


def _steps(value: str) -> int:
    try:
        steps = int(value)
    except ValueError:
        steps = 0
    if not MIN_STEPS <= steps <= MAX_STEPS:
        raise UserError(f"num_steps={value} is not valid: it must be a whole number of training "
                        f"steps from {MIN_STEPS} to {MAX_STEPS:,}, e.g. num_steps=100.")
    return steps


def parse_args(args: Sequence[str]) -> LrFindOptions:
    """The options, every one checked; the train overrides are checked by name here and by
    value when the config is composed."""
    opts = LrFindOptions()
    args = plain_group_choices(normalized(args, valued=OWN))
    check_override_names(args, "lr-find", own=OWN)
    for arg in args:
        key, sep, value = arg.partition("=")
        if arg.startswith("-") or not sep or not key:
            raise UserError(f"'{arg}' is not an option of `cnnbench lr-find`: it takes the "
                            f"key=value overrides of cnnbench train (no flags such as -m) and "
                            f"{', '.join(k + '=' for k in OWN)}. {SHORT_USAGE}")
        if key == "out":
            opts.out = value or None
        elif key in ("start_lr", "end_lr"):
            setattr(opts, key, _rate(key, value))
        elif key == "num_steps":
            opts.num_steps = _steps(value)
        else:
            opts.overrides.append(arg)
    if opts.end_lr <= opts.start_lr:
        raise UserError(f"end_lr={opts.end_lr:g} is not above start_lr={opts.start_lr:g}: the "
                        f"test raises the rate from start_lr to end_lr, e.g. start_lr=1e-7 "
                        f"end_lr=10.")
    return opts
