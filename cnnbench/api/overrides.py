"""The Python forms of a command line's overrides: `train("model=lenet", trainer={"epochs": 3})`
is `cnnbench train model=lenet trainer.epochs=3`. Nested dicts become dotted keys; a value is
written in Hydra's override grammar (a list `[a,b]`, a string quoted when it needs it); in a
sweep, a list is the values to sweep (`seed=[1, 2]` is `seed=1,2`)."""
from __future__ import annotations

import re
from pathlib import PurePath
from typing import Any, Iterable, Mapping

from cnnbench.api.errors import CnnbenchError
from cnnbench.settings.overrides import hydra_quote

PLAIN = re.compile(r"^[\w./\-+:@~%]*$")  # a value Hydra reads as it is written


def value_text(value: Any) -> str:
    """`value` as one value of Hydra's override grammar."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}:{value_text(v)}" for k, v in value.items()) + "}"
    text = str(value) if isinstance(value, PurePath) else value
    if not isinstance(text, str):
        raise CnnbenchError(f"{value!r} ({type(value).__name__}) cannot be an override's value: "
                            f"give a string, a number, a bool, None, a list or a dict.")
    return text if text and PLAIN.match(text) and text not in ("null", "true", "false") \
        else hydra_quote(text)


def flattened(values: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(dotted key, value) of every leaf of `values`; an empty dict is a value."""
    for key, value in values.items():
        if not isinstance(key, str) or not key:
            raise CnnbenchError(f"{key!r} cannot name an override: keys are strings such as "
                                f"'model' or 'trainer' (nested dicts give trainer.epochs).")
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flattened(value, dotted + ".")
        else:
            yield dotted, value


def as_overrides(args: Iterable[Any], kwargs: Mapping[str, Any], sweep: bool = False) -> list[str]:
    """The command line's overrides of `args` (strings as typed, or dicts) and `kwargs`. With
    `sweep`, a list value is the values to sweep."""
    out: list[str] = []
    pairs: list[tuple[str, Any]] = []
    for arg in args:
        if isinstance(arg, Mapping):
            pairs += flattened(arg)
        elif isinstance(arg, str):
            if arg.startswith("-"):
                raise CnnbenchError(f"'{arg}' is a flag of the command line; in Python give "
                                    f"overrides only (key=value strings or keywords): "
                                    f"cnnbench.sweep(...) runs a sweep.")
            out.append(arg)
        else:
            raise CnnbenchError(f"{arg!r} is not an override: give 'key=value' strings, dicts "
                                f"or keywords, e.g. cnnbench.train('model=lenet', "
                                f"trainer={{'epochs': 3}}).")
    pairs += flattened(kwargs)
    for key, value in pairs:
        if sweep and isinstance(value, (list, tuple)):
            if not value:
                raise CnnbenchError(f"{key}=[] gives a sweep no value to run: list at least one.")
            out.append(f"{key}={','.join(value_text(v) for v in value)}")
        else:
            out.append(f"{key}={value_text(value)}")
    return out
