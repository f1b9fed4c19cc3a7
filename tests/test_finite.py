"""The finiteness guard, piece by piece: weights, losses and outputs (engine/finite.py), a fit
whose last step breaks the weights, strict metrics.json (rundir/strict_json.py), checkpoints a
divergence may name, compare's ranking and export's check of its file."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch
from helpers import make_run
from torch import nn

from cnnbench.engine.finite import (
    NotFinite,
    nonfinite_names,
    nonfinite_row_count,
    nonfinite_rows,
    require_finite,
    require_finite_outputs,
    require_finite_weights,
)

NAN, INF = float("nan"), float("inf")


def strict_load(text: str):
    """json.loads that refuses NaN and Infinity, as strict JSON readers do."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def test_the_guard_names_the_weights_and_buffers_that_are_nan_or_infinite():
    model = small_model()
    assert nonfinite_names(model) == []
    with torch.no_grad():
        model[0].weight[0, 0, 0, 0] = NAN
        model[1].running_var[1] = INF
        model[3].bias[2] = -INF
    assert nonfinite_names(model) == ["0.weight", "1.running_var", "3.bias"]
    assert nonfinite_names(model.state_dict()) == ["0.weight", "1.running_var", "3.bias"]
    with pytest.raises(NotFinite, match=r"after its last step \(0\.weight, 1\.running_var and "
                                        r"3\.bias\)") as caught:
        require_finite_weights(model, "after its last step")
    assert caught.value.names == ["0.weight", "1.running_var", "3.bias"]


def test_huge_but_finite_weights_and_half_precision_pass_the_guard():
    model = small_model().half()
    with torch.no_grad():
        model[3].weight.fill_(60000.0)  # near float16's largest: a 2-norm would overflow
    assert nonfinite_names(model) == []
    with torch.no_grad():
        model[3].weight[0, 0] = NAN
    assert nonfinite_names(model) == ["3.weight"]


def test_a_loss_that_is_nan_or_infinite_raises_and_says_so_in_words():
    require_finite({"training loss": 2.3, "validation loss": None})
    with pytest.raises(NotFinite) as caught:
        require_finite({"training loss": NAN, "validation loss": 0.1}, "at batch 3")
    assert str(caught.value) == "the training loss became NaN at batch 3"
    with pytest.raises(NotFinite, match="test loss became infinite"):
        require_finite({"test loss": torch.tensor(INF)})
    with pytest.raises(NotFinite, match="became minus infinite"):
        require_finite({"loss": np.float32(-INF)})


def test_outputs_with_a_nan_or_infinite_row_are_found_row_by_row():
    outputs = torch.zeros(4, 3)
    assert nonfinite_rows(outputs) == [] and int(nonfinite_row_count(outputs)) == 0
    outputs[1, 2], outputs[3, 0] = NAN, INF
    assert nonfinite_rows(outputs) == [1, 3] and int(nonfinite_row_count(outputs)) == 2
    assert nonfinite_rows(outputs.numpy()) == [1, 3]
    with pytest.raises(NotFinite, match="for 2 of the 4 test images"):
        require_finite_outputs(outputs, "test images")


@pytest.mark.parametrize("lr,found", [
    (INF, "the weights became NaN or infinite after the epoch's last step"),
    (1e30, "the model's outputs became NaN or infinite after the epoch's last step"),  # overflow
])
def test_a_fit_whose_last_step_breaks_the_weights_raises_before_the_epoch_is_reported(lr, found):
    from cnnbench.data import DeviceLoader
    from cnnbench.data.image_data import Split
    from cnnbench.engine.loop import Fit
    from cnnbench.engine.runtime import make_runtime
    from cnnbench.engine.schedule import LRSchedule
    from cnnbench.settings.trainer import EarlyStopping

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3))
    images = torch.randint(0, 255, (8, 1, 4, 4), dtype=torch.uint8)
    loader = DeviceLoader(Split(images, torch.arange(8) % 3), 8, torch.device("cpu"), (0.5,),
                          (0.25,))  # one batch: its loss, taken before the step, is finite
    fit = Fit(model, torch.optim.SGD(model.parameters(), lr=lr), LRSchedule(None),
              nn.CrossEntropyLoss(), make_runtime("cpu", "off", "auto"), loader, None, 1,
              EarlyStopping("val/loss", None, False))
    ended = []
    with pytest.raises(NotFinite, match=found):
        fit.run(lambda row, best: ended.append(row))
    assert ended == [] and fit.state.epoch == 0  # nothing of the epoch was reported or saved


