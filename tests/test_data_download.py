"""A dataset that is not on disk: the message fits the situation (download off, or on and failed),
names the files to put there by hand, and a failed download leaves no empty folders behind."""
from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from cnnbench.data import download

# Every download goes through a proxy on a closed local port: it fails at once, network or not.
NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
              "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
              "no_proxy": "", "NO_PROXY": ""}

CASES = {
    "fashion_mnist": ("FashionMNIST/raw", "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                      ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                       "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]),
    "cifar10": ("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                ["cifar-10-python.tar.gz", "data_batch_1", "test_batch", "batches.meta"]),
}


def _refusal(cli, tmp_path: Path, dataset: str, download: str) -> str:
    root = tmp_path / "fresh" / "data"
    proc = cli("train", f"dataset={dataset}", f"dataset.root={root}",
               f"dataset.download={download}", "trainer.epochs=1", cwd=tmp_path, env=NO_NETWORK)
    text = proc.stdout + proc.stderr
    lines = [line for line in text.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_a_failed_download_names_the_address_and_the_files_and_leaves_no_empty_folders(
        cli, tmp_path, dataset):
    folder, url, files = CASES[dataset]
    line = _refusal(cli, tmp_path, dataset, "true")
    assert "downloading it failed" in line and "Connection refused" in line, line
    assert url in line and all(name in line for name in files), line
    assert str(tmp_path / "fresh" / "data" / folder) in line, line
    assert "with network access, dataset.download=true" not in line, line
    assert not (tmp_path / "fresh").exists(), sorted(tmp_path.rglob("*"))


@pytest.mark.parametrize("dataset", sorted(CASES))
def test_download_off_says_how_to_turn_it_on_or_where_to_put_the_files(cli, tmp_path, dataset):
    folder, url, files = CASES[dataset]
    line = _refusal(cli, tmp_path, dataset, "false")
    assert "dataset.download=false" in line and "Add dataset.download=true" in line, line
    assert "downloading it failed" not in line, line
    assert all(name in line for name in files) and "dataset.root=" in line, line
    assert not (tmp_path / "fresh").exists()


def _proxy_everything_through(proxy: str, monkeypatch) -> None:
    """In this process, send every download through `proxy` (urllib builds its opener once)."""
    for key, value in NO_NETWORK.items():
        monkeypatch.setenv(key, proxy if value else value)
    monkeypatch.setattr(urllib.request, "_opener", None)


def test_a_failed_download_keeps_folders_that_were_there_and_files_it_left(tmp_path, monkeypatch):
    _proxy_everything_through(NO_NETWORK["http_proxy"], monkeypatch)
    kept = tmp_path / "data"
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    failure = download.try_download("FashionMNIST", kept)
    assert failure is not None and failure.startswith("http://fashion-mnist")
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]


def test_a_silent_server_cannot_hold_the_download_past_its_timeout(tmp_path, monkeypatch):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.extend(server.accept() for _ in range(8)),
                     daemon=True).start()
    _proxy_everything_through(f"http://127.0.0.1:{server.getsockname()[1]}", monkeypatch)
    monkeypatch.setattr(download, "DOWNLOAD_TIMEOUT_S", 0.5)
    start = time.monotonic()
    failure = download.try_download("FashionMNIST", tmp_path / "d")
    assert failure is not None and "timed out" in failure, failure
    assert time.monotonic() - start < 10
    assert socket.getdefaulttimeout() is None and not (tmp_path / "d").exists()
    server.close()
