"""model=timm: timm's models by name, sized for the dataset, from pretrained weights read as data.

Two of timm's small test models stand in for the big ones (a ResNet and a ViT; the code paths are
timm's own). The fine-tuning test builds its own "pretrained" weights: a ResNet trained here to
tell the orientation of striped pictures, saved as .safetensors; fine-tuned from them on a few
noisy gray pictures it must beat the same run from a random start."""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnbench.errors import UserError
from cnnbench.models import build_model

TIMM = {"_target_": "cnnbench.models.timm_net.timm_model", "name": "test_resnet"}
CPU = ["trainer.device=cpu", "trainer.progress=false", "evaluation.plots=false",
       "evaluation.shifts=[]"]


def timm_model(in_channels=1, image_size=(28, 28), num_classes=10, **options):
    return build_model({**TIMM, **options}, in_channels=in_channels, image_size=image_size,
                       num_classes=num_classes)


def stripes(n: int, angles: list[float], seed: int, noise: float, size: int = 32):
    """Gray pictures of stripes (random frequency, phase and noise); class i is angles[i]."""
    g = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    labels = np.arange(n) % len(angles)
    images = []
    for label in labels:
        angle = angles[label] + g.normal(0, 0.08)
        wave = np.sin(g.uniform(0.25, 0.6) * (xx * np.cos(angle) + yy * np.sin(angle))
                      + g.uniform(0, 2 * np.pi))
        images.append(np.clip((0.5 + 0.35 * wave + g.normal(0, noise, (size, size))) * 255, 0, 255))
    return np.stack(images).astype(np.uint8), labels


@pytest.fixture(scope="module")
def stripe_weights(tmp_path_factory) -> Path:
    """test_resnet trained (RGB, 4 classes: four stripe orientations), saved as .safetensors."""
    import timm
    from safetensors.torch import save_file

    images, labels = stripes(960, [0, np.pi / 2, np.pi / 4, 3 * np.pi / 4], seed=0, noise=0.25)
    x = torch.tensor(images).float().div(255).sub(0.5).div(0.25).unsqueeze(1).repeat(1, 3, 1, 1)
    y = torch.tensor(labels)
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", num_classes=4, in_chans=3)
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(1):
        for batch in torch.randperm(len(x)).split(32):
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    path = tmp_path_factory.mktemp("weights") / "stripes.safetensors"
    save_file(model.state_dict(), str(path))
    return path


