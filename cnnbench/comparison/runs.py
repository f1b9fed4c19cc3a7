"""Read what each run under the paths a user gives left behind (the runs are found by
`rundir.find_run_dirs`). Nothing here raises for a broken run: it becomes a record whose
`status` says what is wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .. import rundir
from ..errors import UserError

OPTION_KEYS = ("model", "dataset", "optimizer", "lr", "scheduler", "augmentation", "batch_size",
               "epochs", "seed")
METRIC_KEYS = ("test/acc", "test/loss", "test/top5", "test/macro_f1", "params", "train_seconds",
               "images_per_s", "epochs_run")
# config.yaml keys of the options that are values rather than config-group choices
_CONFIG_KEYS = {"lr": "optimizer.lr", "batch_size": "trainer.batch_size",
                "epochs": "trainer.epochs", "seed": "trainer.seed"}


@dataclass
class RunRecord:
    path: Path
    name: str                                   # how the files name it (relative path)
    status: str                                 # completed, failed, interrupted, running, ...
    options: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # numbers only: test/acc, shift/4px, ...
    reason: str | None = None
    short: str = ""                             # how the terminal table names it

    @property
    def history(self) -> Path | None:
        path = self.path / rundir.HISTORY_FILE
        return path if path.is_file() else None

    @property
    def acc(self) -> float | None:
        return self.metrics.get("test/acc")


def _read_yaml(path: Path) -> Any:
    """A YAML file as plain data: `yaml.safe_load` (no tags, no resolvers); None when it is
    missing or broken. A run directory is someone else's text, never run as code."""
    try:
        return yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None


def _select(data: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _plain(value: Any) -> bool:
    """A value to show: a number or a string without an interpolation in it (stored text is
    shown as it is, never resolved)."""
    if isinstance(value, str):
        return "${" not in value
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _hydra_options(run_dir: Path) -> dict[str, Any]:
    """Options from .hydra/ (config-group choices and a few values), for runs without metrics."""
    options: dict[str, Any] = {}
    choices = _select(_read_yaml(run_dir / ".hydra" / "hydra.yaml"), "hydra.runtime.choices")
    if isinstance(choices, dict):
        options.update({k: choices[k] for k in OPTION_KEYS
                        if k in choices and _plain(choices[k])})
    config = _read_yaml(run_dir / ".hydra" / "config.yaml")
    for key, dotted in _CONFIG_KEYS.items():
        value = _select(config, dotted)
        if _plain(value):
            options[key] = value
    return options


def load_run(run_dir: Path, name: str) -> RunRecord:
    data, status, reason = rundir.load_metrics(run_dir)
    record = RunRecord(run_dir, name, status=status, reason=reason)
    record.options = {k: data.get(k) for k in OPTION_KEYS}
    if any(v is None for v in record.options.values()):
        for key, value in _hydra_options(run_dir).items():
            if record.options.get(key) is None:
                record.options[key] = value
    record.metrics = {k: v for k, v in data.items()
                      if (k in METRIC_KEYS or k.startswith("shift/"))
                      and isinstance(v, (int, float)) and not isinstance(v, bool)}
    return record


def short_name(run_dir: Path, root: Path) -> str:
    """A sweep job is 'job N' (its directory name repeats every override); other runs keep
    their path below `root` (runs/..., eval/...)."""
    job, sep, _ = run_dir.name.partition("_")
    if sep and job.isdigit() and (run_dir.parent / "multirun.yaml").is_file():
        if run_dir.parent.resolve() == root.resolve():
            return f"job {job}"
        return f"{run_dir.parent.name} job {job}"
    return run_dir.name if run_dir == root else str(run_dir.relative_to(root))


def load_runs(paths: Iterable[str | Path]) -> list[RunRecord]:
    """The runs under every path; a UserError when a path is missing or nothing is found."""
    records: list[RunRecord] = []
    seen: set[Path] = set()
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise UserError(f"{root} does not exist. `cnnbench compare` takes run directories, "
                            f"sweep directories or the outputs/ directory itself.")
    for root in roots:
        for run_dir in rundir.find_run_dirs(root):
            if run_dir.resolve() in seen:
                continue
            seen.add(run_dir.resolve())
            name = run_dir.name if run_dir == root else str(run_dir.relative_to(root))
            record = load_run(run_dir, name)
            record.short = short_name(run_dir, root)
            records.append(record)
    if not records:
        raise UserError(
            f"No runs found in {', '.join(str(r) for r in roots)}. A run directory holds "
            f"metrics.json or .hydra/config.yaml; `cnnbench train` writes them under "
            f"outputs/runs/<run>/ and a sweep (`cnnbench train -m ...`) under "
            f"outputs/multirun/<sweep>/<job>/. Give one or more run directories, sweep "
            f"directories or outputs/ itself, e.g. `cnnbench compare outputs`.")
    return records
