"""The git commit of the code that ran, in metrics.json: present from a git work tree, absent
(null) for code outside one, and never a failure when git is missing, failing or slow."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from helpers import trained_run

from cnnbench.run import provenance
from cnnbench.run.provenance import PACKAGE_DIR, code_commit

TINY = ["dataset=synthetic", "dataset.train_size=128", "dataset.test_size=64",
        "trainer.batch_size=64", "trainer.epochs=1", "trainer.device=cpu",
        "trainer.progress=false", "evaluation.enabled=false", "hydra.run.dir=run"]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_a_run_records_the_commit_of_the_code_it_ran_from(tmp_path_factory) -> None:
    run_dir = trained_run(tmp_path_factory, TINY)
    recorded = json.loads((run_dir / "metrics.json").read_text())["git"]
    assert recorded["commit"] == _git("rev-parse", "HEAD", cwd=PACKAGE_DIR)
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", cwd=PACKAGE_DIR))
    assert recorded["dirty"] is dirty


def test_a_clean_and_a_changed_work_tree_are_told_apart(tmp_path) -> None:
    _git("init", "-q", cwd=tmp_path)
    (tmp_path / "code.py").write_text("x = 1\n")
    _git("add", "code.py", cwd=tmp_path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first", cwd=tmp_path)
    clean = code_commit(tmp_path)
    assert clean == {"commit": _git("rev-parse", "HEAD", cwd=tmp_path), "dirty": False}
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_commit(tmp_path) == {"commit": clean["commit"], "dirty": True}


def test_code_outside_a_git_work_tree_has_no_commit(tmp_path) -> None:
    assert code_commit(tmp_path) is None


def test_an_installed_copy_inside_some_repository_has_no_commit(tmp_path) -> None:
    """A package installed into a virtual environment that sits (ignored) in a repository is
    not that repository's code."""
    _git("init", "-q", cwd=tmp_path)
    (tmp_path / "README").write_text("r\n")
    _git("add", "README", cwd=tmp_path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first", cwd=tmp_path)
    installed = tmp_path / "venv" / "site-packages" / "cnnbench"
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    assert code_commit(installed) is None


def test_a_missing_git_leaves_no_commit_and_no_error(monkeypatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert code_commit(PACKAGE_DIR) is None


def test_a_git_that_hangs_is_given_up_on_quickly(tmp_path, monkeypatch) -> None:
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(provenance, "GIT_SECONDS", 0.5)
    import time

    start = time.monotonic()
    assert code_commit(PACKAGE_DIR) is None
    assert time.monotonic() - start < 5
