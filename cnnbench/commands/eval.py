"""`cnnbench eval checkpoint=PATH [dataset=... 'evaluation.shifts=[2,4]' trainer.device=cpu]`.

Rebuilds the model from the config stored in the checkpoint, loads its weights and evaluates it on
the test set (and the shifted test sets) without training. The results go into a new run
directory under outputs/eval/ with the same files a training run writes after its test: metrics.json
(with "kind": "eval"), confusion_matrix.png, misclassified.png and TensorBoard events (scalars and
pictures; no HParams session, which is for training runs).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from omegaconf import DictConfig, OmegaConf
from rich.console import Console

from cnnbench.boundary import Scope
from cnnbench.errors import UserError
from cnnbench.evaluation.pictures import CONFUSION_PNG, MISCLASSIFIED_PNG
from cnnbench.run.stored_config import safe_name, stored_config
from cnnbench.rundir import METRICS_FILE, Writer
from cnnbench.settings.config_files import config_dir, group_options
from cnnbench.settings.names import check_override_names, plain_group_choices
from cnnbench.settings.options import normalized

USAGE = """\
usage: cnnbench eval checkpoint=PATH [out=DIR] [key=value ...]

Evaluates a saved checkpoint (a best.pt/last.pt file, or a run directory) on the
test set and on the shifted test sets, without training. The model is rebuilt
from the config stored in the checkpoint. Overrides:
  dataset=NAME, dataset.KEY=VALUE  another dataset with the same image shape and
                                   classes, or e.g. dataset.root=/path/to/data
  evaluation.KEY=VALUE             e.g. 'evaluation.shifts=[1,2,3,4]'
  trainer.KEY=VALUE                e.g. trainer.device=cpu
  out=DIR                          the new run directory (default:
                                   outputs/eval/<time>_<model>_<dataset>_<id>)
"""
GROUPS = ("dataset", "evaluation")            # name=option swaps the whole config group
OVERRIDABLE = ("dataset", "evaluation", "trainer")


def parse_args(args: Sequence[str]) -> tuple[str, str | None, list[str]]:
    checkpoint, out, overrides = None, None, []
    args = plain_group_choices(normalized(args, valued=("out", "checkpoint")))
    check_override_names(args, "eval", own=("checkpoint", "out"))
    for arg in args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise UserError(f"'{arg}' is not a key=value argument.\n{USAGE}")
        if key == "checkpoint":
            checkpoint = value
        elif key == "out":
            out = value
        elif key.split(".")[0] in OVERRIDABLE:
            overrides.append(arg)
        else:
            raise UserError(f"'{arg}' cannot be changed by `cnnbench eval`: the model and its "
                            f"training options come from the checkpoint.\n{USAGE}")
    if not checkpoint:
        raise UserError(f"`cnnbench eval` needs checkpoint=PATH.\n{USAGE}")
    return checkpoint, out, overrides


def group_option(group: str, name: str) -> DictConfig:
    path = config_dir() / group / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"Unknown {group} '{name}'. Known: {', '.join(group_options(group))}.")
    return OmegaConf.create(path.read_text())


def effective_config(stored: str, overrides: Sequence[str],
                     source: Path | str = "the checkpoint") -> tuple[DictConfig, dict[str, str]]:
    """The checkpoint's config (read as data) with the user's overrides applied; also the group
    choices changed."""
    cfg = stored_config(stored, source)
    if "evaluation" not in cfg:  # checkpoints from before the evaluation group
        cfg.evaluation = group_option("evaluation", "default")
    choices = {}
    for arg in overrides:
        key, _, value = arg.partition("=")
        if key in GROUPS:
            cfg[key] = group_option(key, value)
            choices[key] = value
        else:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([arg]))
    return cfg, choices


def new_run_dir(model: str, dataset: str) -> Path:
    from cnnbench.rundir.naming import stamped

    return Path("outputs") / "eval" / stamped(safe_name(model), safe_name(dataset))


@dataclass
class Job:
    """A checkpoint's model, rebuilt and loaded, with the data and settings to evaluate it."""

    checkpoint: Path
    payload: dict[str, Any]
    cfg: DictConfig
    options: dict[str, Any]
    settings: Any          # TrainerSettings
    evaluation: Any        # EvaluationSettings
    runtime: Any           # Runtime
    data: Any              # ImageData
    model: Any             # nn.Module

    @property
    def title(self) -> str:
        return f"{self.options.get('model')} on {self.options['dataset']}"


