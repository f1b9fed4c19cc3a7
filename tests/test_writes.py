"""One writer for every file cnnbench writes: only into the run directory, the out= folder or
cnnbench's cache folder, with the mode the umask gives, and never over a checkpoint, another
run's record or a file the command did not write. Real `cnnbench` processes on real files."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import trained_run, write_pictures

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=256", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.epochs=1", "trainer.device=cpu",
        "trainer.progress=false", "hydra.run.dir=run"]
FOLDER = ["model=mlp", "dataset=imagefolder", "dataset.image_size=8", "trainer.epochs=1",
          "trainer.device=cpu", "trainer.progress=false", "trainer.val_split=0"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory, TINY)


@pytest.fixture
def world(trained, tmp_path) -> Path:
    """A folder holding everything a command could touch: the run (a copy), pictures, an image
    folder, the working directory, HOME, XDG_CACHE_HOME and CNNBENCH_CACHE_DIR."""
    shutil.copytree(trained, tmp_path / "work" / "run")
    write_pictures(tmp_path / "work" / "pics")
    photos(tmp_path / "photos")
    for name in ("home", "xdg", "cache"):
        (tmp_path / name).mkdir()
    (tmp_path / "libraries").mkdir()  # matplotlib's font cache: the library's file, not ours
    return tmp_path


def photos(root: Path) -> Path:
    """An image folder of two classes, four pictures each: cats dark, dogs bright."""
    import numpy as np
    from PIL import Image

    for cls, value in (("cat", 30), ("dog", 220)):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((12, 10 + i, 3), value + i, np.uint8)).save(
                root / cls / f"{i}.png")
    return root


def cnnbench(world: Path, *args: str, umask: int = 0o022,
             cache: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200", "HOME": str(world / "home"),
           "XDG_CACHE_HOME": str(world / "xdg"),
           "CNNBENCH_CACHE_DIR": str(cache or world / "cache"),
           "MPLCONFIGDIR": str(world / "libraries")}
    return subprocess.run([sys.executable, "-m", "cnnbench", *args], cwd=world / "work",
                          env=env, capture_output=True, text=True, timeout=600,
                          preexec_fn=lambda: os.umask(umask))


def the_paragraph(proc: subprocess.CompletedProcess) -> str:
    """The one `error:` paragraph of a refused command (exit 2, no traceback)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in out, out
    (line,) = [line for line in out.splitlines() if line.startswith("error:")]
    return line


def files(world: Path) -> dict[Path, tuple[int, int]]:
    """Every file of the world (the libraries' own caches aside), with its time and size."""
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in world.rglob("*")
            if p.is_file() and not p.is_symlink() and not p.is_relative_to(world / "libraries")}


# command -> (its arguments, where its files may land, relative to the world folder)
COMMANDS = {
    "train": ([*FOLDER, "dataset.path=../photos", "hydra.run.dir=run2"], ["work/run2", "cache"]),
    "eval": (["checkpoint=run", "out=ev"], ["work/ev"]),
    "predict": (["checkpoint=run", "inputs=pics", "out=pr"], ["work/pr"]),
    "export": (["checkpoint=run", "format=torchscript"], ["work/run/export"]),
    "data": (["dataset=imagefolder", "dataset.path=../photos", "dataset.image_size=8",
              "out=dd"], ["work/dd", "cache"]),
    "compare": (["run", "out=cmp"], ["work/cmp"]),
}
CASES = [(c, 0o027) for c in COMMANDS] + [("train", 0o022), ("export", 0o022)]


@pytest.mark.parametrize("command, umask", CASES, ids=[f"{c}-{u:03o}" for c, u in CASES])
def test_every_command_writes_only_its_folders_with_the_umasks_mode(world, command, umask):
    args, allowed = COMMANDS[command]
    before = files(world)
    proc = cnnbench(world, command, *args, umask=umask)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    written = [p for p, stamp in files(world).items() if before.get(p) != stamp]
    assert written, f"cnnbench {command} wrote nothing"
    roots = [world / a for a in allowed]
    astray = [p for p in written if not any(p.is_relative_to(r) for r in roots)]
    assert not astray, f"cnnbench {command} wrote outside {allowed}: {astray}"
    modes = {p.relative_to(world): oct(p.stat().st_mode & 0o777) for p in written}
    assert set(modes.values()) == {oct(0o666 & ~umask)}, modes
    if "cache" in allowed:  # a decoded image folder is cached, never beside the images
        assert list((world / "cache").glob("imagefolder_*.pt"))
        assert sorted(p.name for p in (world / "photos").iterdir()) == ["cat", "dog"]


def test_export_refuses_to_replace_a_runs_checkpoint(world):
    last = world / "work" / "run" / "checkpoints" / "last.pt"
    before = last.read_bytes()
    proc = cnnbench(world, "export", "checkpoint=run", "format=torchscript",
                    "out=run/checkpoints/last.pt")
    assert "is a checkpoint of the run" in the_paragraph(proc)
    assert last.read_bytes() == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]


