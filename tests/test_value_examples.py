"""A refused value's paragraph gives an example that works: the test runs the command again with
the example in place of the bad value, to its end."""
from __future__ import annotations

import re

import pytest
from conftest import run_cli
from test_advice_runs import error_line

BASE = ["model=mlp", "dataset=synthetic", "dataset.train_size=64", "dataset.test_size=32",
        "trainer.device=cpu", "trainer.progress=false", "evaluation.plots=false",
        "evaluation.shifts=[]"]


@pytest.mark.parametrize("bad", [
    "trainer.batch_size=0", "trainer.tta_flip=3", "evaluation.plots=3",
    "augmentation.crop_padding=-1", "model.hidden=[0]",
])
def test_the_example_a_refusal_gives_runs_to_its_end(tmp_path, bad):
    args = ["trainer.epochs=1", *BASE, "augmentation=flip_crop", bad]
    proc = run_cli("train", *args, "hydra.run.dir=bad", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc)
    key = bad.lstrip("+").partition("=")[0]
    found = re.search(rf"e\.g\. ({re.escape(key)}=\S+?)[.,;)]?(?:\s|$)", line)
    assert found, line
    assert "<value>" not in found.group(1), line
    fixed = [a for a in args if a != bad] + [("+" if bad.startswith("+") else "") + found.group(1)]
    again = run_cli("train", *fixed, "hydra.run.dir=good", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "good" / "metrics.json").is_file()
