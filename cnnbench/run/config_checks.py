"""The checks of a composed train config that need no torch, in one place: the trainer's and
evaluation's settings, the dataset's own options and every number of the groups built into
objects. `cnnbench train` and `cnnbench lr-find` make them before they import torch (a mistake
is refused in about a second), and a run makes them again as it starts (for callers of
`TrainingRun` outside the command line)."""
from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig, OmegaConf

from cnnbench.data.options import check_dataset_options
from cnnbench.settings.evaluation import EvaluationSettings
from cnnbench.settings.numbers import check_config_numbers
from cnnbench.settings.trainer import TrainerSettings


@dataclass(frozen=True)
class CheckedConfig:
    trainer: TrainerSettings
    evaluation: EvaluationSettings


def check_config(cfg: DictConfig) -> CheckedConfig:
    """Every torch-free check of `cfg`, each mistake a one-paragraph UserError; the settings."""
    trainer = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    if "dataset" in cfg:
        check_dataset_options(OmegaConf.to_container(cfg.dataset, resolve=True))
    evaluation = EvaluationSettings.from_config(
        OmegaConf.to_container(cfg.evaluation, resolve=True) if "evaluation" in cfg else None)
    check_config_numbers(cfg)
    return CheckedConfig(trainer, evaluation)
