"""Scale-out: parallel sweeps, Optuna search, the Slurm launcher config, DDP with gloo
(one result for 1 or 2 processes, the same augmented images, SyncBatchNorm)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from cnnbench.data import DeviceLoader, Split, StreamingLoader
from cnnbench.engine.augment import BatchAugment
from cnnbench.engine.distributed import DistInfo, sync_batchnorm
from cnnbench.errors import UserError
from cnnbench.models import build_model, model_config
from cnnbench.settings.config_files import compose_config
from cnnbench.settings.trainer import TrainerSettings

TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.epochs=1"]


def jobs_of(tmp_path: Path) -> list[Path]:
    sweep = next((tmp_path / "outputs" / "multirun").iterdir())
    return sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())


def test_parallel_launcher_runs_jobs_side_by_side(tmp_path, cli):
    proc = cli("train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *TINY,
               "model=mlp,lenet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = jobs_of(tmp_path)
    assert len(jobs) == 2
    metrics = [json.loads((j / "metrics.json").read_text()) for j in jobs]
    assert {m["model"] for m in metrics} == {"mlp", "lenet"}
    assert all(m["status"] == "completed" for m in metrics)
    # the jobs ran in worker processes, not in the command's own process
    hydra_cfg = yaml.safe_load((jobs[0] / ".hydra" / "hydra.yaml").read_text())["hydra"]
    assert hydra_cfg["launcher"]["_target_"].endswith("cnnbench_launcher.parallel_launcher."
                                                      "ParallelLauncher")
    assert hydra_cfg["launcher"]["n_jobs"] == 2


def test_parallel_launcher_default_jobs():
    import cnnbench.commands.train.app  # noqa: F401  (registers the launcher's resolvers)

    cfg = compose_config(["hydra/launcher=parallel"], return_hydra_config=True)
    n_jobs = cfg.hydra.launcher.n_jobs
    assert 1 <= n_jobs <= min(4, os.cpu_count() or 1)


def test_failed_parallel_job_is_reported(tmp_path, cli):
    proc = cli("train", "-m", "hydra/launcher=parallel", "hydra.launcher.n_jobs=2", *TINY,
               "trainer.batch_size=0,64", cwd=tmp_path)
    assert proc.returncode != 0
    statuses = sorted(json.loads((j / "metrics.json").read_text())["status"]
                      for j in jobs_of(tmp_path))
    assert statuses == ["completed", "failed"]


def test_optuna_search_preset_composes():
    cfg = compose_config(["hparams_search=lenet_mnist"], return_hydra_config=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert sweeper.direction == "maximize" and sweeper.n_trials == 20
    assert set(sweeper.params) == {"optimizer", "optimizer.lr", "optimizer.weight_decay",
                                   "trainer.batch_size"}
    assert cfg.model._target_.endswith("LeNet5") and cfg.dataset.name == "mnist"


def test_optuna_search_runs_and_maximizes_validation_accuracy(tmp_path, cli):
    search_args = [a for a in TINY if not a.startswith("trainer.batch_size")]
    proc = cli("train", "hparams_search=lenet_mnist", *search_args, "hydra.sweeper.n_trials=3",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = jobs_of(tmp_path)
    assert len(jobs) == 3
    results = yaml.safe_load((jobs[0].parent / "optimization_results.yaml").read_text())
    best_val = max(json.loads((j / "metrics.json").read_text())["best_val_acc"] for j in jobs)
    assert results["best_value"] == best_val
    assert set(results["best_params"]) == {"optimizer", "optimizer.lr",
                                           "optimizer.weight_decay", "trainer.batch_size"}


def test_slurm_launcher_composes():
    cfg = compose_config(["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                         return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.partition == "gpu" and launcher.gpus_per_node == 1
    assert launcher.timeout_min > 0


def test_ddp_two_processes_with_gloo_match_one_process(tmp_path, cli):
    """torchrun with 2 CPU processes: one run directory, global metrics, same result as 1."""
    single = tmp_path / "single"
    single.mkdir()
    args = ["dataset=synthetic", "dataset.train_size=512", "dataset.test_size=256",
            "trainer.batch_size=64", "trainer.device=cpu", "trainer.epochs=2",
            "trainer.progress=false", "trainer.sync_batchnorm=true"]  # on CPU: skipped, no crash
    cli("train", *args, cwd=single, check=True)
    one = json.loads(next((single / "outputs" / "runs").glob("*/metrics.json")).read_text())
    assert one["sync_batchnorm"].startswith("skipped: one process")

    ddp = tmp_path / "ddp"
    ddp.mkdir()
    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    proc = subprocess.run([torchrun, "--standalone", "--nproc-per-node=2", "-m", "cnnbench",
                           "train", *args], cwd=ddp, capture_output=True, text=True,
                          timeout=600, env={**os.environ, "CNNBENCH_DIST_BACKEND": "gloo"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = list((ddp / "outputs" / "runs").iterdir())
    assert len(runs) == 1  # both ranks wrote into one directory, and only rank 0 wrote
    two = json.loads((runs[0] / "metrics.json").read_text())
    assert two["world_size"] == 2 and two["status"] == "completed"
    assert two["sync_batchnorm"].startswith("skipped: SyncBatchNorm needs CUDA (device cpu)")
    assert proc.stdout.count("warning: trainer.sync_batchnorm=true skipped") == 1  # rank 0 only
    assert abs(two["test/acc"] - one["test/acc"]) <= 0.02
    assert abs(two["test/loss"] - one["test/loss"]) <= 0.02
    assert len((runs[0] / "history.csv").read_text().splitlines()) == 3


# -- DDP: every image augmented as in one process ---------------------------------------------

@pytest.mark.parametrize("loader", ["device", "device-per-batch", "streaming"])
def test_ddp_ranks_see_the_augmented_images_of_one_process(loader):
    """With the same seed and global batch, rank r's batch is every world_size-th image of the
    one-process batch from r on, augmented with the same parameters (crop, flip, rotation,
    erasing): 2 processes train on exactly the images 1 process does."""
    g = torch.Generator().manual_seed(0)
    split = Split(torch.randint(0, 256, (203, 3, 8, 8), dtype=torch.uint8, generator=g),
                  torch.arange(203) % 10)  # 203 = 6 x 32 + 11: an odd last batch (6 + 5)
    aug = BatchAugment(flip=True, crop_padding=2, rotation=10, erasing=0.5)
    make = {"device": DeviceLoader, "device-per-batch": DeviceLoader,
            "streaming": lambda *a, **k: StreamingLoader(*a, num_workers=0, **k)}[loader]

    def epochs(rank: int, world_size: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        it = make(split, 32, torch.device("cpu"), (0.5,) * 3, (0.25,) * 3, shuffle=True,
                  seed=5, augment=aug, rank=rank, world_size=world_size)
        if loader == "device":  # each process prepares its share of the epoch at once
            assert it.whole_epoch
        elif loader == "device-per-batch":
            it.whole_epoch = False
        return [(x.clone(), y.clone()) for _ in range(2) for x, y in it]

    one, rank0, rank1 = epochs(0, 1), epochs(0, 2), epochs(1, 2)
    assert len(one) == len(rank0) == len(rank1) == 2 * 7
    for (x, y), (x0, y0), (x1, y1) in zip(one, rank0, rank1):
        assert torch.equal(y0, y[0::2]) and torch.equal(y1, y[1::2])
        assert torch.equal(x0, x[0::2]) and torch.equal(x1, x[1::2])
    assert not torch.equal(one[0][0], one[7][0])  # new draws every epoch


def test_per_batch_augmentation_callables_keep_a_generator_per_rank():
    """A plain callable (no draw/apply) augments only the rank's images: ranks must not repeat
    each other's random numbers."""
    split = Split(torch.zeros(8, 1, 4, 4, dtype=torch.uint8), torch.zeros(8, dtype=torch.long))

    def noise(x, gen):
        return x + torch.rand(x.shape, generator=gen)

    a, b = (DeviceLoader(split, 4, torch.device("cpu"), (0.0,), (1.0,), shuffle=True, seed=1,
                         augment=noise, rank=r, world_size=2) for r in (0, 1))
    assert not torch.equal(next(iter(a))[0], next(iter(b))[0])


