"""Assemble the parts of a training run from its config: runtime, data, model with its wrappers,
optimizer, schedule, augmentation, loaders, loss, captured step, EMA, the fit loop.

`assemble` is the one builder, used by `TrainingRun` (train), and its pieces by `cnnbench eval`
and bench/. Nothing here writes files or keeps state: what it decided (data path, CUDA-graph
status, compile seconds, ...) comes back in `Parts` for the run to record.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, Callable

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from cnnbench import models
from cnnbench.data import (
    ImageData,
    data_fits_on_device,
    load_dataset,
    make_loader,
    split_bytes,
)
from cnnbench.engine.distributed import (
    DistInfo,
    all_reduce_sum,
    device_for,
    machine_first,
    sync_batchnorm,
    unwrap,
    wrap_model,
)
from cnnbench.engine.ema import WeightEMA
from cnnbench.engine.finetune import (
    apply_lr_scales,
    backbone_freeze,
    lr_groups,
    without_scale,
)
from cnnbench.engine.graphs import StepGraphs
from cnnbench.engine.loop import Fit
from cnnbench.engine.runtime import (
    Runtime,
    capture_off_reason,
    fused_options,
    make_runtime,
    seed_everything,
)
from cnnbench.engine.safe_build import build_allowed
from cnnbench.engine.schedule import build_schedule
from cnnbench.engine.target import TargetWatch
from cnnbench.engine.warmup import warm_up
from cnnbench.errors import UserError
from cnnbench.models import count_parameters
from cnnbench.run.lr_auto import auto_lr
from cnnbench.settings.learning_rate import is_auto
from cnnbench.settings.plain import as_plain
from cnnbench.settings.trainer import TrainerSettings

Note = Callable[..., None]  # note(text, kind="note" | "warning"): one line to the user


@dataclasses.dataclass
class Parts:
    """What a run is built from, and what the building decided (for metrics.json)."""

    runtime: Runtime
    data: ImageData
    model: nn.Module
    params: int
    loaders: dict
    fit: Fit
    scaler: Any
    graphs: StepGraphs
    data_path: str = "device"
    sync_batchnorm: str = "off"
    compile_seconds: float = 0.0
    effective_lr: float | None = None
    resumed_at: int | None = None
    pretrained: dict | None = None  # where the model's starting weights came from (None: random)
    lr_find: dict | None = None     # how optimizer.lr=auto chose the rate (None: given)


def build_model(cfg: DictConfig, data: ImageData, name: str | None = None,
                pretrained: bool = True) -> nn.Module:
    """The model of `cfg.model`, shaped by the dataset (channels, image size, classes); with
    `pretrained=False`, without the weights `model.pretrained` names (a checkpoint's come next)."""
    return models.build_model(cfg.model, in_channels=data.channels, image_size=data.image_size,
                              num_classes=data.num_classes, name=name, pretrained=pretrained)


def pretrained_note(origin: dict) -> str:
    """One line on the weights a model starts from."""
    return (f"starting from pretrained weights {origin['path']} ({origin['source']}, sha256 "
            f"{origin['sha256'][:12]}...); the classifier head starts afresh for this dataset.")


def build_optimizer(cfg: DictConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer of `cfg.optimizer` over `model`'s parameters: one group, or with
    optimizer.backbone_lr_scale other than 1 two (the head at lr, the backbone at lr x scale)."""
    try:
        options, scale = without_scale(as_plain(cfg.optimizer))
        factory = build_allowed(options, "optimizer")
        params = model.parameters() if scale == 1.0 else lr_groups(model, scale)
        optimizer = factory(params, **fused_options(factory, next(model.parameters()).device))
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 (the optimizer's own checks, in one paragraph)
        cause = err.__cause__ or err
        raise UserError(f"The optimizer could not be built from optimizer.*: {cause}.") from None
    apply_lr_scales(optimizer)
    return optimizer


def configure_determinism(deterministic: bool, runtime: Runtime) -> None:
    """Deterministic kernels when asked (identical results for a seed); else fastest kernels."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    elif runtime.device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def build_runtime(s: TrainerSettings, dist: DistInfo) -> Runtime:
    runtime = make_runtime(s.device, s.amp, s.channels_last, s.compile_mode,
                           s.cuda_graph and not dist.enabled)
    runtime = dataclasses.replace(runtime, device=device_for(dist, runtime.device))
    configure_determinism(s.deterministic, runtime)
    seed_everything(s.seed)
    return runtime


def load_data(cfg: DictConfig, s: TrainerSettings) -> ImageData:
    data = load_dataset(**OmegaConf.to_container(cfg.dataset, resolve=True))
    return data.with_validation(s.val_split, s.seed)


def prepared_model(cfg: DictConfig, s: TrainerSettings, data: ImageData, runtime: Runtime,
                   dist: DistInfo, name: str | None, note: Note,
                   resuming: bool = False) -> tuple[nn.Module, int, str]:
    """The model on its device, in its memory format, converted, compiled and wrapped; also its
    parameter count and the SyncBatchNorm status. A resumed run's weights come from its
    checkpoint, so `model.pretrained` is not read again."""
    model = build_model(cfg, data, name, pretrained=not resuming).to(runtime.device)
    if getattr(model, "pretrained_weights", None):
        note(pretrained_note(model.pretrained_weights))
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = count_parameters(model)
    sync_bn = "off"
    if s.sync_batchnorm:  # before compile and DDP: both must see the converted layers
        model, sync_bn = sync_batchnorm(model, dist, runtime.device)
        if dist.enabled and sync_bn != "on":
            note(f"trainer.sync_batchnorm=true {sync_bn}", kind="warning")
    if s.compile_mode:
        # in place (state_dict keys stay the same); static shapes: the last, smaller batch gets
        # its own kernels instead of turning every batch's kernels into slower dynamic ones
        model.compile(mode=s.compile_mode, dynamic=False)
    model = wrap_model(model, dist, runtime.device, s.ddp_comm_hook)
    if dist.enabled:
        seed_everything(s.seed + dist.rank)  # own dropout draws per process
    return model, params, sync_bn


def build_augment(cfg: DictConfig) -> Any:
    """The augmentation of `cfg.augmentation`; an option out of range is one paragraph."""
    try:
        return build_allowed(cfg.augmentation, "augmentation")
    except ValueError as err:
        raise UserError(f"{err}. Fix it on the command line or in the option's file in "
                        f"conf/augmentation/ (`cnnbench train --cfg job` shows the current "
                        f"values).") from None


def make_loaders(s: TrainerSettings, data: ImageData, runtime: Runtime, augment,
                 dist: DistInfo) -> tuple[dict, str]:
    """Train, validation and test loaders (on the device when the data fits), and which path."""
    on_device = s.data_on_device
    if on_device == "auto":
        on_device = data_fits_on_device(split_bytes(data.train, data.val, data.test),
                                        runtime.device)
    common = dict(device=runtime.device, mean=data.mean, std=data.std, on_device=on_device,
                  channels_last=runtime.channels_last, num_workers=s.num_workers,
                  resize_to=data.resize_to)
    train = make_loader(data.train, s.batch_size, shuffle=True, seed=s.seed,
                        augment=augment if augment.active else None,
                        num_classes=data.num_classes, rank=dist.rank, world_size=dist.world_size, **common)
    evaluate_on = lambda split: make_loader(split, s.eval_batch_size, **common)  # noqa: E731
    loaders = {"train": train, "val": evaluate_on(data.val) if data.val else None,
               "test": evaluate_on(data.test)}
    return loaders, "device" if on_device else "streaming"


def step_graphs(s: TrainerSettings, runtime: Runtime, loss_fn: nn.Module, dist: DistInfo,
                note: Note) -> StepGraphs:
    """The run's captured training step (on CUDA by default); one line when it falls back."""
    reason = capture_off_reason(s.cuda_graph, runtime)
    if reason is None and dist.enabled:
        reason = ("DDP: the gradient all-reduce runs between backward and the optimizer step, "
                  "outside any graph")
        note(f"the training step is not captured as a CUDA graph ({reason}).")
    return StepGraphs(runtime, loss_fn, off_reason=reason, warn=note)


def optimizer_config(cfg: DictConfig, s: TrainerSettings) -> DictConfig:
    """`cfg`, or with trainer.scale_lr=linear a copy whose optimizer.lr is scaled (schedulers'
    ${optimizer.lr} follow the copy)."""
    if s.lr_factor() == 1.0 or cfg.optimizer.get("lr") is None:
        return cfg
    scaled = copy.deepcopy(cfg)
    scaled.optimizer.lr = float(cfg.optimizer.lr) * s.lr_factor()
    return scaled


def assemble(cfg: DictConfig, s: TrainerSettings, dist: DistInfo, *, model_name: str | None,
             note: Note, phase: Callable[[str], None] = lambda name: None,
             resuming: bool = False, lr_found: dict | None = None) -> Parts:
    """Every part of a run, built from its config and trainer settings, ready to train
    (`resuming`: its weights and state come next from a checkpoint; `lr_found`: the lr_find
    record an optimizer.lr=auto run being resumed keeps)."""
    runtime = build_runtime(s, dist)
    phase("data")
    with machine_first(dist):  # each machine downloads and prepares its data once
        data = load_data(cfg, s)
    phase("setup")
    model, params, sync_bn = prepared_model(cfg, s, data, runtime, dist, model_name, note,
                                            resuming)
    augment = build_augment(cfg)
    loaders, data_path = make_loaders(s, data, runtime, augment, dist)
    scaler = torch.amp.GradScaler("cuda") if runtime.needs_scaler else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=s.label_smoothing)
    lr_find = None
    if is_auto(cfg.optimizer.get("lr")):  # the rate its range test finds (tested at this batch
        phase("setup" if resuming else "lr_find")  # size: not scaled by trainer.scale_lr)
        cfg, lr_find = auto_lr(cfg, lambda c: build_optimizer(c, model), model, loaders["train"],
                               loss_fn, runtime, scaler, dist, note,
                               (lr_found or {}) if resuming else None)
        phase("setup")
    opt_cfg = optimizer_config(cfg, s) if lr_find is None else cfg
    optimizer = build_optimizer(opt_cfg, model)
    factory = (build_allowed(opt_cfg.scheduler, "scheduler")
               if opt_cfg.scheduler.get("_target_") else None)
    schedule = build_schedule(factory, optimizer, s.epochs, len(loaders["train"]))
    graphs = step_graphs(s, runtime, loss_fn, dist, note)
    compile_seconds = 0.0
    if (s.compile_mode or runtime.capture_step) and not dist.enabled:
        # compile (and capture) now, on zero batches: timed apart from training
        compile_seconds = warm_up(model, loss_fn, runtime, loaders["train"],
                                  [v for k, v in loaders.items() if k != "train" and v],
                                  optimizer=optimizer, graphs=graphs, scaler=scaler)
    ema = WeightEMA(unwrap(model), s.ema_decay, s.ema_every) if s.ema_decay else None
    fit = Fit(model, optimizer, schedule, loss_fn, runtime, loaders["train"], loaders["val"],
              s.epochs, s.early_stopping, scaler, reduce=all_reduce_sum, ema=ema,
              keep_best=s.early_stopping.restore_best, graphs=graphs,
              target=TargetWatch.of(s.target_acc, has_validation=loaders["val"] is not None),
              target_loader=loaders["test"] if loaders["val"] is None else None,
              freeze=backbone_freeze(model, s.freeze_backbone_epochs, s.epochs, note))
    return Parts(runtime, data, model, params, loaders, fit, scaler, graphs, data_path, sync_bn,
                 compile_seconds, opt_cfg.optimizer.get("lr") if opt_cfg is not cfg else None,
                 pretrained=getattr(unwrap(model), "pretrained_weights", None), lr_find=lr_find)