@pytest.mark.parametrize("out", ["run", "record"], ids=["its run directory", "its record alone"])
def test_eval_refuses_to_replace_a_training_runs_record(world, out):
    run = world / "work" / "run"
    (world / "work" / "record").mkdir()
    shutil.copy(run / "metrics.json", world / "work" / "record" / "metrics.json")
    records = (run / "metrics.json", world / "work" / out / "metrics.json")
    before = {p: p.read_bytes() for p in records}
    listing = sorted(p.name for p in (world / "work" / out).iterdir())
    line = the_paragraph(cnnbench(world, "eval", "checkpoint=run", f"out={out}"))
    assert "training run" in line and "out=DIR" in line
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in (world / "work" / out).iterdir()) == listing


def test_an_out_folder_keeps_a_file_the_command_did_not_write(world):
    mine = world / "work" / "mine"
    mine.mkdir()
    (mine / "predictions.csv").write_text("my own notes\n")
    proc = cnnbench(world, "predict", "checkpoint=run", "inputs=pics", "out=mine")
    assert "is not an earlier output of cnnbench predict" in the_paragraph(proc)
    assert (mine / "predictions.csv").read_text() == "my own notes\n"
    assert sorted(p.name for p in mine.iterdir()) == ["predictions.csv"]  # all or nothing


@pytest.mark.parametrize("command, args, out", [
    ("predict", ["checkpoint=run", "inputs=pics", "out=pr"], "pr/predictions.csv"),
    ("eval", ["checkpoint=run", "out=ev"], "ev/metrics.json")])
def test_a_command_replaces_its_own_earlier_output(world, command, args, out):
    first = cnnbench(world, command, *args)
    assert first.returncode == 0, first.stdout + first.stderr
    earlier = (world / "work" / out).stat().st_mtime_ns
    again = cnnbench(world, command, *args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (world / "work" / out).stat().st_mtime_ns != earlier


def test_predict_and_eval_keep_their_cache_out_of_the_image_folder(world):
    import torch

    folder = world / "photos"
    trained = cnnbench(world, "train", *FOLDER, f"dataset.path={folder}", "hydra.run.dir=img")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    payload = torch.load(world / "work" / "img" / "checkpoints" / "last.pt", weights_only=True)
    del payload["data"]  # a checkpoint from before the data entry: predict loads the dataset
    torch.save(payload, world / "work" / "old.pt")
    for command, args in (("predict", ["inputs=pics", "out=pr"]), ("eval", ["out=ev"])):
        cache = world / f"cache_{command}"
        proc = cnnbench(world, command, "checkpoint=old.pt", *args, cache=cache)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [p.name.startswith("imagefolder_") for p in cache.iterdir()] == [True]
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "cat", *[f"cat/{i}.png" for i in range(4)], "dog", *[f"dog/{i}.png" for i in range(4)]]
    assert json.loads((world / "work" / "ev" / "metrics.json").read_text())["kind"] == "eval"


def test_a_writer_never_writes_outside_its_folders(tmp_path):
    from cnnbench.errors import UserError
    from cnnbench.rundir import Writer, write_text

    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    out.mkdir()
    (out / "sub").symlink_to(elsewhere)  # a folder inside that leads outside
    writer = Writer("predict", [out])
    for path in (tmp_path / "beside.csv", out / "sub" / "x.csv", out / ".." / "up.csv"):
        with pytest.raises(UserError, match="writes only into"):
            write_text(path, "x", writer)
    assert list(elsewhere.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "elsewhere", "out"]
    assert write_text(out / "fine.csv", "x", writer).read_text() == "x"


OUT_ARGS = {  # command -> its arguments but out=
    "eval": ["checkpoint=run"],
    "predict": ["checkpoint=run", "inputs=pics"],
    "export": ["checkpoint=run", "format=torchscript"],
    "data": ["dataset=synthetic"],
    "lr-find": ["dataset=synthetic", "dataset.train_size=128", "trainer.device=cpu",
                "num_steps=10"],
    "compare": ["run"],
}


@pytest.mark.parametrize("under", [False, True], ids=["the file itself", "a path under it"])
@pytest.mark.parametrize("command", list(OUT_ARGS))
def test_every_command_refuses_an_out_path_that_is_a_file_before_any_work(world, command,
                                                                           under):
    notes = world / "work" / "notes.txt"
    notes.write_text("mine\n")
    out = "notes.txt/sub" if under else "notes.txt"
    if command == "export":
        out += "/model.pt"
    before = files(world)
    line = the_paragraph(cnnbench(world, command, *OUT_ARGS[command], f"out={out}"))
    assert "notes.txt" in line and "not a folder" in line, line
    assert notes.read_text() == "mine\n"
    assert [p for p, stamp in files(world).items() if before.get(p) != stamp] == []


def test_train_refuses_a_run_directory_that_is_a_file(world):
    (world / "work" / "notes.txt").write_text("mine\n")
    line = the_paragraph(cnnbench(world, "train", "dataset=synthetic", "dataset.train_size=64",
                                  "trainer.epochs=1", "trainer.device=cpu",
                                  "hydra.run.dir=notes.txt"))
    assert "notes.txt" in line and "not a folder" in line, line
