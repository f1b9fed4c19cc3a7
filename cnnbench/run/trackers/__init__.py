"""The experiment trackers a run also logs to, beside its own files: MLflow and Weights &
Biases, chosen with `logger=[tensorboard,mlflow,wandb]`.

Each tracker gets the run's options as parameters, one row of metrics per epoch (step = epoch),
the test metrics, the pictures and the final status. A tracker that fails (a server down, a
full disk) prints one line and is dropped: it never fails or stops the run.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.markup import escape

from cnnbench.errors import UserError

# logger option -> (the module it needs, the extra that installs it)
PACKAGES = {"mlflow": ("mlflow", "mlflow"), "wandb": ("wandb", "wandb")}
PICTURES = ("*.png", "history.csv")  # the pictures, and the curves as numbers


def chosen(cfg: DictConfig) -> list[str]:
    """The logger options the config selects (`logger=[tensorboard,mlflow]`)."""
    logger = cfg.get("logger")
    return list(logger) if isinstance(logger, DictConfig) else []


def require_packages(cfg: DictConfig) -> None:
    """Refuse, before the run starts, a logger whose package is not installed."""
    for name in chosen(cfg):
        if name not in PACKAGES:
            continue
        module, extra = PACKAGES[name]
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise UserError(
                f"logger={name} logs the run to {module}, but {module} cannot be imported "
                f"({err}). Install it with pip install \"cnnbench[{extra}]\" (from a checkout: "
                f"pip install -e \".[{extra}]\"), or leave {name} out of logger=[...].") from None


def sweep_dir(run_dir: Path) -> Path | None:
    """The sweep folder of a sweep's job (it holds Hydra's multirun.yaml); None for a run."""
    parent = Path(run_dir).resolve().parent
    return parent if (parent / "multirun.yaml").is_file() else None


def pictures(run_dir: Path) -> list[Path]:
    """What a run saved to look at: confusion_matrix.png, misclassified.png, history.csv."""
    found = {p for pattern in PICTURES for p in Path(run_dir).glob(pattern) if p.is_file()}
    return sorted(found)


class Trackers:
    """The trackers of one run; every call reaches each tracker still working."""

    def __init__(self, sinks: list[Any], console: Console, tensorboard: bool = True) -> None:
        self.sinks = sinks
        self.console = console
        self.tensorboard = tensorboard  # whether the run also writes TensorBoard events

    def warn(self, text: str) -> None:
        """One line, never folded."""
        self.console.print(f"[bold yellow]warning:[/] {escape(text)}", highlight=False,
                           soft_wrap=True)

    def _each(self, method: str, *args: Any) -> None:
        for sink in list(self.sinks):
            try:
                getattr(sink, method)(*args)
            except Exception as err:  # noqa: BLE001 (a tracker never fails the run)
                self.sinks.remove(sink)
                reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
                self.warn(f"{sink.name} stopped logging this run ({reason}); the run goes on "
                          f"and keeps its own files.")
                if method != "finish":
                    try:
                        sink.finish({}, "failed", [])
                    except Exception:  # noqa: BLE001
                        pass

    def epoch(self, row: Mapping[str, Any]) -> None:
        self._each("epoch", dict(row))

    def finish(self, metrics: Mapping[str, Any], status: str, run_dir: Path) -> None:
        """Test metrics, pictures and the status; then the trackers are closed."""
        self._each("finish", dict(metrics), status, pictures(run_dir))
        self.sinks = []


def run_tags(record: Mapping[str, Any]) -> dict[str, str]:
    """What identifies the code and config of a run, from its metrics.json: the git commit
    (and whether its work tree was dirty) and the config hash."""
    git = record.get("git") or {}
    tags = {"git_commit": git.get("commit"), "config_hash": record.get("config_hash"),
            "git_dirty": None if git.get("dirty") is None else str(git["dirty"]).lower()}
    return {k: str(v) for k, v in tags.items() if v is not None}


def open_trackers(cfg: DictConfig, params: Mapping[str, Any], record: Mapping[str, Any],
                  run_dir: Path, console: Console, writer: bool = True) -> Trackers:
    """Start the chosen trackers' runs with the run's options as `params` and tags from its
    `record`; one that cannot start warns. Only the `writer` process logs (DDP rank 0)."""
    sinks: list[Any] = []
    sweep = sweep_dir(run_dir)
    tags = run_tags(record)
    trackers = Trackers(sinks, console, "logger" not in cfg or "tensorboard" in chosen(cfg))
    if not writer:
        return trackers
    for name in chosen(cfg):
        options = OmegaConf.to_container(cfg.logger[name], resolve=True) or {}
        try:
            if name == "mlflow":
                from cnnbench.run.trackers.mlflow_sink import MlflowSink
                sinks.append(MlflowSink(options, params, tags, Path(run_dir), sweep))
            elif name == "wandb":
                from cnnbench.run.trackers.wandb_sink import WandbSink
                sinks.append(WandbSink(options, params, tags, Path(run_dir), sweep))
        except Exception as err:  # noqa: BLE001 (a tracker never fails the run)
            reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
            trackers.warn(f"{name} could not start logging this run ({reason}); the run goes on and "
                 f"keeps its own files.")
    return trackers
