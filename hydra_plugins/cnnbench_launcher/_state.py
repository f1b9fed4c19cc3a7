"""What both of cnnbench's launchers hold between Hydra's `setup` and `launch`.

A mixin, not a Launcher: Hydra registers every Launcher subclass it finds in hydra_plugins.
"""
from typing import Any

from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig


class LauncherState:
    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None
        self.sweep_book: Any = None  # cnnbench.sweep.plan.SweepBook, once jobs are planned
        self.fail_fast = False      # stop the sweep at its first failed job (`_stopping`)
        self.stopped_by: str | None = None  # why fail_fast stopped the sweep (no batch runs then)

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction,
              config: DictConfig) -> None:
        self.config = config
        self.task_function = task_function
        self.hydra_context = hydra_context
