"""Every subcommand ends through one boundary: a signal is one line and its exit code, a fault of
the machine (a full disk, a read-only file system, a path too long, memory, a file name that is
not UTF-8) is one paragraph, and no record is left saying `running`.

Real `cnnbench` processes and real signals; the disk faults come from tests/fault_hook (a
sitecustomize that makes writes under one folder fail), and the hook's pause holds a command at
a known point so that the signal lands while it runs.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import stop_signals_as_in_a_terminal, trained_run, write_pictures

HOOK = Path(__file__).resolve().parent / "fault_hook"
TINY = ["dataset=synthetic", "dataset.train_size=256", "dataset.test_size=128",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.progress=false",
        "evaluation.plots=false"]
LONG = "x" * 5000  # a path longer than PATH_MAX (4096)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return trained_run(tmp_path_factory, [*TINY, "trainer.epochs=1", "hydra.run.dir=run"])


def hooked(**variables: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(HOOK), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": path, **variables}


def start(cwd: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cnnbench", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "200", **env},
                            preexec_fn=stop_signals_as_in_a_terminal)


def finish(cwd: Path, args: list[str], env: dict[str, str]) -> tuple[int, str]:
    proc = start(cwd, args, env)
    out, _ = proc.communicate(timeout=300)
    return proc.returncode, out


def statuses(folder: Path) -> dict[str, str]:
    """The status in every metrics.json under `folder`."""
    return {str(p): json.loads(p.read_text()).get("status") for p in folder.rglob("metrics.json")}


def error_line(out: str) -> str:
    """The one paragraph of an error: exactly one line starts with `error:`, no traceback."""
    assert "Traceback" not in out, out
    lines = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, out
    return lines[0]


def command_case(name: str, run: Path, tmp: Path) -> tuple[list[str], str]:
    """(argv, the function it pauses in) of each subcommand, every one run for real."""
    if name == "predict":
        write_pictures(tmp / "pictures")
    return {
        "train": (["train", *TINY, f"hydra.run.dir={tmp / 'out'}"],
                  "cnnbench.run.lifecycle:TrainingRun.train"),
        "eval": (["eval", f"checkpoint={run}", f"out={tmp / 'out'}", "trainer.device=cpu"],
                 "cnnbench.commands.eval:run"),
        "predict": (["predict", f"checkpoint={run}", f"inputs={tmp / 'pictures'}",
                     f"out={tmp / 'out'}", "trainer.device=cpu"],
                    "cnnbench.commands.predict.results:ranked"),
        "export": (["export", f"checkpoint={run}", "format=torchscript",
                    f"out={tmp / 'out' / 'model.pt'}"], "cnnbench.run.trained:load_trained"),
        "data": (["data", "dataset=synthetic", f"out={tmp / 'out'}"],
                 "cnnbench.commands.data.overview:summary"),
        "compare": (["compare", str(run), f"out={tmp / 'out'}"],
                    "cnnbench.commands.compare.command:_write_files"),
        "models": (["models", "dataset=mnist"], "cnnbench.commands.models:zoo"),
        "completion": (["train", "-sc", "query=bash"], "cnnbench.commands.completion:handle"),
    }[name]


COMMANDS = ["train", "eval", "predict", "export", "data", "compare", "models", "completion"]


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
@pytest.mark.parametrize("name", COMMANDS)
def test_a_signal_ends_every_subcommand_with_one_line_and_its_exit_code(run, tmp_path, name,
                                                                        sig, code):
    args, pause = command_case(name, run, tmp_path)
    paused = tmp_path / "paused"
    proc = start(tmp_path, args, hooked(CNNBENCH_PAUSE_AT=pause, CNNBENCH_PAUSED_FILE=str(paused),
                                        COMP_LINE="cnnbench tr"))
    deadline = time.time() + 240
    while not paused.exists():
        assert proc.poll() is None and time.time() < deadline, proc.communicate()[0]
        time.sleep(0.05)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out
    assert "Traceback" not in out and "Error" not in out, out
    said = [line for line in out.splitlines() if "interrupted" in line]
    assert len(said) == 1 and said[0].startswith("interrupted:"), out
    why = "SIGTERM" if sig == signal.SIGTERM else "Ctrl-C"
    if name != "train":  # train ends with what to do next (the command to run again)
        assert why in said[0] and out.strip().splitlines()[-1] == said[0], out
    written = statuses(tmp_path / "out") if (tmp_path / "out").exists() else {}
    assert set(written.values()) <= {"interrupted"}, written
    if name in ("train", "eval"):
        assert list(written.values()) == ["interrupted"], written
        assert why in json.loads((tmp_path / "out" / "metrics.json").read_text())["reason"]
    if name in ("predict", "export", "data", "compare"):  # stopped before writing: nothing
        assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


WRITERS = ["train", "eval", "predict", "export", "data", "compare"]


@pytest.mark.parametrize("name", WRITERS)
def test_a_full_disk_is_one_paragraph_for_every_command_that_writes(run, tmp_path, name):
    args, _ = command_case(name, run, tmp_path)
    (tmp_path / "out").mkdir()  # the folder exists; the disk has no room for its files
    env = hooked(CNNBENCH_FAULT_DIR=str(tmp_path / "out"), CNNBENCH_FAULT_ERRNO="ENOSPC",
                 CNNBENCH_FAULT_SPARE="metrics.json,.cnnbench.lock")  # room for the lock and a record
    code, out = finish(tmp_path, args, env)
    assert code == 2, out
    line = error_line(out)
    assert "No space left on device" in line and str(tmp_path / "out") in line, line
    assert "Error executing job" not in out, out  # no line of Hydra's before the paragraph
    assert "running" not in statuses(tmp_path / "out").values()
    if name == "eval":  # its record began, and ends failed with the reason
        (record,) = statuses(tmp_path / "out").values()
        assert record == "failed"
        reason = json.loads((tmp_path / "out" / "metrics.json").read_text())["reason"]
        assert "is full" in reason and "out=DIR" in reason, reason


def test_resuming_a_run_on_a_read_only_disk_is_one_paragraph_and_changes_nothing(run, tmp_path):
    files = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    env = hooked(CNNBENCH_FAULT_DIR=str(run), CNNBENCH_FAULT_ERRNO="EROFS")
    code, out = finish(tmp_path, ["train", *TINY, "trainer.epochs=2", f"trainer.resume={run}"],
                       env)
    assert code == 2, out
    line = error_line(out)
    assert "read-only file system" in line and str(run) in line, line
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == files


def test_a_full_disk_before_the_run_starts_leaves_no_running_run(tmp_path):
    env = hooked(CNNBENCH_FAULT_DIR=str(tmp_path / "outputs"))
    code, out = finish(tmp_path, ["train", *TINY, "trainer.epochs=1"], env)
    assert code == 2, out
    assert "No space left on device" in error_line(out) and "hydra.run.dir=" in out
    assert not (tmp_path / "outputs").exists() or "running" not in statuses(tmp_path / "outputs")


@pytest.mark.parametrize("name", ["train", "data", "eval", "predict", "export", "compare"])
def test_a_path_longer_than_the_system_allows_is_one_paragraph(run, tmp_path, name):
    args, _ = command_case(name, run, tmp_path)
    args = [a.replace(str(tmp_path / "out"), str(tmp_path / LONG)) for a in args]
    code, out = finish(tmp_path, args, {})
    assert code == 2, out
    assert "File name too long" in error_line(out)


def test_a_picture_whose_name_is_not_utf8_is_predicted_and_listed(run, tmp_path):
    from PIL import Image

    (tmp_path / "pictures").mkdir()
    odd = os.path.join(os.fsencode(tmp_path / "pictures"), b"\xff.png")
    Image.new("L", (28, 28), 200).save(os.fsdecode(odd))
    Image.new("L", (28, 28), 20).save(tmp_path / "pictures" / "plain.png")
    code, out = finish(tmp_path, ["predict", f"checkpoint={run}", "inputs=pictures", "out=out",
                                  "trainer.device=cpu"], {})
    assert code == 0 and "Traceback" not in out, out
    assert "\\xff.png" in out
    rows = (tmp_path / "out" / "predictions.csv").read_text(encoding="utf-8").splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["pictures/plain.png", "pictures/\\xff.png"]


def test_a_dataset_too_big_for_memory_is_one_paragraph(tmp_path):
    code, out = finish(tmp_path, ["data", "dataset=synthetic", "dataset.image_size=100000"], {})
    assert code == 1, out
    line = error_line(out)
    assert "Out of memory" in line and "dataset.image_size" in line, line


# -- in-process: the paragraphs themselves ---------------------------------------------------

@pytest.mark.parametrize("code,said", [
    ("ENOSPC", "The disk holding /data/out/x.png is full (No space left on device, ENOSPC): "
               "free some space there, or write elsewhere with out=DIR."),
    ("EROFS", "/data/out/x.png is on a read-only file system"),
    ("EACCES", "Permission to /data/out/x.png is denied"),
    ("EDQUOT", "disk quota for /data/out/x.png is used up"),
    ("EMFILE", "ulimit -n"),
])
def test_each_fault_of_the_disk_names_the_path_and_what_to_do(code, said):
    import errno

    from cnnbench.endings import ending_of
    from cnnbench.faults import Hints

    err = OSError(getattr(errno, code), os.strerror(getattr(errno, code)), "/data/out/x.png")
    ending = ending_of(err, Hints("write elsewhere with out=DIR"))
    assert ending.status == "failed" and ending.exit_code == 2
    assert said in ending.reason, ending.reason


def test_a_bug_is_not_a_fault_and_keeps_its_traceback():
    import errno

    from cnnbench.faults import fault_of

    assert fault_of(ValueError("a bug")) is None
    assert fault_of(OSError(errno.EBADF, "Bad file descriptor")) is None
    assert fault_of(RuntimeError("shapes do not match")) is None
    assert fault_of(UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")) is None
    assert fault_of(UnicodeEncodeError("utf-8", os.fsdecode(b"\xff.png"), 0, 1, "surrogates"))


def test_a_record_that_cannot_be_ended_is_named_in_the_paragraph(tmp_path, capsys):
    """The disk took the first metrics.json and then no more: the paragraph says the record
    still says `running`, rather than pretending it was ended."""
    import errno

    from cnnbench.boundary import run_command
    from cnnbench.rundir import RunRecord
    from cnnbench.terminal import RunConsole

    class FullDisk(RunRecord):
        def finish(self, *args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device", str(self.run_dir))

    def evaluation(scope):
        scope.track(FullDisk(tmp_path, {"status": "running"})).update()
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "eval.png"))

    assert run_command(evaluation, RunConsole()) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "eval.png is full" in out and "could not be updated either" in out, out
    assert "still says status: running" in out