def test_metrics_json_is_strict_with_null_for_each_number_that_is_not_finite(tmp_path):
    from cnnbench.rundir.strict_json import NOT_FINITE_KEY
    from cnnbench.rundir.writer import write_json_atomic

    path = tmp_path / "metrics.json"
    write_json_atomic(path, {"status": "diverged", "test/loss": NAN, "test/acc": 0.5,
                             "last_epoch_metrics": {"val/loss": INF, "epoch": 2},
                             "curve": [1.0, -INF], "energy": np.float32(2.5), "epochs": 3})
    data = strict_load(path.read_text())
    assert data["test/loss"] is None and data["last_epoch_metrics"]["val/loss"] is None
    assert data["curve"] == [1.0, None] and data["energy"] == 2.5 and data["epochs"] == 3
    assert data[NOT_FINITE_KEY] == ["test/loss", "last_epoch_metrics.val/loss", "curve.1"]
    write_json_atomic(path, {**data, "train/loss": NAN})  # a later write keeps the earlier names
    assert strict_load(path.read_text())[NOT_FINITE_KEY] == [
        "test/loss", "last_epoch_metrics.val/loss", "curve.1", "train/loss"]
    write_json_atomic(path, {"status": "completed", "test/acc": 0.9})
    assert NOT_FINITE_KEY not in strict_load(path.read_text())


def checkpoint(path, model: nn.Module, epoch: int, ema: dict | None = None) -> None:
    from cnnbench.run.checkpoint import save_checkpoint

    save_checkpoint(path, {"model": model.state_dict(), "epoch": epoch, "ema": ema})


def test_a_checkpoint_with_nan_weights_is_never_saved_nor_named_the_last_good_one(tmp_path):
    from cnnbench.run.divergence import last_good_checkpoint, require_finite_checkpoint

    good, broken = small_model(), small_model()
    with torch.no_grad():
        broken[3].weight[0, 0] = NAN
    with pytest.raises(NotFinite, match=r"last\.pt was not saved.*3\.weight"):
        require_finite_checkpoint({"model": broken.state_dict()}, tmp_path / "last.pt")
    with pytest.raises(NotFinite, match=r"ema\.3\.weight"):
        require_finite_checkpoint({"model": good.state_dict(),
                                   "ema": {"shadow": broken.state_dict()}}, tmp_path / "best.pt")
    from cnnbench.rundir import RunLock

    run = tmp_path / "run"
    assert last_good_checkpoint(run) is None
    with RunLock(run):  # a run's checkpoints are replaced only by the process that owns it
        checkpoint(run / "checkpoints" / "best.pt", good, 1)
        checkpoint(run / "checkpoints" / "last.pt", broken, 2)  # as an older version saved it
        assert last_good_checkpoint(run) == run / "checkpoints" / "best.pt"
        checkpoint(run / "checkpoints" / "best.pt", good, 1, ema={"shadow": broken.state_dict()})
        assert last_good_checkpoint(run) is None


def test_divergence_advice_names_no_checkpoint_when_none_is_finite(tmp_path):
    from cnnbench.run.divergence import divergence_advice

    broken = small_model()
    with torch.no_grad():
        broken[0].bias[0] = INF
    checkpoint(tmp_path / "checkpoints" / "last.pt", broken, 3)
    advice = divergence_advice(NotFinite("the training loss became NaN at batch 2"),
                               "in epoch 4", 1e12, "fp16", tmp_path)
    assert advice.startswith("Training diverged in epoch 4: the training loss became NaN at "
                             "batch 2. The learning rate (optimizer.lr=1000000000000.0)")
    assert "trainer.amp=bf16" in advice and "last.pt" not in advice
    assert "no checkpoint with finite weights" in advice


