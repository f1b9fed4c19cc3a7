"""Short names for the settings that tell groups apart (`optimizer.lr` -> `opt.lr`,
`trainer.batch_size` -> `batch`), used by the terminal table and the pictures' labels. The same
keys always get the same short names, two keys never share one, and a short name that would
clash with another key's (short or full) name falls back to the full key."""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

# the first part of a dotted key: the config group it lies in ("" drops it)
GROUPS = {"optimizer": "opt", "trainer": "", "augmentation": "aug", "scheduler": "sched",
          "dataset": "data", "evaluation": "eval", "experiment": "exp"}
# a key's last part (or a whole key without a dot)
WORDS = {"batch_size": "batch", "label_smoothing": "smooth", "weight_decay": "wd",
         "momentum": "mom", "learning_rate": "lr", "optimizer": "opt", "scheduler": "sched",
         "augmentation": "aug", "experiment": "exp", "channels_last": "ch_last",
         "eval_batch_size": "eval_batch", "warmup_epochs": "warmup", "image_size": "size",
         "num_workers": "workers", "dropout": "drop", "activation": "act"}


def short_key(key: str) -> str:
    """The short name of one key, before clashes are settled."""
    parts = key.split(".")
    if len(parts) == 1:
        return WORDS.get(key, key)
    head = GROUPS.get(parts[0], parts[0])
    tail = [*parts[1:-1], WORDS.get(parts[-1], parts[-1])]
    return ".".join(p for p in (head, *tail) if p)


def abbreviations(keys: Sequence[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Each key's short name: distinct for distinct keys, never another key's name and never
    one of the `reserved` names (the table's other columns: n, std, ...)."""
    reserved = set(reserved)
    short = {k: short_key(k) for k in keys}
    while True:
        taken: dict[str, list[str]] = {}
        for k, s in short.items():
            taken.setdefault(s, []).append(k)
        clashes = {k for k, s in short.items() if s != k
                   and (len(taken[s]) > 1 or s in short or s in reserved)}
        if not clashes:
            return short
        short.update({k: k for k in clashes})


def legend(short: Mapping[str, str], shown: Iterable[str]) -> str:
    """'opt.lr = optimizer.lr, batch = trainer.batch_size' for the shown keys that are
    abbreviated; '' when none is."""
    pairs = [f"{short[k]} = {k}" for k in shown if short.get(k, k) != k]
    return ", ".join(pairs)
