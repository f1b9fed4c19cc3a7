"""The trainer's settings as a plain, validated object built from the `trainer` config group."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from cnnbench.errors import UserError
from cnnbench.settings.checks import check_fraction
from cnnbench.settings.typed import default_example, from_mapping

DEVICES = ("auto", "cuda", "cpu", "mps")
AMP_MODES = ("auto", "bf16", "fp16", "off")
MONITORS = {"val/loss": "min", "val/acc": "max"}
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
GRAPHING_COMPILE_MODES = ("reduce-overhead", "max-autotune")  # torch.compile's own CUDA graphs
COMM_HOOKS = (None, "bf16", "fp16")  # trainer.ddp_comm_hook: PyTorch's compression hooks
WHOLE_NUMBER_MINIMUMS = {"epochs": 1, "batch_size": 1, "eval_batch_size": 1, "num_workers": 0,
                         "plain_last_epochs": 0, "ema_every": 1, "base_batch_size": 1,
                         "freeze_backbone_epochs": 0}


@dataclass
class EarlyStopping:
    monitor: str = "val/loss"
    patience: int | None = None
    restore_best: bool = True

    @property
    def mode(self) -> str:
        return MONITORS[self.monitor]


@dataclass
class Checkpointing:
    save_best: bool = True
    save_last: bool = True


@dataclass
class TrainerSettings:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1024
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool | str = "auto"
    val_split: float = 0.1
    seed: int = 42
    label_smoothing: float = 0.0
    early_stopping: EarlyStopping = field(default_factory=EarlyStopping)
    checkpoint: Checkpointing = field(default_factory=Checkpointing)
    progress: bool = True
    deterministic: bool = False
    resume: str | None = None
    # speed options (docs/fast.md)
    data_on_device: bool | str = "auto"   # auto: on the device when it fits, else streamed
    num_workers: int = 4                  # DataLoader workers of the streaming path
    compile: bool | str = False           # torch.compile: false | true | one of COMPILE_MODES
    scale_lr: bool | str = False          # false | linear: lr x batch_size / base_batch_size
    base_batch_size: int = 128
    cuda_graph: bool | str = "auto"       # the training step as one CUDA graph: auto (on CUDA) | true | false
    tta_flip: bool = False                # also report test accuracy with flip test-time augmentation
    ema_decay: float | None = None        # validate, test and save a moving average of the weights
    ema_every: int = 1                    # optimizer steps between updates of that average
    plain_last_epochs: int = 0            # the last N epochs train without augmentation
    sync_batchnorm: bool = False          # DDP: BatchNorm statistics over the global batch (CUDA)
    ddp_comm_hook: str | None = None      # DDP: gradients sent as bf16 / fp16 (None: as they are)
    target_acc: float | None = None       # stop when this accuracy is reached (cnnbench/engine/target.py)
    freeze_backbone_epochs: int = 0       # the first N epochs update only the classifier head

    @property
    def compile_mode(self) -> str | None:
        """The torch.compile mode, or None for no compilation."""
        if self.compile is False:
            return None
        return "default" if self.compile is True else self.compile

    def lr_factor(self) -> float:
        return self.batch_size / self.base_batch_size if self.scale_lr == "linear" else 1.0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> TrainerSettings:
        """Build from the `trainer` config (a mapping), checking every value a user can get wrong."""
        settings = from_mapping(cls, cfg, "trainer")
        settings.validate()
        return settings

    def validate(self) -> None:
        def bad(key: str, value: Any, rule: str) -> UserError:
            return UserError(f"trainer.{key}={value!r} is not valid: it must be {rule}. "
                             f"Fix it on the command line, e.g. "
                             f"trainer.{default_example(type(self), key)}.")

        for key in (*WHOLE_NUMBER_MINIMUMS, "seed"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad(key, value, "a whole number")
        for key, least in WHOLE_NUMBER_MINIMUMS.items():
            if getattr(self, key) < least:
                raise bad(key, getattr(self, key), "at least 1" if least else "0 or more")
        if not 0 <= self.seed < 2**63:
            raise bad("seed", self.seed, "a whole number from 0 to 2**63 - 1")
        if self.ema_decay is not None and (isinstance(self.ema_decay, bool) or not isinstance(
                self.ema_decay, (int, float)) or not 0 < self.ema_decay < 1):
            raise bad("ema_decay", self.ema_decay,
                      "null (no weight average) or a number in (0, 1), e.g. 0.999")
        if self.data_on_device not in (True, False, "auto"):
            raise bad("data_on_device", self.data_on_device, "true, false or auto")
        if self.compile not in (True, False, *COMPILE_MODES):
            raise bad("compile", self.compile, f"true, false or a mode: {', '.join(COMPILE_MODES)}")
        if self.cuda_graph not in (True, False, "auto"):
            raise bad("cuda_graph", self.cuda_graph, "auto, true or false")
        for key in ("tta_flip", "sync_batchnorm"):
            if not isinstance(getattr(self, key), bool):
                raise bad(key, getattr(self, key), "true or false")
        if self.cuda_graph is True and self.compile in GRAPHING_COMPILE_MODES:
            raise UserError(f"trainer.cuda_graph=true captures the whole step in a CUDA graph, and "
                            f"trainer.compile={self.compile} makes CUDA graphs of its own: use "
                            f"trainer.compile=true (or max-autotune-no-cudagraphs) with it.")
        if self.ddp_comm_hook not in COMM_HOOKS:
            raise bad("ddp_comm_hook", self.ddp_comm_hook,
                      "null (gradients all-reduced as they are), bf16 or fp16")
        if self.scale_lr not in (False, "linear"):
            raise bad("scale_lr", self.scale_lr, "false or linear")
        if not isinstance(self.val_split, (int, float)) or not 0 <= self.val_split < 1:
            raise bad("val_split", self.val_split, "a fraction in [0, 1)")
        if self.device not in DEVICES:
            raise bad("device", self.device, f"one of {', '.join(DEVICES)}")
        if self.amp not in AMP_MODES:
            raise bad("amp", self.amp, f"one of {', '.join(AMP_MODES)}")
        if self.channels_last not in (True, False, "auto"):
            raise bad("channels_last", self.channels_last, "true, false or auto")
        check_fraction("trainer.target_acc", self.target_acc, "the accuracy to reach")
        if not 0 <= self.label_smoothing < 1:
            raise bad("label_smoothing", self.label_smoothing, "in [0, 1)")
        es = self.early_stopping
        if es.monitor not in MONITORS:
            raise bad("early_stopping.monitor", es.monitor, f"one of {', '.join(MONITORS)}")
        if es.patience is not None and (not isinstance(es.patience, int) or es.patience < 1):
            raise bad("early_stopping.patience", es.patience, "a whole number >= 1, or null")
        if self.val_split == 0 and es.monitor.startswith("val/") and es.patience is not None:
            raise UserError("Early stopping watches the validation set, but trainer.val_split=0 "
                            "leaves none. Set trainer.val_split (e.g. 0.1) or "
                            "trainer.early_stopping.patience=null.")