def prepare(checkpoint: Path, overrides: Sequence[str]) -> Job:
    """Everything that can go wrong before a run directory is made (config, data, weights)."""
    from cnnbench.run.checkpoint import load_checkpoint

    payload = load_checkpoint(checkpoint)  # a path without a checkpoint is refused before torch
    import torch

    from cnnbench.data import load_dataset
    from cnnbench.engine.ema import averaged_weights
    from cnnbench.engine.runtime import make_runtime
    from cnnbench.run.build import build_model
    from cnnbench.run.trained import require_finite_model, weights_misfit
    from cnnbench.settings.evaluation import EvaluationSettings
    from cnnbench.settings.trainer import TrainerSettings

    if not isinstance(payload.get("config"), str) or not isinstance(payload.get("model"), dict):
        raise UserError(f"{checkpoint} has no stored config or model weights to rebuild from.")
    cfg, choices = effective_config(payload["config"], overrides, checkpoint)
    settings = TrainerSettings.from_config(OmegaConf.to_container(cfg.trainer, resolve=True))
    evaluation = EvaluationSettings.from_config(
        OmegaConf.to_container(cfg.evaluation, resolve=True))
    options = {**dict(payload.get("options") or {}), **choices}
    options.setdefault("dataset", cfg.dataset.get("name"))
    runtime = make_runtime(settings.device, settings.amp, settings.channels_last)
    data = load_dataset(**OmegaConf.to_container(cfg.dataset, resolve=True))
    weights = averaged_weights(payload)  # as training tested it
    why = weights_misfit(cfg.model, weights, in_channels=data.channels,
                         image_size=data.image_size, num_classes=data.num_classes)
    if why:  # found before the model takes any memory
        raise misfit(checkpoint, options, data, why)
    model = build_model(cfg, data, pretrained=False)  # the checkpoint's weights come next
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        raise misfit(checkpoint, options, data, str(err).splitlines()[0]) from None
    require_finite_model(model, checkpoint)
    model = model.to(runtime.device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return Job(checkpoint, payload, cfg, options, settings, evaluation, runtime, data, model)


def misfit(checkpoint: Path, options: dict[str, Any], data: Any, why: str) -> UserError:
    """The checkpoint's weights do not fit its model built for the data (`why` says how)."""
    return UserError(
        f"The weights in {checkpoint} do not fit a {options.get('model')} built for "
        f"{options['dataset']} ({data.channels}x{data.image_size[0]}x{data.image_size[1]} "
        f"images, {data.num_classes} classes): the dataset must have the image shape and "
        f"class count the model was trained on. ({why})")


def run(job: Job, run_dir: Path, console: Console) -> dict[str, Any]:
    """Test loss/accuracy and everything `evaluate_test_set` does, from one pass over the test
    set; returns the metrics. Its TensorBoard events hold the test scalars and pictures but no
    HParams session: an evaluation is not a training run, and TensorBoard's HParams table
    lists training runs only (the evaluated run is there with its own test metrics)."""
    from torch import nn

    from cnnbench.engine.finite import NotFinite
    from cnnbench.evaluation.evaluate import evaluate_test_set
    from cnnbench.run.sinks import TensorBoardSink
    from cnnbench.rundir import TB_DIR

    s = job.settings
    tb = TensorBoardSink(run_dir / TB_DIR)
    try:
        report = evaluate_test_set(job.model, job.data, job.runtime, job.evaluation, run_dir,
                                   batch_size=s.eval_batch_size,
                                   loss_fn=nn.CrossEntropyLoss(label_smoothing=s.label_smoothing),
                                   tb=tb, step=int(job.payload.get("epoch") or 0),
                                   console=console, title=job.title)
    except NotFinite as err:
        amp_on = job.runtime.amp_dtype is not None
        todo = ("; try trainer.amp=off" if amp_on else
                ": its weights, though finite, are too large for this data, a sign of a "
                "training that was diverging; evaluate an earlier checkpoint of the run")
        raise UserError(f"{job.checkpoint} cannot be evaluated: {err}, so it has no test "
                        f"result (its computation overflows on this data{todo}).") from None
    tb.close()
    return report.metrics


EVAL_FILES = (METRICS_FILE, "eval_config.yaml", CONFUSION_PNG, MISCLASSIFIED_PNG)


def claim_run_dir(run_dir: Path) -> Writer:
    """The writer of eval's run directory, every file it writes there checked first: a new
    folder, or one an earlier `cnnbench eval` wrote; never a training run's directory, nor a
    folder inside any run's (runs hold no nested runs: compare would not find it there)."""
    from cnnbench.rundir import (
        CHECKPOINT_DIR,
        HYDRA_DIR,
        claim_outputs,
        enclosing_run,
        metrics_file,
    )
    from cnnbench.rundir.naming import free_beside
    from cnnbench.rundir.policy import is_training_record

    if (run_dir / CHECKPOINT_DIR).is_dir() or (run_dir / HYDRA_DIR).is_dir():
        raise UserError(f"{run_dir} holds a training run, and cnnbench eval never writes into "
                        f"another run's directory: give it a folder of its own with out=DIR (a "
                        f"new one, or an earlier output of cnnbench eval), or leave out= off.")
    outer = enclosing_run(run_dir)
    if outer is not None:
        beside = free_beside(outer, run_dir.name)
        raise UserError(f"out={run_dir} is inside the run directory {outer}, and runs hold no "
                        f"nested runs: `cnnbench compare` reads {outer} as that one run and "
                        f"would never find this evaluation. Give it a folder of its own, e.g. "
                        f"out={beside} (or leave out= off).")
    return claim_outputs(run_dir, "eval", EVAL_FILES,
                         lambda folder: metrics_file(folder).is_file()
                         and not is_training_record(metrics_file(folder)))


def evaluate_checkpoint(args: Sequence[str], console: Console,
                        scope: Scope | None = None) -> dict[str, Any]:
    """The evaluation; its metrics.json is `scope`'s (the CLI's error boundary ends it when the
    evaluation does not: interrupted, or failed with the reason). The command line is
    checked before torch is imported."""
    checkpoint, out, overrides = parse_args(args)
    job = prepare(Path(checkpoint), overrides)
    from cnnbench.models import count_parameters
    from cnnbench.run.sinks import print_paths, summary_table
    from cnnbench.rundir import RunLock

    run_dir = Path(out) if out else new_run_dir(job.options.get("model", "model"),
                                                job.options["dataset"])
    writer = claim_run_dir(run_dir)
    metrics: dict[str, Any] = {
        "status": "running", "kind": "eval", **job.options,
        "checkpoint": str(Path(checkpoint).resolve()), "checkpoint_epoch": job.payload.get("epoch"),
        "command": " ".join(["cnnbench eval", *args]), "run_dir": str(run_dir),
        "params": count_parameters(job.model), "device": job.runtime.device_name,
        "amp": job.runtime.amp_name, "test_size": len(job.data.test), "classes": job.data.classes,
    }
    with RunLock(run_dir, command="eval"):
        metrics = record_run(job, run_dir, metrics, writer, console, scope)
    console.print(summary_table(f"{job.title} (checkpoint)", {
        "test accuracy": f"{100 * metrics['test/acc']:.2f}%",
        "test loss": f"{metrics['test/loss']:.4f}",
        **{f"{k.split('/')[1]} shift accuracy": f"{100 * v:.2f}%" for k, v in metrics.items()
           if k.startswith("shift/")}}))
    print_paths(console, {"checkpoint": checkpoint, "run directory": run_dir})
    return metrics


def record_run(job: Job, run_dir: Path, metrics: dict[str, Any], writer: Writer,
               console: Console, scope: Scope | None = None) -> dict[str, Any]:
    """The evaluation, with its record (metrics.json) and config written as it goes; the record
    is `scope`'s (the CLI's error boundary ends it when the evaluation does not: interrupted, or
    failed with the reason)."""
    from cnnbench.rundir import COMPLETED, RunRecord, write_with

    record = (scope or Scope()).track(RunRecord(run_dir, metrics, by=writer))
    record.update()
    write_with(run_dir / "eval_config.yaml", lambda tmp: OmegaConf.save(job.cfg, tmp), writer)
    record.phase("testing")
    record.metrics.update(run(job, run_dir, console))
    record.finish(COMPLETED)
    return record.metrics


def main(args: Sequence[str], console: Console, scope: Scope | None = None) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        console.print(USAGE, highlight=False, markup=False, soft_wrap=True)
        return 0 if args else 2
    evaluate_checkpoint(args, console, scope)
    return 0
