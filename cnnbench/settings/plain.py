"""Options from a config as plain data: a config may come from a file someone else wrote (a run
directory's `.hydra/overrides.yaml` on `trainer.resume`, the config stored in a checkpoint), so
`plain_options` only passes plain values (numbers, strings, booleans, None and lists of those)
under names the target's signature declares, of the types its annotations say. A nested
`_target_`, a mapping, an unknown name or a wrong type is a `UserError` that names the key,
never an import or a call.
"""
from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any, Callable, Mapping

from omegaconf import DictConfig, ListConfig, OmegaConf

from cnnbench.errors import UserError
from cnnbench.settings.numbers import check_numbers

_SCALARS = (bool, int, float, str, type(None))
_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)


_DATA_ONLY = ("A config is data: it holds only plain values (numbers, strings, true/false, null "
              "and lists of those), so that a config from a checkpoint or a run directory cannot "
              "make cnnbench import or call anything.")


def refuse(key: str, why: str, data_only: bool = True) -> UserError:
    return UserError(f"{key} is refused: {why}. " + (_DATA_ONLY + " " if data_only else "")
                     + f"Remove or fix {key} (`cnnbench train --cfg job` shows the options).")


def _hints(target: Callable[..., Any]) -> dict[str, Any]:
    function = target.__init__ if inspect.isclass(target) else target
    try:
        return typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 (unresolvable annotation strings: check names only)
        return {}


def _conforms(value: Any, hint: Any) -> bool:
    """Whether the plain `value` fits the annotation `hint` (lenient where a hint is exotic)."""
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        return any(_conforms(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint in (bool, str):
        return isinstance(value, hint)
    if origin in _SEQUENCES or hint in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(args) == len(value) and all(map(_conforms, value, args))
        return not args or all(_conforms(v, args[0]) for v in value)
    if inspect.isclass(hint):
        return isinstance(value, hint)
    return True  # a typing construct not covered here: the value is plain anyway


def _check_plain(key: str, value: Any) -> None:
    if isinstance(value, Mapping):
        inner = [k for k in value if str(k).startswith("_")]
        raise refuse(key, "it is a nested mapping" + (f" with {', '.join(map(str, inner))} "
                                                       f"inside" if inner else ""))
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if not isinstance(item, _SCALARS):
                raise refuse(f"{key}[{i}]", f"{type(item).__name__} values are not options")
    elif not isinstance(value, _SCALARS):
        raise refuse(key, f"{type(value).__name__} values are not options")


def plain_options(target: Callable[..., Any], options: Mapping[str, Any], group: str,
                  reserved: tuple[str, ...] = ()) -> dict[str, Any]:
    """`options` checked against `target`'s signature: declared names, plain typed values."""
    params = inspect.signature(target).parameters
    hints = _hints(target)
    checked = {}
    for name, value in options.items():
        key = f"{group}.{name}"
        if not isinstance(name, str) or name.startswith("_"):
            raise refuse(key, "keys such as _target_, _partial_ and _args_ are only read at the "
                               "top of a config, never passed on")
        _check_plain(key, value)
        if name in reserved:
            raise refuse(key, "it comes from the dataset, never from the config",
                          data_only=False)
        if name not in params or params[name].kind in (inspect.Parameter.VAR_POSITIONAL,
                                                       inspect.Parameter.VAR_KEYWORD):
            known = [p for p, v in params.items() if p not in reserved and p != "self"
                     and v.default is not inspect.Parameter.empty]
            raise refuse(key, f"{getattr(target, '__name__', target)} has no option {name!r} "
                               f"(its options: {', '.join(known)})", data_only=False)
        if name in hints and not _conforms(value, hints[name]):
            raise refuse(key, f"{value!r} is not of the type {name!r} takes "
                               f"({_hint_name(hints[name])})", data_only=False)
        checked[name] = list(value) if isinstance(value, tuple) else value
    check_numbers(group, checked)
    return checked


def _hint_name(hint: Any) -> str:
    if inspect.isclass(hint) and not typing.get_args(hint):
        return hint.__name__
    return str(hint).replace("typing.", "").replace("collections.abc.", "")


def as_plain(cfg: DictConfig | Mapping[str, Any]) -> Mapping[str, Any]:
    """A config node as plain containers (interpolations resolved within the config)."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg
