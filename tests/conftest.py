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

# Tests run side by side (pytest-xdist), each in its own cnnbench processes: one CPU thread per
# process keeps them from oversubscribing the cores (PyTorch's threads would spin waiting for a
# core another test holds). A test of the thread count sets OMP_NUM_THREADS itself.
os.environ.setdefault("OMP_NUM_THREADS", "1")


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto`: one worker more than the cores, so that a core is never idle while a test
    waits (for a signal, a subprocess's start, a server); --maxprocesses caps it."""
    return (os.cpu_count() or 1) + 1


# The test files that take longest (seconds of one worker, measured with --durations on 2 CPU
# cores), started first: each file runs on one worker (--dist loadfile: its module fixtures
# are built once), so a long file started last would keep one worker busy alone at the end.
# A file missing here only starts in its usual place.
LONGEST_FIRST = ("test_readme.py", "test_timm.py", "test_search_pruning.py",
                 "test_reliability.py", "test_trackers_mlflow.py", "test_cluster_requeue.py",
                 "test_sweep_manifest.py", "test_sweeps.py", "test_sweep_resume.py",
                 "test_pipes.py", "test_multinode.py", "test_advice_runs.py", "test_endings.py",
                 "test_run_placement.py", "test_untrusted_disk.py")


def pytest_collection_modifyitems(items: list) -> None:
    """The files of LONGEST_FIRST first, in that order; the tests of a file stay together and
    in their order (the sort is stable)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


def pytest_configure(config) -> None:
    """Where Python writes no bytecode of its own (PYTHONDONTWRITEBYTECODE), compile the
    package's modules once, so that each of the suite's cnnbench processes does not compile
    them again (about half a second a process)."""
    if sys.dont_write_bytecode and not hasattr(config, "workerinput"):
        import compileall

        for package in ("cnnbench", "hydra_plugins"):
            compileall.compile_dir(REPO / package, quiet=1, force=False, legacy=False)


@pytest.fixture(scope="session")
def mnist_root(tmp_path_factory) -> Path:
    """A data root holding MNIST/raw/*.gz, copied (never written in place)."""
    root = tmp_path_factory.mktemp("data")
    source = SHARED_DATA / "MNIST" / "raw"
    if not source.is_dir():
        source = EMBEDDED_MNIST
    shutil.copytree(source, root / "MNIST" / "raw")
    return root


def write_idx_set(raw: Path, train: int = 120, test: int = 40, seed: int = 0) -> None:
    """Small gzip IDX files in the exact on-disk format of the MNIST family."""
    import gzip

    import numpy as np

    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (n, 28, 28))
        with gzip.open(raw / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(header + images.tobytes())
        with gzip.open(raw / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.tobytes())


@pytest.fixture(scope="session")
def fashion_root(tmp_path_factory) -> Path:
    """A data root with Fashion-MNIST-format files: small ones the test writes itself (the
    real archives are not part of the repository, and tests never download)."""
    root = tmp_path_factory.mktemp("fashion")
    write_idx_set(root / "FashionMNIST" / "raw")
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

    import cnnbench.commands.train.app  # noqa: F401  (registers the run_id resolver)

    def _compose(overrides: list[str] | None = None):
        with initialize_config_module(config_module="cnnbench.conf", version_base="1.3"):
            return hydra_compose(config_name="train", overrides=list(overrides or []),
                                 return_hydra_config=False)

    return _compose


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir(tmp_path_factory) -> Path:
    """cnnbench's cache folder (decoded image folders) in a temporary folder for the whole
    session: tests never write into the user's ~/.cache, and every `cnnbench` they start
    inherits it."""
    previous = os.environ.get("CNNBENCH_CACHE_DIR")
    folder = tmp_path_factory.mktemp("cnnbench_cache")
    os.environ["CNNBENCH_CACHE_DIR"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("CNNBENCH_CACHE_DIR", None)
    else:
        os.environ["CNNBENCH_CACHE_DIR"] = previous
