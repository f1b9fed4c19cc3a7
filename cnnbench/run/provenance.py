"""What a run records about itself: the library versions, its identifying options, and the
stand-in for the file sinks on processes other than rank 0."""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Mapping

import torch
from omegaconf import DictConfig

from cnnbench import __version__
from cnnbench.settings.run_options import RUN_OPTIONS


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    import hydra

    try:  # from the package metadata: importing torchvision costs a second or more at start-up
        torchvision_version = version("torchvision")
    except PackageNotFoundError:
        torchvision_version = "none"
    return {"cnnbench": __version__, "torch": torch.__version__,
            "torchvision": torchvision_version, "hydra": hydra.__version__,
            "python": platform.python_version(),
            "cuda": torch.version.cuda or "none"}


PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the cnnbench package's source folder
GIT_SECONDS = 3.0  # each git command; a slower git leaves the commit out, the run goes on


def code_commit(folder: Path = PACKAGE_DIR) -> dict[str, Any] | None:
    """The git commit of the code that runs and whether its work tree had uncommitted changes
    (`{"commit": "<sha>", "dirty": false}`), when `folder` is tracked in a git work tree;
    None for an installed package, without git, or when git fails or takes too long."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_OPTIONAL_LOCKS"] = "0"  # reading the status never takes the index lock

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True,
                                  text=True, timeout=GIT_SECONDS, env=env,
                                  stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return done.stdout if done.returncode == 0 else None

    tracked = git("ls-files", "--", ".")  # an installed copy inside some repository is not
    commit = git("rev-parse", "HEAD") if tracked else None
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit.strip(), "dirty": None if status is None else bool(status.strip())}


def run_options(choices: Mapping[str, str], cfg: DictConfig) -> dict[str, Any]:
    """What distinguishes this run: the chosen config options and the main hyperparameters
    (the `option` column of the table of run options, settings/run_options.py, in its order)."""
    options = {row.option: choices.get(row.path) if row.group else _required(cfg, row.path)
               for row in RUN_OPTIONS}
    if options.get("model") == "timm":  # which of timm's models: timm/resnet18
        options["model"] = f"timm/{cfg.model.get('name')}"
    return options


def _required(cfg: DictConfig, path: str) -> Any:
    """The value at the dotted `path`; a key removed from the config (`~trainer.epochs`) raises
    OmegaConf's error, which the command shows as one paragraph naming the key."""
    node: Any = cfg
    for part in path.split("."):
        node = getattr(node, part)
    return node


class NullSink:
    """Stands in for the file sinks on processes other than rank 0."""

    def __getattr__(self, name: str):
        return lambda *args, **kwargs: None
