"""Runs logged to Weights & Biases in offline mode, read back from the run file W&B wrote:
the run options as config, one history row per epoch, test metrics and status in the summary,
a sweep's jobs as one group; a missing package is refused in one paragraph."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from conftest import run_cli

TINY = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.epochs=2", "trainer.device=cpu",
        "trainer.progress=false", "logger=[tensorboard,wandb]", "logger.wandb.mode=offline"]
OFFLINE = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}


def records(path: Path) -> Iterator[Any]:
    """The records of a .wandb run file: LevelDB's log format (32 KiB blocks of chunks with a
    7-byte header: checksum, length, type) after a 7-byte file header, holding protobufs."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    pos, chunks, block = 7, b"", 32768
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunks += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = pb.Record()
            record.ParseFromString(chunks)
            chunks = b""
            yield record


def _items(items) -> dict[str, Any]:
    return {"/".join(i.nested_key) if i.nested_key else i.key: json.loads(i.value_json)
            for i in items}


def read_offline_run(folder: Path) -> dict[str, Any]:
    """config, history rows, summary and group of the one offline run under `folder`."""
    [path] = folder.glob("wandb/offline-run-*/run-*.wandb")
    run: dict[str, Any] = {"config": {}, "history": [], "summary": {}, "group": None,
                           "files": {p.name for p in path.parent.glob("files/*")}}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run["group"] = record.run.run_group
            run["config"].update(_items(record.run.config.update))
        elif kind == "config":
            run["config"].update(_items(record.config.update))
        elif kind == "history":
            run["history"].append(_items(record.history.item))
        elif kind == "summary":
            run["summary"].update(_items(record.summary.update))
    return run


def test_a_run_shows_its_options_epochs_test_metrics_and_status(tmp_path):
    run_cli("train", "hydra.run.dir=run", *TINY, cwd=tmp_path, env=OFFLINE, check=True)
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    run = read_offline_run(tmp_path / "run")
    options = ("model", "dataset", "optimizer", "lr", "scheduler", "augmentation",
               "batch_size", "epochs", "seed")
    assert {k: run["config"][k] for k in options} == {k: record[k] for k in options}
    epochs = [row for row in run["history"] if "val/acc" in row]
    assert [row["_step"] for row in epochs] == [1, 2]
    assert epochs[-1]["val/acc"] == record["last_epoch_metrics"]["val/acc"]
    assert run["summary"]["test/acc"] == record["test/acc"]
    assert run["summary"]["status"] == "completed"
    assert run["summary"]["git_commit"] == record["git"]["commit"]
    assert run["group"] == ""
    assert {"confusion_matrix.png", "misclassified.png", "history.csv"} <= run["files"]


def test_a_sweeps_jobs_are_one_group_named_after_the_sweep(tmp_path):
    run_cli("train", "-m", "trainer.seed=1,2", "hydra.sweep.dir=the_sweep",
            "evaluation.enabled=false", *TINY, cwd=tmp_path, env=OFFLINE, check=True)
    jobs = sorted(p for p in (tmp_path / "the_sweep").iterdir() if (p / "wandb").is_dir())
    runs = [read_offline_run(job) for job in jobs]
    assert [r["group"] for r in runs] == ["the_sweep", "the_sweep"]
    assert [r["config"]["seed"] for r in runs] == [1, 2]
    assert [r["summary"]["status"] for r in runs] == ["completed", "completed"]


def test_wandb_without_its_package_is_refused_in_one_paragraph(tmp_path):
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text("import sys\nsys.modules['wandb'] = None\n")
    proc = run_cli("train", "hydra.run.dir=run", *TINY, cwd=tmp_path,
                   env={**OFFLINE, "PYTHONPATH": str(hook)})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert 'pip install -e ".[wandb]"' in out
    assert "Traceback" not in out
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_online_mode_without_a_login_costs_one_warning_and_the_run_completes(tmp_path):
    proc = run_cli("train", "hydra.run.dir=run", *TINY, "logger.wandb.mode=online",
                   "evaluation.enabled=false", cwd=tmp_path,
                   env={"HOME": str(tmp_path), "WANDB_API_KEY": "", "WANDB_MODE": "",
                        "NETRC": str(tmp_path / "no_netrc")})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["status"] == "completed"
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "wandb login" in warnings[0], proc.stdout
    assert "logger.wandb.mode=offline" in warnings[0]
