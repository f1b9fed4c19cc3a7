"""The folders a `cnnbench train` command line names for what it writes: hydra.run.dir (a single
run) and hydra.sweep.dir (a sweep), read here and nowhere else.

A value with interpolations (${now:%H-%M}, ${hydra:runtime.choices.model},
${hydra.job.override_dirname}, ...) is resolved once, before Hydra starts, as Hydra would, and
passed on as the path it names: every check (a folder that already holds a run, one inside a
sweep or a run, one that cannot be written) and the lock then see the folder the run writes."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

from cnnbench.settings.overrides import hydra_quote, hydra_unquote, override_key

RUN_DIR = "hydra.run.dir"
SWEEP_DIR = "hydra.sweep.dir"


def given_value(args: list[str], key: str) -> str | None:
    """The value the command line gives `key` (the last one wins, as in Hydra), as typed."""
    values = [a.partition("=")[2] for a in args if "=" in a and override_key(a) == key]
    return values[-1] if values else None


def interpolated(value: str) -> bool:
    """Whether an override's value holds a live ${...} (one written \\${ is a literal)."""
    return re.search(r"(?<!\\)\$\{", value) is not None


def given_dir(args: list[str], key: str) -> Path | None:
    """The folder the command line names with `key`; None where it names none or the value
    still holds interpolations (`with_resolved_dir` replaces those)."""
    value = given_value(args, key)
    if value is None or interpolated(value):
        return None
    return Path(hydra_unquote(value))


def with_resolved_dir(args: list[str], key: str) -> list[str]:
    """`args` with `key`'s value, where it holds interpolations, replaced by the path they
    resolve to; other command lines come back as they are."""
    value = given_value(args, key)
    if value is None or not interpolated(value):
        return args
    folder = resolved_dir(args, key)
    return [*(a for a in args if "=" not in a or override_key(a) != key),
            f"{key}={hydra_quote(str(folder))}"]


def resolved_dir(args: list[str], key: str) -> Path:
    """The directory that the command line's `key` names, its interpolations resolved as Hydra
    would (${now:...}, ${hydra.job.name}, ${hydra:runtime.choices.model}, ...), in the config
    composed from the command line's fixed overrides."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.utils import setup_globals
    from omegaconf import OmegaConf

    from cnnbench.settings.config_files import compose_config, hydra_config_of

    parsed = OverridesParser.create().parse_overrides(
        [a for a in args if "=" in a and not a.startswith("-")])
    cfg = compose_config([o.input_line for o in parsed if not o.is_sweep_override()],
                         return_hydra_config=True)
    setup_globals()  # Hydra's resolvers: now, hydra
    with hydra_config_of(cfg):
        return Path(str(OmegaConf.select(cfg, key)))


def check_output_keys(args: list[str]) -> None:
    """The output keys a command line may not give as it does: an empty hydra.run.dir or
    hydra.sweep.dir (an unset shell variable, `hydra.run.dir=$DIR`, would write the run into
    the current folder), and hydra.output_subdir: a run's .hydra folder (its config and
    overrides, which trainer.resume, eval, export, predict and compare read) stays where
    cnnbench reads it."""
    from cnnbench.errors import UserError

    for key in (RUN_DIR, SWEEP_DIR):
        value = given_value(args, key)
        if value is not None and not hydra_unquote(value).strip():
            raise UserError(
                f"{key}= is empty (an unset shell variable?), and the run would be written into "
                f"the current folder. Give {key}= a folder's path, e.g. {key}=outputs/mine, or "
                f"leave it out for a new folder under outputs/.")
    value = given_value(args, "hydra.output_subdir")
    if value is not None and hydra_unquote(value) != ".hydra":
        raise UserError(
            f"hydra.output_subdir={value} would move the run's .hydra folder (or, with null, "
            f"leave it out), and that folder holds the config and overrides that trainer.resume, "
            f"eval, export and compare read: the run could not be resumed or evaluated, and a "
            f"path outside the run would write there. Leave hydra.output_subdir out.")


def default_root(key: str) -> Path:
    """The folder that `key`'s default value (conf/train.yaml) puts every run or sweep in:
    its leading part before the first interpolation (outputs/runs for hydra.run.dir)."""
    import yaml

    from cnnbench.settings.config_files import config_dir

    config = yaml.safe_load(config_dir().joinpath("train.yaml").read_text())
    value = str(config["hydra"][key.split(".")[1]]["dir"])
    fixed = list(itertools.takewhile(lambda part: "${" not in part, Path(value).parts))
    return Path(*fixed) if fixed else Path(".")
