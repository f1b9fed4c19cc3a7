"""Shared fixtures: a private copy of the real MNIST archives, a CLI runner, config composition."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
EMBEDDED_MNIST = REPO / "cnnbench" / "data" / "embedded_mnist"


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root holding MNIST/raw/*.gz, copied (never written in place)."""
    root = tmp_path_factory.mktemp("data")
    source = SHARED_DATA / "MNIST" / "raw"
    if not source.is_dir():
        source = EMBEDDED_MNIST
    shutil.copytree(source, root / "MNIST" / "raw")
    return root


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    source = SHARED_DATA / "FashionMNIST" / "raw"
    if not source.is_dir():
        pytest.fail(f"Fashion-MNIST archives not found in {source}")
    root = tmp_path_factory.mktemp("fashion")
    shutil.copytree(source, root / "FashionMNIST" / "raw")
    return root


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 600,
            check: bool = False) -> subprocess.CompletedProcess:
    """Run `python -m cnnbench ARGS` in `cwd` and return the finished process."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "cnnbench", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"cnnbench {' '.join(args)} exited {proc.returncode}\n"
                             f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    return proc


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def compose():
    """compose(overrides) -> the composed train config, as Hydra would build it."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    import cnnbench.app  # noqa: F401  (registers the run_id resolver)

    def _compose(overrides: list[str] | None = None):
        with initialize_config_module(config_module="cnnbench.conf", version_base="1.3"):
            return hydra_compose(config_name="train", overrides=list(overrides or []),
                                 return_hydra_config=False)

    return _compose
