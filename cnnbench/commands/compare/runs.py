"""Read what each run under the paths a user gives left behind (the runs are found by
`sweep.manifest.run_dirs_below`: every run directory, a sweep's being the jobs its manifest
lists). Nothing here raises for a broken run: it becomes a record whose `status` says what is
wrong.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from cnnbench import rundir
from cnnbench.commands.compare.identity import identity
from cnnbench.commands.compare.identity import text as identity_text
from cnnbench.commands.compare.metric_values import SHIFT_KEY, finite_number, out_of_range, outside
from cnnbench.errors import UserError
from cnnbench.rundir.record import shown_text
from cnnbench.rundir.stored_text import StoredTextError, read_stored_yaml
from cnnbench.rundir.strict_json import NOT_FINITE_KEY
from cnnbench.settings.run_options import KEY_OF_VALUE_OPTION, OPTION_NAMES
from cnnbench.sweep.manifest import run_dirs_below

OPTION_KEYS = OPTION_NAMES  # the run options metrics.json records (settings/run_options.py)
METRIC_KEYS = ("test/acc", "test/loss", "test/top5", "test/macro_f1", "params", "train_seconds",
               "images_per_s", "epochs_run")
# fields other parts of the project write into metrics.json (may be absent in older runs)
EXTRA_KEYS = ("published", "time_to_target_s", "epochs_to_target", "target_acc",
              "target_metric", "energy_joules", "energy_note", "device")
TEXT_EXTRAS = ("target_metric", "energy_note", "device")
# config.yaml keys of the options that are values rather than config-group choices
_CONFIG_KEYS = KEY_OF_VALUE_OPTION


@dataclass
class RunRecord:
    path: Path
    name: str                                   # how the files name it (relative path)
    status: str                                 # completed, failed, interrupted, running, ...
    options: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)  # numbers only: test/acc, shift/4px, ...
    reason: str | None = None
    short: str = ""                             # how the terminal table names it
    identity: dict[str, str] = field(default_factory=dict)  # the experiment, seed aside
    has_config: bool = False                    # its .hydra/config.yaml could be read
    extras: dict[str, Any] = field(default_factory=dict)    # published, time to target, energy
    not_finite: list[str] = field(default_factory=list)     # metrics stored as NaN or infinite
    out_of_range: dict[str, str] = field(default_factory=dict)  # metric -> why it cannot be
    kind: str = "train"                         # "eval": a `cnnbench eval` of a checkpoint
    checkpoint: str | None = None               # the checkpoint an evaluation evaluated
    checkpoint_epoch: int | None = None
    repeats: str | None = None                  # the run of its group whose seed it repeats

    @property
    def history(self) -> Path | None:
        path = self.path / rundir.HISTORY_FILE
        return path if path.is_file() else None

    @property
    def is_evaluation(self) -> bool:
        """A `cnnbench eval` of a checkpoint, not a training run: compare shows it apart."""
        return self.kind == "eval"

    @property
    def acc(self) -> float | None:
        return self.metrics.get("test/acc")

    @property
    def invalid(self) -> bool:
        """A metric it stored is NaN, infinite or outside its range (an accuracy of 5): the
        run's numbers cannot be trusted."""
        return bool(self.not_finite or self.out_of_range)

    @property
    def in_statistics(self) -> bool:
        """Only completed runs with a test accuracy and no metric that is NaN, infinite or
        outside its range enter the statistics of their group and are ranked; of runs that
        repeat one seed of one experiment (the same run again, not another sample), one."""
        return (self.status == rundir.COMPLETED and self.acc is not None and not self.invalid
                and self.repeats is None)

    @property
    def shown_status(self) -> str:
        """The status as the tables show it: a run with a metric that is not finite or out of
        its range says which."""
        parts = [self.status]
        if self.not_finite:
            parts.append(f"{', '.join(self.not_finite)} not finite")
        if self.out_of_range:
            parts.append(f"{', '.join(self.out_of_range)} out of range")
        if self.repeats:
            parts.append(f"repeats seed {self.options.get('seed')}")
        return ", ".join(parts)

    @property
    def brief_status(self) -> str:
        """The status as a narrow terminal column shows it: how many metrics are not finite or
        out of range, not which (shown_status and `problems` say which)."""
        parts = [self.status]
        for count, what in ((len(self.not_finite), "not finite"),
                            (len(self.out_of_range), "out of range")):
            if count:
                parts.append(f"{count} metric{'s' if count > 1 else ''} {what}")
        if self.repeats:
            parts.append("repeated seed")
        return ", ".join(parts)

    @property
    def problems(self) -> str:
        """What is wrong with its metrics, in words ('' when nothing is): 'test/loss,
        train_seconds not finite; test/acc 5 is outside 0–1'."""
        parts = [f"{', '.join(self.not_finite)} not finite"] if self.not_finite else []
        parts += self.out_of_range.values()
        return "; ".join(parts)


def _read_yaml(path: Path) -> Any:
    """A YAML file as bounded plain data (`rundir.stored_text`: no tags, no resolvers, no
    aliases, no deep nesting, no device or pipe); None when it is missing or cannot be read so.
    A run directory is someone else's text, never run as code."""
    try:
        return read_stored_yaml(path)
    except (OSError, StoredTextError):
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


def _option(value: Any) -> Any:
    """A recorded option as compare shows it: a finite number or a bool as it is, None for
    none, anything else as safe text (`shown_text`: no control characters)."""
    if value is None or isinstance(value, bool) or finite_number(value) is not None:
        return value
    return shown_text(value if isinstance(value, str) else identity_text(value))


