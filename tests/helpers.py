"""Checks shared by the tests: PNG files, bench scripts loaded as modules, run directories
written by hand for `cnnbench compare`."""
from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Iterator

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path, min_width: int = 200, min_height: int = 150) -> tuple[int, int]:
    """`path` is a real PNG image of at least the given size, that an image library can decode."""
    from PIL import Image

    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    with Image.open(path) as image:
        image.load()  # decodes every pixel: a truncated file fails here
        width, height = image.size
    assert width >= min_width and height >= min_height, f"{path} is only {width}x{height}"
    return width, height


def load_script(path: Path, name: str) -> ModuleType:
    """A script of bench/ (not a package) imported as the module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# the stored config of a fabricated run (.hydra/config.yaml): a few keys of each group
CONFIG = {"dataset": {"name": "mnist", "root": "/data", "download": False},
          "model": {"_target_": "cnnbench.models.lenet.LeNet5", "activation": "relu"},
          "optimizer": {"_target_": "torch.optim.Adam", "lr": 0.001},
          "trainer": {"epochs": 3, "batch_size": 128, "seed": 1, "device": "auto",
                      "progress": True, "label_smoothing": 0.0, "resume": None}}


def merge(base: dict, extra: dict) -> dict:
    """`base` with `extra` merged into it, nested mappings key by key (a new dict)."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        out[key] = merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def make_run(root: Path, name: str, acc: float | None, seed: int, model: str = "lenet",
             config: dict | None = None, status: str = "completed", secs: float = 10.0,
             epochs: int = 0, choices: dict | None = None, **metrics) -> Path:
    """A run directory as `cnnbench train` leaves it (the files compare reads): `config`
    merged into CONFIG, `choices` of config groups (augmentation=affine, ...), `metrics`
    added to metrics.json, `epochs` rows of history.csv."""
    import yaml

    run = root / name
    (run / ".hydra").mkdir(parents=True)
    cfg = merge(CONFIG, {"trainer": {"seed": seed}, **(config or {})})
    choices = {"model": model, "dataset": "mnist", "optimizer": "adam", "scheduler": "none",
               "augmentation": "none", "hydra/launcher": "basic", "experiment": None,
               **(choices or {})}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run / ".hydra" / "hydra.yaml").write_text(
        yaml.safe_dump({"hydra": {"runtime": {"choices": choices}}}))
    data = {"status": status, "model": model, "dataset": "mnist", "optimizer": "adam",
            "lr": cfg["optimizer"]["lr"], "scheduler": "none", "augmentation": "none",
            "batch_size": 128, "epochs": 3, "seed": seed, "params": 44426}
    data.update({k: v for k, v in choices.items() if k in data})
    if acc is not None:
        data.update({"test/acc": acc, "test/loss": 1 - acc, "train_seconds": secs})
    (run / "metrics.json").write_text(json.dumps({**data, **metrics}))
    if epochs:
        rows = ["epoch,train/loss,train/acc,val/loss,val/acc"]
        rows += [f"{e},{1 / e},0.9,{1 / e + seed / 100},"
                 f"{acc - 0.01 * (epochs - e) - seed / 1000}" for e in range(1, epochs + 1)]
        (run / "history.csv").write_text("\n".join(rows) + "\n")
    return run


def write_pictures(folder: Path, seed: int = 0) -> list[Path]:
    """Pictures of several formats, sizes and modes (RGBA, L, P, RGB, LA; PNG and JPEG), one in
    a subfolder; returns them in the order a folder search finds them."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    (folder / "more").mkdir(parents=True, exist_ok=True)
    pictures = {
        "a_rgba.png": Image.fromarray(rng.integers(0, 256, (40, 30, 4), dtype=np.uint8), "RGBA"),
        "b_gray.png": Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8), "L"),
        "c_photo.jpg": Image.fromarray(rng.integers(0, 256, (60, 90, 3), dtype=np.uint8), "RGB"),
        "d_palette.png": Image.fromarray(rng.integers(0, 256, (17, 23), dtype=np.uint8),
                                         "L").convert("P"),
        "e_gray.jpeg": Image.fromarray(rng.integers(0, 256, (100, 100), dtype=np.uint8), "L"),
        "more/f_rgb.png": Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8),
                                          "RGB"),
        "more/g_la.png": Image.fromarray(rng.integers(0, 256, (9, 12, 2), dtype=np.uint8), "LA"),
    }
    for name, picture in pictures.items():
        picture.save(folder / name)
    return [folder / name for name in pictures]


def trained_run(tmp_path_factory, overrides: list[str]) -> Path:
    """A real `cnnbench train` with `overrides` (which give `hydra.run.dir=run`) in a new
    directory: that run directory."""
    from conftest import run_cli

    cwd = tmp_path_factory.mktemp("trained")
    run_cli("train", *overrides, cwd=cwd, check=True)
    return cwd / "run"


# A sitecustomize.py for sweep jobs: the job with trainer.seed=2 fails in its test phase while
# the file CRASH_MARKER names exists (a fault that is then fixed).
CRASH_WHILE_MARKED = """
import os
import cnnbench.evaluation.evaluate as evaluate
real = evaluate.evaluate_test_set
def crash(*args, **kwargs):
    if os.path.exists(os.environ["CRASH_MARKER"]) and "trainer.seed=2" in str(args[4]):
        raise MemoryError("injected: the test phase ran out of memory")
    return real(*args, **kwargs)
evaluate.evaluate_test_set = crash
"""


def stop_signals_as_in_a_terminal() -> None:
    """A child's stop signals as a terminal's foreground job has them, whatever started the
    tests (`nohup` ignores SIGHUP, a shell's background job or `trap '' INT` ignores SIGINT, and
    children inherit that): Ctrl-C, SIGTERM and SIGHUP reach it. For `preexec_fn`."""
    import signal

    stops = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    for signum in stops:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, stops)



@contextlib.contextmanager
def ctrl_c_in_epoch(monkeypatch, epoch: int) -> Iterator[None]:
    """The training run inside is stopped as epoch `epoch` (1-based) starts, as Ctrl-C there
    would stop it (the KeyboardInterrupt is expected and caught); the real loop afterwards."""
    import pytest

    import cnnbench.engine.loop as loop

    real, calls = loop.train_one_epoch, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == epoch:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "train_one_epoch", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            yield
    finally:
        monkeypatch.setattr(loop, "train_one_epoch", real)