# -- trainer.sync_batchnorm -------------------------------------------------------------------

def test_sync_batchnorm_setting():
    assert compose_config([]).trainer.sync_batchnorm is False
    assert TrainerSettings.from_config({"sync_batchnorm": True}).sync_batchnorm is True
    with pytest.raises(UserError, match="trainer.sync_batchnorm='yes' is not valid"):
        TrainerSettings.from_config({"sync_batchnorm": "yes"})


def batchnorms(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@pytest.mark.parametrize("name, eps, momentum", [("vgg", 1e-3, 0.01),  # Keras-default BN
                                                  ("resnet18", 1e-5, 0.1)])
def test_sync_batchnorm_converts_every_batchnorm(name, eps, momentum):
    model = build_model(model_config(name), in_channels=3, image_size=[32, 32], num_classes=10)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count = len(batchnorms(model))
    assert count > 0
    two = DistInfo(rank=0, world_size=2)
    converted, status = sync_batchnorm(model, two, torch.device("cuda", 0))  # no GPU needed
    assert status == "on"
    layers = batchnorms(converted)
    assert len(layers) == count and all(type(m) is nn.SyncBatchNorm for m in layers)
    assert all(m.eps == eps and m.momentum == momentum for m in layers)
    after = converted.state_dict()  # same keys and values: checkpoints load either way
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)