def _hydra_files(run_dir: Path) -> tuple[Any, Any]:
    """The stored config and the config-group choices (None where unreadable)."""
    config = _read_yaml(run_dir / rundir.HYDRA_DIR / "config.yaml")
    choices = _select(_read_yaml(run_dir / rundir.HYDRA_DIR / "hydra.yaml"),
                      "hydra.runtime.choices")
    return config, choices


def _hydra_options(config: Any, choices: Any) -> dict[str, Any]:
    """Options from .hydra/ (config-group choices and a few values), for runs without metrics."""
    options: dict[str, Any] = {}
    if isinstance(choices, dict):
        options.update({k: choices[k] for k in OPTION_KEYS
                        if k in choices and _plain(choices[k])})
    for key, dotted in _CONFIG_KEYS.items():
        value = _select(config, dotted)
        if _plain(value):
            options[key] = value
    return options


def _shown_metric(key: str) -> bool:
    return key in METRIC_KEYS or bool(SHIFT_KEY.fullmatch(key))


def _not_finite(data: dict[str, Any]) -> list[str]:
    """The metrics compare shows that the run stored as NaN or infinite: bare (an older
    metrics.json) or as null with their names under NOT_FINITE_KEY."""
    listed = data.get(NOT_FINITE_KEY)
    named = [k for k in listed if isinstance(k, str)] if isinstance(listed, list) else []
    bare = [k for k, v in data.items() if isinstance(v, float) and not math.isfinite(v)]
    return [k for k in dict.fromkeys([*bare, *named]) if _shown_metric(k)]


def _published(value: Any) -> dict[str, Any] | None:
    """{"value", "metric", "source"} with a numeric value within the metric's range, else None
    (absent, null or junk); the texts safe to show."""
    if not isinstance(value, dict) or finite_number(value.get("value")) is None:
        return None
    metric = value.get("metric")
    metric = shown_text(metric, 60) if isinstance(metric, str) and metric else "test/acc"
    if outside(metric, value["value"]):
        return None
    source = value.get("source")
    return {"value": value["value"], "metric": metric,
            "source": shown_text(source) if isinstance(source, str) else None}


def _extra(key: str, value: Any) -> Any:
    """One of EXTRA_KEYS checked: a number, a text or the published dict, else None."""
    if key == "published":
        return _published(value)
    if key in TEXT_EXTRAS:
        return shown_text(value) if isinstance(value, str) else None
    number = finite_number(value)
    return None if outside(key, number) else number


def _extras(data: dict[str, Any], config: Any) -> dict[str, Any]:
    """The fields other parts of the project add to metrics.json: a key is present when the
    run wrote it (its value may be None: e.g. a target never reached; junk becomes None). A
    run that predates `published` in metrics.json takes it from its stored config."""
    extras = {key: _extra(key, data[key]) for key in EXTRA_KEYS if key in data}
    if "published" not in extras and isinstance(config, dict) and config.get("published"):
        extras["published"] = _published(config.get("published"))
    return extras


def load_run(run_dir: Path, name: str) -> RunRecord:
    """What compare shows of one run. Everything is read as untrusted input: the status and
    reason through `rundir.load_metrics` (a status cnnbench writes, safe text), every other text
    through `shown_text`, and a metric that is not finite or outside its range is left out of
    the metrics, the run marked (`not_finite`, `out_of_range`) and left out of the statistics."""
    data, status, reason = rundir.load_metrics(run_dir)
    record = RunRecord(run_dir, shown_text(name), status=status, reason=reason)
    config, choices = _hydra_files(run_dir)
    record.options = {k: data.get(k) for k in OPTION_KEYS}
    if any(v is None for v in record.options.values()):
        for key, value in _hydra_options(config, choices).items():
            if record.options.get(key) is None:
                record.options[key] = value
    record.options = {k: _option(v) for k, v in record.options.items()}
    record.not_finite = _not_finite(data)
    record.extras = _extras(data, config)
    published = record.extras.get("published")
    shown = [k for k in data if _shown_metric(k)]
    if published and published["metric"] in data and published["metric"] not in shown:
        shown.append(published["metric"])
    record.out_of_range = out_of_range(data, [*shown, *(k for k in EXTRA_KEYS if k in data)])
    record.metrics = {k: data[k] for k in shown
                      if finite_number(data[k]) is not None and k not in record.out_of_range}
    kind = data.get("kind")
    record.identity = identity(config, choices, record.options,
                               shown_text(kind, 40) if isinstance(kind, str) else None)
    record.has_config = isinstance(config, dict)
    if isinstance(kind, str):
        record.kind = shown_text(kind, 40)
    if isinstance(data.get("checkpoint"), str):
        record.checkpoint = shown_text(data["checkpoint"])
    epoch = data.get("checkpoint_epoch")
    record.checkpoint_epoch = epoch if isinstance(epoch, int) and not isinstance(epoch, bool) \
        else None
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
        for run_dir in run_dirs_below(root):
            if run_dir.resolve() in seen:
                continue
            seen.add(run_dir.resolve())
            name = run_dir.name if run_dir == root else str(run_dir.relative_to(root))
            record = load_run(run_dir, name)
            record.short = shown_text(short_name(run_dir, root))
            records.append(record)
    if not records:
        raise UserError(
            f"No runs found in {', '.join(str(r) for r in roots)}. A run directory holds "
            f"metrics.json or .hydra/config.yaml; `cnnbench train` writes them under "
            f"outputs/runs/<run>/ and a sweep (`cnnbench train -m ...`) under "
            f"outputs/multirun/<sweep>/<job>/. Give one or more run directories, sweep "
            f"directories or outputs/ itself, e.g. `cnnbench compare outputs`.")
    return records
