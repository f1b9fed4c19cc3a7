"""Every number of optimizer.* and scheduler.* is finite and in its key's range before anything
is built: train and lr-find refuse the rest in one paragraph instead of diverging later."""
from __future__ import annotations

import math

import pytest
from conftest import run_cli
from test_boundary import error_line

from cnnbench.errors import UserError
from cnnbench.settings.learning_rate import check_lr
from cnnbench.settings.numbers import RANGES, check_numbers

TINY = ["model=mlp", "dataset=synthetic", "dataset.train_size=128", "dataset.test_size=32",
        "trainer.device=cpu", "trainer.epochs=1", "trainer.progress=false",
        "evaluation.plots=false"]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("key", sorted(RANGES) + ["some_new_key"])
def test_a_number_that_is_not_finite_is_refused_for_every_key(key, value):
    with pytest.raises(UserError, match=rf"scheduler\.{key}=.* is not valid"):
        check_numbers("scheduler", {key: [0.9, value] if key == "betas" else value})


@pytest.mark.parametrize("key,bad,good", [
    ("momentum", 1.5, 0.9), ("weight_decay", -1e-4, 0.0), ("betas", [0.9, 1.0], [0.9, 0.999]),
    ("eps", 0.0, 1e-8), ("pct_start", 1.2, 0.3), ("div_factor", 0, 25.0),
    ("final_div_factor", -1.0, 1e4), ("factor", 1.0, 0.1), ("patience", -1, 0),
    ("min_lr", -1e-6, 0.0), ("eta_min", -0.1, 0.0),
])
def test_a_value_outside_its_keys_range_is_refused_and_one_inside_is_kept(key, bad, good):
    with pytest.raises(UserError, match=rf"optimizer\.{key}=.* is not valid: it must be"):
        check_numbers("optimizer", {key: bad})
    check_numbers("optimizer", {key: good, "_target_": "torch.optim.SGD", "nesterov": True})


@pytest.mark.parametrize("lr", [math.inf, 1e400, -1.0, 0.0, math.nan, "abc", True])
def test_a_learning_rate_that_is_not_a_finite_positive_number_is_refused(lr):
    with pytest.raises(UserError, match="must be a finite number above 0"):
        check_lr(lr)


@pytest.mark.parametrize("command", ["train", "lr-find"])
@pytest.mark.parametrize("override,named", [
    ("optimizer.lr=inf", "optimizer.lr=inf"),
    ("optimizer=sgd optimizer.momentum=nan", "optimizer.momentum=nan"),
    ("scheduler=onecycle scheduler.div_factor=0", "scheduler.div_factor=0"),
    ("scheduler=plateau scheduler.factor=nan", "scheduler.factor=nan"),
])
def test_train_and_lr_find_refuse_a_number_that_would_break_the_run_later(
        tmp_path, command, override, named):
    proc = run_cli(command, *TINY, *override.split(), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = error_line(proc.stdout + proc.stderr)
    assert f"{named} is not valid" in line, line
    assert "diverged" not in line.split("is not valid")[0]
