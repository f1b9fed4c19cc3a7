"""After Ctrl-C the advice tells the truth about what is on disk: a run whose epochs finished
but that keeps no last.pt (trainer.checkpoint.save_last=false) is not told that no epoch had
finished."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from helpers import stop_signals_as_in_a_terminal

from cnnbench.run.unresumable import nothing_to_resume

# an epoch takes a moment on the CPU, and there are many, so the signal lands mid-run
SLOW = ["dataset=synthetic", "dataset.train_size=3000", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.device=cpu", "trainer.epochs=5000",
        "trainer.progress=false", "hydra.run.dir=run"]


def _ctrl_c_reaches_the_child() -> None:
    stop_signals_as_in_a_terminal()


def history_rows(run: Path) -> int:
    try:
        with open(run / "history.csv", newline="") as f:
            return len(list(csv.DictReader(f)))
    except OSError:
        return 0


def ctrl_c_after_an_epoch(cwd: Path, args: list[str]) -> str:
    """The output of `cnnbench train ARGS` (run directory `run`) stopped by Ctrl-C once its
    first epoch is in history.csv; it exited 130."""
    proc = subprocess.Popen([sys.executable, "-m", "cnnbench", "train", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "COLUMNS": "400"},
                            preexec_fn=_ctrl_c_reaches_the_child)
    deadline = time.time() + 300
    while history_rows(cwd / "run") < 1:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < deadline, "no epoch finished in time"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    return out


def test_ctrl_c_after_an_epoch_with_save_last_off_says_an_epoch_finished(tmp_path):
    out = ctrl_c_after_an_epoch(tmp_path, [*SLOW, "trainer.checkpoint.save_last=false"])
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "interrupted" and metrics["epochs_run"] >= 1, metrics
    assert not (run / "checkpoints" / "last.pt").exists()
    advice = " ".join(out[out.index("interrupted:"):].split())
    assert "No epoch had finished" not in advice, advice
    assert "had finished, but no checkpoint to resume from was kept" in advice, advice
    assert "trainer.checkpoint.save_last=false keeps no checkpoints/last.pt" in advice
    assert "nothing to resume" in advice and "trainer.checkpoint.save_last=true" in advice
    assert "trainer.resume" not in advice and "Traceback" not in out


def fake_run(root: Path, save_last: bool, epochs: int, best: bool = False) -> Path:
    run = root / f"run_{save_last}_{epochs}"
    (run / ".hydra").mkdir(parents=True)
    config = {"trainer": {"checkpoint": {"save_last": save_last, "save_best": True}}}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "metrics.json").write_text(json.dumps({"status": "interrupted", "epochs_run": epochs}))
    if best:
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "best.pt").write_bytes(b"weights")
    return run


def test_the_advice_names_the_reason_there_is_no_last_checkpoint(tmp_path):
    not_yet = nothing_to_resume([fake_run(tmp_path, save_last=True, epochs=0)])
    assert not_yet.startswith("No epoch had finished and no checkpoint was written")
    off_early = nothing_to_resume([fake_run(tmp_path, save_last=False, epochs=0)])
    assert off_early.startswith("No epoch had finished, and trainer.checkpoint.save_last=false")
    off_late = nothing_to_resume([fake_run(tmp_path, save_last=False, epochs=3, best=True)])
    assert off_late.startswith("3 epochs had finished, but no checkpoint to resume from")
    assert "cnnbench eval checkpoint=" in off_late and "best.pt" in off_late
    lost = nothing_to_resume([fake_run(tmp_path, save_last=True, epochs=2)])
    assert lost.startswith("2 epochs had finished, but checkpoints/last.pt could not be written")
    assert all("nothing to resume" in text for text in (not_yet, off_early, off_late, lost))


def test_a_sweep_without_last_checkpoints_is_judged_by_its_runs(tmp_path):
    fake_run(tmp_path / "sweep", save_last=False, epochs=1)
    text = nothing_to_resume([], tmp_path / "sweep")
    assert text.startswith("1 epoch had finished") and "save_last=false" in text


def printed_start_again(out: str) -> list[str]:
    """The arguments of the command the advice prints after `start it again with:`."""
    import shlex

    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.rstrip().endswith("start it again with:"))
    words = shlex.split(lines[at + 1])
    assert words[:2] == ["cnnbench", "train"], lines[at + 1]
    return words[2:]


def test_a_run_with_nothing_to_resume_starts_again_with_the_printed_command(tmp_path):
    args = ["dataset=synthetic", "dataset.train_size=3000", "dataset.test_size=64",
            "trainer.batch_size=64", "trainer.device=cpu", "trainer.epochs=3",
            "trainer.progress=false", "evaluation.plots=false", "hydra.run.dir=run",
            "trainer.checkpoint.save_last=false"]
    out = ctrl_c_after_an_epoch(tmp_path, args)
    run = tmp_path / "run"
    kept = (run / "metrics.json").read_bytes(), (run / "history.csv").read_bytes()
    again = printed_start_again(out)
    assert "trainer.checkpoint.save_last=true" in again and "hydra.run.dir=run" not in again
    done = subprocess.run([sys.executable, "-m", "cnnbench", "train", *again], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    (new,) = [p for p in tmp_path.iterdir() if p.name.startswith("run_")]
    assert json.loads((new / "metrics.json").read_text())["status"] == "completed"
    assert (new / "checkpoints" / "last.pt").is_file()
    assert ((run / "metrics.json").read_bytes(), (run / "history.csv").read_bytes()) == kept


def test_the_same_command_again_on_a_run_with_nothing_to_resume_names_a_free_folder(tmp_path):
    run = fake_run(tmp_path, save_last=False, epochs=1, best=True)
    proc = subprocess.run([sys.executable, "-m", "cnnbench", "train", "dataset=synthetic",
                           "dataset.train_size=64", "trainer.device=cpu", "trainer.epochs=1",
                           f"hydra.run.dir={run}"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stdout + proc.stderr
    text = " ".join(proc.stdout.split())
    assert "cannot be resumed" in text and f"hydra.run.dir={run}_2" in text, text
    assert "trainer.resume" not in text