def test_sync_batchnorm_changes_nothing_in_one_process_or_off_cuda():
    model = build_model(model_config("vgg"), in_channels=3, image_size=[32, 32], num_classes=10)
    same, status = sync_batchnorm(model, DistInfo(), torch.device("cuda", 0))
    assert same is model and status.startswith("skipped: one process")
    same, status = sync_batchnorm(model, DistInfo(rank=1, world_size=2), torch.device("cpu"))
    assert same is model and status.startswith("skipped: SyncBatchNorm needs CUDA (device cpu)")
    assert not any(type(m) is nn.SyncBatchNorm for m in model.modules())
    lenet = build_model(model_config("lenet"), in_channels=1, image_size=[28, 28], num_classes=10)
    same, status = sync_batchnorm(lenet, DistInfo(rank=0, world_size=2), torch.device("cuda", 0))
    assert same is lenet and status == "skipped: the model has no BatchNorm layers"


def test_sync_batchnorm_raises_in_training_on_cpu(tmp_path):
    """Why CPU runs skip the conversion: PyTorch's SyncBatchNorm refuses CPU tensors in training
    as soon as a process group exists (gloo included)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        layer = nn.SyncBatchNorm(3).train()
        with pytest.raises(ValueError, match="SyncBatchNorm expected input tensor to be on GPU"):
            layer(torch.randn(4, 3, 2, 2))
        layer.eval()(torch.randn(4, 3, 2, 2))  # evaluation never synchronizes
    finally:
        dist.destroy_process_group()


# -- trainer.ddp_comm_hook --------------------------------------------------------------------

def test_ddp_comm_hook_setting():
    assert compose_config([]).trainer.ddp_comm_hook is None
    assert TrainerSettings.from_config({"ddp_comm_hook": "bf16"}).ddp_comm_hook == "bf16"
    with pytest.raises(UserError, match="trainer.ddp_comm_hook='int8' is not valid: .*bf16 or fp16"):
        TrainerSettings.from_config({"ddp_comm_hook": "int8"})


@pytest.mark.parametrize("hook,dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
def test_ddp_comm_hook_sends_16_bit_gradients(tmp_path, hook, dtype):
    """With a compression hook the all-reduced gradients are the 16-bit roundings of the plain ones
    (one process: the average of one); without it they are the plain ones."""
    import torch.distributed as dist

    from cnnbench.engine.distributed import wrap_model

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    try:
        torch.manual_seed(0)
        plain = nn.Linear(7, 3)
        x = torch.randn(5, 7)
        plain(x).pow(2).sum().backward()
        grads = {}
        for name in (None, hook):
            model = nn.Linear(7, 3)
            model.load_state_dict(plain.state_dict())
            ddp = wrap_model(model, DistInfo(rank=0, world_size=2), torch.device("cpu"), name)
            ddp(x).pow(2).sum().backward()
            grads[name] = model.weight.grad
        assert torch.equal(grads[None], plain.weight.grad)
        assert torch.equal(grads[hook], plain.weight.grad.to(dtype).float())
        assert not torch.equal(grads[hook], plain.weight.grad)
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("n", [203, 193])  # 193 = 6 x 32 + 1: a last batch too small for 2 ranks
@pytest.mark.parametrize("augment", [None, BatchAugment(flip=True, crop_padding=2)])
def test_ddp_whole_epoch_share_equals_per_batch_gathering(n, augment):
    """Each process preparing its share of the whole epoch at once gives the batches it would
    gather one by one (same images, augmentation, labels, batch count and sizes)."""
    g = torch.Generator().manual_seed(1)
    split = Split(torch.randint(0, 256, (n, 1, 6, 6), dtype=torch.uint8, generator=g),
                  torch.arange(n) % 10)
    for rank in (0, 1):
        loaders = [DeviceLoader(split, 32, torch.device("cpu"), (0.5,), (0.25,), shuffle=True,
                                seed=3, augment=augment, rank=rank, world_size=2,
                                channels_last=True) for _ in range(2)]
        loaders[1].whole_epoch = False
        whole, per_batch = ([(x.clone(), y.clone()) for _ in range(2) for x, y in it]
                            for it in loaders)
        assert len(whole) == len(per_batch) == 2 * len(loaders[0])
        for (xa, ya), (xb, yb) in zip(whole, per_batch):
            assert torch.equal(ya, yb) and torch.equal(xa, xb)
