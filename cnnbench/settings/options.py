"""One option style for every subcommand: `key=value`, as `cnnbench train` (Hydra) takes them.

`--out DIR`, `--out=DIR`, `--json` and `--runs` are accepted as other spellings of `out=DIR`,
`json=true` and `runs=true`, so older command lines keep working.
"""
from __future__ import annotations

from typing import Sequence

from cnnbench.errors import UserError

TRUE, FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def normalized(args: Sequence[str], flags: Sequence[str] = (),
               valued: Sequence[str] = ()) -> list[str]:
    """`args` with `--flag` as `flag=true` and `--key VALUE` / `--key=VALUE` as `key=VALUE`,
    for the `flags` and `valued` keys named; everything else as it was."""
    out: list[str] = []
    items = list(args)
    while items:
        arg = items.pop(0)
        name, sep, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        if name in flags and not sep:
            out.append(f"{name}=true")
        elif name in valued and sep:
            out.append(f"{name}={value}")
        elif name in valued:
            if not items:
                raise UserError(f"{arg} needs a value: {name}=VALUE.")
            out.append(f"{name}={items.pop(0)}")
        else:
            out.append(arg)
    return out


def flag(value: str, key: str) -> bool:
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    raise UserError(f"{key}={value} is not true or false (e.g. {key}=true).")


def run_subcommand(args: Sequence[str], console, usage: str, action) -> int:
    """A subcommand's outer shell: `--help` (and no arguments) print its usage; `action(args,
    console)` runs it (how it ends, a mistake included, is the CLI's error boundary's)."""
    if not args or args[0] in ("-h", "--help", "help"):
        console.print(usage, highlight=False, markup=False, soft_wrap=True)
        return 0 if args else 2
    action(list(args), console)
    return 0
