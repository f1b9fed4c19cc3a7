"""`cnnbench export` compares the file's outputs with PyTorch's within a tolerance relative to
the outputs' size (as allclose: ATOL + RTOL x the sample's largest |logit|): a model whose
logits are near 1e8 differs from its ONNX file by float32 rounding (far above 1e-4 in absolute
terms) without a warning, while a real mismatch, large or small, still warns."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
from helpers import trained_run
from test_boundary import TINY

from cnnbench.commands.export.command import ATOL, RTOL, allowed, excess

# a sitecustomize.py for the export's process: with CNNBENCH_TEST_SHIFT=x, the exported file's
# first logit of each sample is moved by x times the sample's largest |logit| (a file that
# computes something else, or, for a tiny x, one that rounds differently)
SHIFT_HOOK = """
import os
shift = os.environ.get("CNNBENCH_TEST_SHIFT")
if shift:
    import cnnbench.commands.export.formats as formats
    real = formats.exported_outputs
    def shifted(path, fmt, batch):
        out = real(path, fmt, batch)
        if out is None:
            return None
        out = out.clone()
        out[:, 0] += float(shift) * out.abs().amax(dim=-1)
        return out
    formats.exported_outputs = shifted
"""
SCALE = 1e8  # the last layer's weights and bias are multiplied by it: logits near 1e8 to 1e9


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    """A real `cnnbench train` of a tiny MLP (logits of a few units): its last.pt."""
    run = trained_run(tmp_path_factory, [*TINY, "model=mlp", "trainer.epochs=1",
                                         "hydra.run.dir=run"])
    return run / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def large(small, tmp_path_factory) -> Path:
    """The same run with its last layer scaled by SCALE, saved in the same payload format."""
    run = tmp_path_factory.mktemp("large") / "run"
    shutil.copytree(small.parent.parent, run)
    path = run / "checkpoints" / "last.pt"
    payload = torch.load(path, weights_only=True)
    weights = [k for k, v in payload["model"].items() if k.endswith("weight") and v.dim() == 2]
    last = weights[-1].removesuffix("weight")
    for key in (f"{last}weight", f"{last}bias"):
        payload["model"][key] = payload["model"][key] * SCALE
    torch.save(payload, path)
    return path


@pytest.fixture
def hook(tmp_path) -> Path:
    folder = tmp_path / "hook"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(SHIFT_HOOK)
    return folder


def export(cli, checkpoint: Path, tmp_path: Path, hook: Path | None = None, shift: float = 0):
    env = {"PYTHONPATH": str(hook), "CNNBENCH_TEST_SHIFT": str(shift)} if hook else {}
    proc = cli("export", f"checkpoint={checkpoint}", f"out={tmp_path / 'model.onnx'}",
               cwd=tmp_path, env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Traceback" not in out, out
    return " ".join(proc.stdout.split())


def shown(text: str) -> tuple[float, float]:
    """(the max |difference|, the largest |logit|) the summary table shows."""
    found = re.search(r"max \|difference\| \S ([-+.e\d]+) vs PyTorch \(batches of 1 and 3\), "
                      r"logits up to ([-+.e\d]+) ", text)
    assert found, text
    return float(found.group(1)), float(found.group(2))


def test_an_export_of_a_model_with_logits_near_1e8_gives_no_warning(cli, large, tmp_path):
    text = export(cli, large, tmp_path)
    assert "warning" not in text, text
    difference, scale = shown(text)
    assert scale >= 1e7 and difference <= ATOL + RTOL * scale, text


def test_float32_rounding_of_large_logits_is_far_above_1e_4_and_no_warning(cli, large, hook,
                                                                           tmp_path):
    text = export(cli, large, tmp_path, hook, shift=1e-6)  # a few float32 steps at 1e8
    difference, scale = shown(text)
    assert difference > 100 * ATOL and scale >= 1e7, text  # an absolute 1e-4 would warn
    assert "warning" not in text, text


@pytest.mark.parametrize("which", ["small", "large"])
def test_a_real_mismatch_still_warns(cli, request, hook, tmp_path, which):
    text = export(cli, request.getfixturevalue(which), tmp_path, hook, shift=1e-2)
    assert ("warning: the exported model's outputs differ from the PyTorch model's: max "
            "|difference|") in text, text
    assert "more than the tolerance (0.0001 + 0.0001 x the sample's largest |logit|)" in text


def test_an_unchanged_small_model_agrees_and_gives_no_warning(cli, small, tmp_path):
    text = export(cli, small, tmp_path)
    difference, scale = shown(text)
    assert "warning" not in text and difference <= ATOL and scale < 1e3, text


def test_the_tolerance_grows_with_each_samples_largest_logit():
    expected = torch.tensor([[1e9, 0.0, -5e8], [1.0, 0.5, 0.0]])
    assert allowed(expected).flatten().tolist() == pytest.approx([ATOL + RTOL * 1e9,
                                                                  ATOL + RTOL * 1.0])
    rounded = expected + torch.tensor([[4e3, 4e3, 0.0], [0.0, 0.0, 0.0]])
    assert excess(rounded, expected) < 1  # 4e-6 of 1e9, even at the logit of 0
    assert excess(expected + torch.tensor([[0.0, 0.0, 0.0], [0.0, 1e-2, 0.0]]), expected) > 1
    assert excess(expected + torch.tensor([[2e6, 0.0, 0.0], [0.0, 0.0, 0.0]]), expected) > 1
    nan = expected.clone()
    nan[1, 1] = float("nan")
    assert excess(nan, expected) == float("inf")