@pytest.fixture(scope="module")
def stripe_folder(tmp_path_factory) -> Path:
    """An image folder: 16 noisy gray training pictures of two orientations, 100 test ones."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stripes")
    for split, n, seed in (("train", 16, 1), ("test", 100, 2)):
        images, labels = stripes(n, [0, np.pi / 2], seed=seed, noise=0.7)
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = root / split / ("across", "along")[label]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image, "L").save(folder / f"{i}.png")
    return root


# -- building ---------------------------------------------------------------------------------


def test_models_are_built_for_the_datasets_shape():
    resnet = timm_model(in_channels=1, image_size=(28, 28), num_classes=10)
    assert resnet(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    vit = timm_model(name="test_vit", in_channels=3, image_size=(32, 32), num_classes=7)
    assert vit(torch.zeros(2, 3, 32, 32)).shape == (2, 7)  # img_size given: 2x2 patches
    assert vit.patch_embed.img_size == (32, 32)
    assert resnet.pretrained_weights is None and vit.pretrained_weights is None


@pytest.mark.parametrize("name,expected", [
    ("resnet18x", "Close names: resnet18"),
    ("hf-hub:timm/resnet18.a1_in1k", "never hub or file references"),
    ("local-dir:/tmp/model", "never hub or file references"),
    ("resnet18.no_such_tag", "no pretrained tag 'no_such_tag'"),
    ("", "not a timm model name"),
    (7, "model.name is refused: 7 is not of the type"),
])
def test_only_names_of_timms_registry_are_built(name, expected):
    with pytest.raises(UserError, match=expected):
        timm_model(name=name)


@pytest.mark.parametrize("options,expected", [
    ({"pretrained_cfg_overlay": "x"}, "has no option 'pretrained_cfg_overlay'"),
    ({"pretrained": {"_target_": "os.system"}}, "nested mapping"),
    ({"num_classes": 3}, "comes from the dataset"),
])
def test_a_stored_config_cannot_pass_anything_else_to_timm(options, expected):
    with pytest.raises(UserError, match=expected):
        build_model({**TIMM, **options}, in_channels=1, image_size=(28, 28), num_classes=10)


def test_an_input_the_model_cannot_take_is_one_paragraph():
    with pytest.raises(UserError) as err:
        timm_model(name="test_vit", in_channels=1, image_size=(28, 28))
    text = str(err.value)
    assert "cannot take 1x28x28 images" in text and "divisible by patch size" in text
    assert "dataset.image_size" in text and "\n" not in text


# -- pretrained weights -----------------------------------------------------------------------


def test_weights_from_safetensors_and_checkpoints_start_the_backbone(tmp_path):
    source = timm_model(in_channels=3, image_size=(32, 32), num_classes=4)
    from safetensors.torch import save_file

    save_file(source.state_dict(), str(tmp_path / "w.safetensors"))
    nested = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()},
              "epoch": 3}
    torch.save(nested, tmp_path / "w.pth")
    for file in (tmp_path / "w.safetensors", tmp_path / "w.pth"):
        model = timm_model(pretrained=str(file), in_channels=1, num_classes=10)
        assert torch.equal(model.layer1[0].conv1.weight, source.layer1[0].conv1.weight)
        # the first layer adapted to one channel by timm (RGB kernels summed)
        assert torch.allclose(model.conv1[0].weight, source.conv1[0].weight.sum(1, keepdim=True))
        assert model.fc.weight.shape == (10, source.fc.weight.shape[1])  # a new head
        origin = model.pretrained_weights
        assert origin["path"] == str(file) and origin["source"] == "file"
        assert origin["sha256"] == hashlib.sha256(file.read_bytes()).hexdigest()
    same_classes = timm_model(pretrained=str(tmp_path / "w.pth"), in_channels=3,
                              image_size=(32, 32), num_classes=4)
    assert not torch.equal(same_classes.fc.weight, source.fc.weight)  # the head always starts afresh


def test_vit_weights_fit_another_image_size(tmp_path):
    from safetensors.torch import save_file

    source = timm_model(name="test_vit", in_channels=3, image_size=(32, 32), num_classes=4)
    save_file(source.state_dict(), str(tmp_path / "vit.safetensors"))
    model = timm_model(name="test_vit", pretrained=str(tmp_path / "vit.safetensors"),
                       in_channels=3, image_size=(48, 48), num_classes=5)
    assert model.pos_embed.shape[1] == source.pos_embed.shape[1] + 5  # 3x3 patches, resampled
    assert torch.equal(model.blocks[0].attn.qkv.weight, source.blocks[0].attn.qkv.weight)


class RunsCode:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    vit = timm_model(name="test_vit", in_channels=3, image_size=(32, 32), num_classes=4)
    torch.save(vit.state_dict(), tmp_path / "vit.pth")
    with open(tmp_path / "code.pth", "wb") as f:
        pickle.dump({"conv1.0.weight": RunsCode(tmp_path / "ran")}, f)
    (tmp_path / "damaged.safetensors").write_bytes(os.urandom(300))
    torch.save({"conv1.0.weight": torch.zeros(1), "note": "text"}, tmp_path / "text.pth")
    (tmp_path / "weights.txt").write_text("not weights")
    (tmp_path / "folder.pth").mkdir()
    return {
        "another architecture": (tmp_path / "vit.pth", "probably the weights of another"),
        "a pickle that runs code": (tmp_path / "code.pth", "loading it would run code"),
        "damaged": (tmp_path / "damaged.safetensors", "damaged or not a weights file"),
        "not only tensors": (tmp_path / "text.pth", "'note' is a str, not a tensor"),
        "wrong suffix": (tmp_path / "weights.txt", "'.txt' is none of"),
        "a folder": (tmp_path / "folder.pth", "is a folder"),
        "missing": (tmp_path / "nowhere.safetensors", "does not exist"),
    }


def test_unusable_weights_are_one_paragraph_and_run_nothing(tmp_path):
    for case, (path, expected) in bad_files(tmp_path).items():
        with pytest.raises(UserError) as err:
            timm_model(pretrained=str(path))
        assert expected in str(err.value), case
        assert "\n" not in str(err.value), case
    assert not (tmp_path / "ran").exists()


def fill_hf_cache(cache: Path, repo: str, weights: Path) -> Path:
    """The layout huggingface_hub leaves after a download: refs/main, snapshots/<commit>/."""
    folder = cache / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    (folder / "snapshots" / commit).mkdir(parents=True)
    target = folder / "snapshots" / commit / "model.safetensors"
    target.write_bytes(weights.read_bytes())
    return target


def test_pretrained_true_reads_the_local_cache_and_never_downloads(tmp_path, monkeypatch,
                                                                   stripe_weights):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    with pytest.raises(UserError) as err:
        timm_model(pretrained=True)
    text = str(err.value)
    assert "never downloads" in text and str(tmp_path / "hub") in text
    assert "timm/test_resnet.r160_in1k" in text and "model.pretrained=/path/to" in text
    cached = fill_hf_cache(tmp_path / "hub", "timm/test_resnet.r160_in1k", stripe_weights)
    model = timm_model(pretrained=True)
    assert model.pretrained_weights["source"] == "huggingface cache"
    assert Path(model.pretrained_weights["path"]) == cached


def test_models_lists_timms_models_with_their_size(cli, tmp_path):
    proc = cli("models", "--timm", "test_res*", "dataset=cifar10", "json=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {r["model"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"test_resnet"}
    assert rows["test_resnet"]["params"] == sum(
        p.numel() for p in timm_model(in_channels=3, image_size=(32, 32)).parameters())
    assert rows["test_resnet"]["output_shape"] == [10]
    assert rows["test_resnet"]["summary"] == "pretrained: r160_in1k"
    proc = cli("models", "--timm", "test_vit", cwd=tmp_path)  # MNIST: 28x28
    assert proc.returncode == 0 and "cannot take 1x28x28" in proc.stdout
    proc = cli("models", "--timm", "nothing_like_this*", cwd=tmp_path)
    assert proc.returncode != 0 and "No timm model name matches" in proc.stdout + proc.stderr


def test_a_model_that_cannot_take_the_input_is_one_line_below_the_table(cli, tmp_path):
    listed = cli("models", "--timm", "test_*", "json=true", cwd=tmp_path)  # MNIST: 28x28
    failed = {r["model"]: r["error"] for r in json.loads(listed.stdout) if r["error"]}
    assert "test_vit" in failed and "test_resnet" not in failed, failed
    shown = cli("models", "--timm", "test_*", cwd=tmp_path).stdout
    lines = shown.splitlines()
    for name, error in failed.items():
        own = [line for line in lines if name in line.split(":")[0].split()]
        assert own == [f"{name}: {error}"], own  # one line, no row in the table
        assert "\n" not in error and len(error) < 200
    assert f"{len(failed)} of " in shown and "models cannot be built or run for 1x28x28" in shown


def test_an_errors_last_line_is_kept_and_shortened():
    from cnnbench.commands.models import last_line

    err = RuntimeError("Given groups=1, weight of size [8, 3, 3, 3]\n\nthe specific reason " + "x" * 300)
    text = last_line(err, limit=60)
    assert text.startswith("the specific reason") and len(text) == 60 and text.endswith("…")
    assert last_line(ValueError("")) == "ValueError"


@pytest.mark.parametrize("name", ["test_resnet", "test_vit", "test_efficientnet"])
def test_the_listing_counts_on_meta_what_a_real_build_has(name):
    from cnnbench.commands.models import ZooRow, sized
    from cnnbench.data.shapes import InputShape
    from cnnbench.models import model_config

    cfg, shape = model_config("timm"), InputShape(3, 64, 64, 7)
    cfg.name = name
    meta = sized(ZooRow(name, None, None, "timm", ""), cfg, shape)
    real = sized(ZooRow(name, None, None, "timm", ""), cfg, shape, device="cpu")
    assert meta.error is None and real.error is None, (meta.error, real.error)
    assert (meta.params, meta.output_shape) == (real.params, real.output_shape)
    assert meta.output_shape == [7]


# -- training, fine-tuning, resume, eval, predict, export -------------------------------------


def metrics_of(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


@pytest.fixture(scope="module")
def fine_tuned(tmp_path_factory, stripe_weights, stripe_folder) -> dict[str, Path]:
    """The same fine-tuning run from the stripe weights and from a random start."""
    from conftest import run_cli

    cwd = tmp_path_factory.mktemp("fine_tune")
    common = ["dataset=imagefolder", f"dataset.path={stripe_folder}", "model=timm",
              "model.name=test_resnet", "trainer.epochs=5", "trainer.val_split=0",
              "trainer.batch_size=8", "optimizer.lr=0.003", *CPU]
    runs = {}
    for start, weights in (("pretrained", str(stripe_weights)), ("random", "null")):
        run_cli("train", *common, f"model.pretrained={weights}", f"hydra.run.dir={start}",
                cwd=cwd, check=True)
        runs[start] = cwd / start
    return runs


def test_fine_tuning_from_weights_beats_a_random_start(fine_tuned, stripe_weights):
    pretrained, random = metrics_of(fine_tuned["pretrained"]), metrics_of(fine_tuned["random"])
    assert pretrained["status"] == random["status"] == "completed"
    assert pretrained["test/acc"] >= 0.8, pretrained["test/acc"]
    assert pretrained["test/acc"] >= random["test/acc"] + 0.2, (pretrained, random)
    origin = pretrained["pretrained"]
    assert origin["sha256"] == hashlib.sha256(stripe_weights.read_bytes()).hexdigest()
    assert origin["path"] == str(stripe_weights) and origin["channels"] == 3
    assert random.get("pretrained") is None
    assert pretrained["model"] == "timm/test_resnet"
    assert "starting from pretrained weights" in (fine_tuned["pretrained"] / "train.log").read_text()


def test_a_fine_tuned_model_is_evaluated_predicted_and_exported(fine_tuned, stripe_folder, cli,
                                                                 tmp_path):
    run = fine_tuned["pretrained"]
    expected = metrics_of(run)["test/acc"]
    proc = cli("eval", f"checkpoint={run / 'checkpoints' / 'last.pt'}", "evaluation.plots=false",
               "evaluation.shifts=[]", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"{100 * expected:.2f}%" in proc.stdout
    proc = cli("predict", f"checkpoint={run}", f"inputs={stripe_folder / 'test' / 'along'}",
               f"out={tmp_path / 'predicted'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = (tmp_path / "predicted" / "predictions.csv").read_text().splitlines()[1:]
    assert len(rows) == 50 and sum(",along," in r for r in rows) >= 40
    proc = cli("export", f"checkpoint={run}", f"out={tmp_path / 'model.onnx'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "vs PyTorch" in proc.stdout and (tmp_path / "model.onnx").is_file()


def test_interrupted_fine_tuning_resumes_exactly_without_its_weights_file(
        tmp_path, cli, stripe_weights):
    from test_reliability import only_run, start, wait_for_epochs

    weights = tmp_path / "weights.safetensors"
    weights.write_bytes(stripe_weights.read_bytes())
    common = ["dataset=synthetic", "dataset.train_size=640", "dataset.test_size=64",
              "trainer.batch_size=32", "trainer.epochs=3", "model=timm", "model.name=test_resnet",
              f"model.pretrained={weights}", "augmentation=flip_crop", *CPU]
    straight = tmp_path / "straight"
    straight.mkdir()
    cli("train", *common, cwd=straight, check=True)
    expected = metrics_of(only_run(straight))

    broken = tmp_path / "broken"
    broken.mkdir()
    proc = start(broken, *common)
    wait_for_epochs(broken, proc, 1)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    run = only_run(broken)
    stopped_at = metrics_of(run)["epochs_run"]
    assert 1 <= stopped_at < 3, "the signal came too late to test a resume"
    weights.unlink()  # a resume takes the weights from its checkpoint
    command = next(line for line in out.splitlines() if "trainer.resume=" in line)
    assert "cnnbench train" in command
    cli("train", f"trainer.resume={run}", cwd=broken, check=True)
    resumed = metrics_of(run)
    assert resumed["status"] == "completed" and resumed["resumed_from_epoch"] == stopped_at
    assert (resumed["test/acc"], resumed["test/loss"]) == (expected["test/acc"],
                                                           expected["test/loss"])
    assert resumed["pretrained"]["sha256"] == expected["pretrained"]["sha256"]


def test_a_vit_trains_with_weight_averaging_on_resized_synthetic_data(tmp_path, cli):
    proc = cli("train", "model=timm", "model.name=test_vit", "dataset=synthetic",
               "dataset.channels=3", "dataset.image_size=32", "dataset.train_size=256",
               "dataset.test_size=64", "trainer.epochs=2", "trainer.ema_decay=0.9",
               "hydra.run.dir=vit", *CPU, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = metrics_of(tmp_path / "vit")
    assert metrics["status"] == "completed" and 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["model"] == "timm/test_vit"


def test_a_doctored_checkpoint_cannot_make_timm_fetch_a_model(fine_tuned, tmp_path, cli):
    from cnnbench.run.checkpoint import load_checkpoint

    payload = load_checkpoint(fine_tuned["pretrained"] / "checkpoints" / "last.pt")
    payload["config"] = payload["config"].replace("name: test_resnet",
                                                  "name: hf-hub:attacker/model")
    assert "hf-hub:attacker/model" in payload["config"]
    torch.save(payload, tmp_path / "doctored.pt")
    proc = cli("eval", f"checkpoint={tmp_path / 'doctored.pt'}", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" not in proc.stdout + proc.stderr
    assert "never hub or file references" in proc.stdout + proc.stderr


def test_ddp_fine_tunes_a_timm_model_in_two_processes(tmp_path, stripe_weights):
    """torchrun with 2 CPU processes (gloo): each builds the model from the weights file, rank
    0 writes the one run directory."""
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun"
    proc = subprocess.run(
        [torchrun, "--standalone", "--nproc-per-node=2", "-m", "cnnbench", "train",
         "model=timm", "model.name=test_resnet", f"model.pretrained={stripe_weights}",
         "dataset=synthetic", "dataset.channels=3", "dataset.image_size=32",
         "dataset.train_size=256", "dataset.test_size=64", "trainer.batch_size=32",
         "trainer.epochs=1", "hydra.run.dir=ddp", *CPU],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "CNNBENCH_DIST_BACKEND": "gloo"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    metrics = metrics_of(tmp_path / "ddp")
    assert metrics["world_size"] == 2 and metrics["status"] == "completed"
    assert metrics["pretrained"]["sha256"] == hashlib.sha256(stripe_weights.read_bytes()).hexdigest()
    assert proc.stdout.count("starting from pretrained weights") == 1  # rank 0 speaks
