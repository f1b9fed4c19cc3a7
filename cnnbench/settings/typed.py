"""A config group as a dataclass: every key known, every value of its declared type.

`from_mapping(cls, data, group)` is the one place a group's values are checked against the
field annotations (`int`, `float`, `bool | str`, `list[int]`, a nested dataclass, `... | None`);
a mistake becomes one paragraph that names the key, the value, what it must be and an example.
Range rules (epochs >= 1, ...) stay with each settings class.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from typing import Any, Mapping, TypeVar

from cnnbench.errors import UserError

T = TypeVar("T")
_NAMES = {int: "a whole number", float: "a number", bool: "true or false", str: "a word",
          type(None): "null"}


def _accepts(kind: Any, value: Any) -> bool:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_accepts(k, value) for k in typing.get_args(kind))
    if origin in (list, tuple):
        (item, *_) = typing.get_args(kind) or (Any,)
        return isinstance(value, (list, tuple)) and all(_accepts(item, v) for v in value)
    if kind is Any:
        return True
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if dataclasses.is_dataclass(kind):
        return isinstance(value, Mapping)
    return isinstance(value, kind)


def _describe(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_describe(k) for k in typing.get_args(kind))
    if origin in (list, tuple):
        (item, *_) = typing.get_args(kind) or (Any,)
        return f"a list of {_describe(item).removeprefix('a ')}s, e.g. [1,2]"
    if dataclasses.is_dataclass(kind):
        keys = ", ".join(f.name for f in dataclasses.fields(kind))
        return f"a group of keys ({keys}), set one by one"
    return _NAMES.get(kind, getattr(kind, "__name__", str(kind)))


def unknown_keys_error(group: str, unknown: list[str], known: list[str]) -> UserError:
    hints = [difflib.get_close_matches(k, known, n=1) for k in unknown]
    did_you_mean = "; ".join(f"did you mean {group}.{h[0]}?" for h in hints if h)
    return UserError(f"Unknown {group} option(s) {', '.join(f'{group}.{k}' for k in unknown)}"
                     f"{f' ({did_you_mean})' if did_you_mean else ''}. Known options: "
                     f"{', '.join(known)}.")


def _hydra_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_text(v) for v in value) + "]"
    return str(value)


def default_example(cls: type, key: str) -> str:
    """`key=<its default>` as an override takes it (trainer.epochs=10 style, without the
    group), or `key=<value>` where the field has no default: an example that works."""
    for f in dataclasses.fields(cls):
        if f.name == key:
            if f.default is not dataclasses.MISSING:
                return f"{key}={_hydra_text(f.default)}"
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                return f"{key}={_hydra_text(f.default_factory())}"  # type: ignore[misc]
    return f"{key}=<value>"


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, group: str) -> T:
    """An instance of the dataclass `cls` from `data`, every key and value type checked."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise UserError(f"{group}={data!r} is not valid: {group} is a group of options, set them "
                        f"one by one, e.g. {group}.<key>=<value>.")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise unknown_keys_error(group, unknown, known)
    values = {}
    for key, value in data.items():
        kind = hints[key]
        if not _accepts(kind, value):
            example = f"{group}.{default_example(cls, key)}"
            raise UserError(f"{group}.{key}={value!r} is not valid: it must be "
                            f"{_describe(kind)}. Fix it on the command line, e.g. {example} "
                            f"(`cnnbench train --cfg job` shows the current values).")
        nested = typing.get_args(kind) or (kind,)
        dataclass_kind = next((k for k in nested if dataclasses.is_dataclass(k)), None)
        if dataclass_kind is not None and isinstance(value, Mapping):
            value = from_mapping(dataclass_kind, value, f"{group}.{key}")
        values[key] = value
    return cls(**values)