def test_compare_ranks_no_run_with_a_metric_that_is_not_finite(tmp_path):
    from cnnbench.commands.compare.groups import group_runs
    from cnnbench.commands.compare.runs import load_runs
    from cnnbench.commands.compare.table import display_rows, sort_runs

    make_run(tmp_path, "good", 0.90, 1)
    make_run(tmp_path, "bare_nan", 0.99, 2, config={"optimizer": {"lr": 0.1}},
             **{"test/loss": NAN})  # an older metrics.json: bare NaN
    make_run(tmp_path, "nulled", 0.98, 3, config={"optimizer": {"lr": 0.2}},
             **{"test/loss": None, "not_finite": ["test/loss"]})
    make_run(tmp_path, "diverged", 0.97, 4, config={"optimizer": {"lr": 0.3}},
             status="diverged")
    runs = sort_runs(load_runs([tmp_path]))
    assert [r.name for r in runs] == ["good", "bare_nan", "diverged", "nulled"]
    assert [r.in_statistics for r in runs] == [True, False, False, False]
    assert "test/loss" not in runs[1].metrics and runs[1].not_finite == ["test/loss"]
    columns, rows = display_rows(runs)
    status = columns.index("status")
    assert [row[status] for row in rows] == ["completed", "completed, test/loss not finite",
                                             "diverged", "completed, test/loss not finite"]
    groups = group_runs(runs)
    assert [g.stats.acc.n for g in groups] == [1, 0, 0, 0] and groups[0].runs[0].name == "good"
    assert groups[0].stats.best and not any(g.stats.best for g in groups[1:])


def test_export_counts_a_nan_in_either_output_as_a_difference():
    from cnnbench.commands.export.command import difference, difference_text

    expected = torch.tensor([[1.0, 2.0], [INF, 0.0]])
    assert difference(expected.clone(), expected) == 0.0  # equal infinities are equal
    assert difference(torch.tensor([[1.0, 2.5], [INF, 0.0]]), expected) == 0.5
    assert math.isinf(difference(torch.tensor([[1.0, NAN], [INF, 0.0]]), expected))
    assert math.isinf(difference(torch.full((2, 2), NAN), torch.full((2, 2), NAN)))
    assert difference_text(INF).startswith("not finite")
    assert not re.search(r"\b(nan|inf)\b", difference_text(INF))


def test_predict_refuses_scores_that_are_not_finite_naming_the_first_picture():
    from cnnbench.commands.predict.command import refuse_nonfinite
    from cnnbench.errors import UserError

    refuse_nonfinite(np.zeros((2, 3), dtype=np.float32), ["a.png", "b.png"], "m.onnx")
    scores = np.zeros((3, 3), dtype=np.float32)
    scores[1, 0], scores[2, 2] = NAN, INF
    with pytest.raises(UserError, match=r"NaN or infinite for 2 of 3 pictures \(the first: "
                                        r"b\.png\)"):
        refuse_nonfinite(scores, ["a.png", "b.png", "c.png"], "m.onnx")


def test_export_refuses_a_model_whose_outputs_overflow_before_writing_anything(tmp_path):
    from types import SimpleNamespace

    from cnnbench.commands.export.command import reference_outputs
    from cnnbench.errors import UserError

    def overflowing(x):
        return torch.full((len(x), 3), INF)

    trained = SimpleNamespace(model=overflowing, checkpoint=tmp_path / "last.pt",
                              prep=SimpleNamespace(input_shape=[1, 4, 4]))
    with pytest.raises(UserError, match="NaN or infinite for a normalized random batch"):
        reference_outputs(trained)
    trained.model = lambda x: torch.zeros(len(x), 3)
    assert sorted(reference_outputs(trained)) == [1, 3]
