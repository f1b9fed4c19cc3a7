"""Evaluation metrics against hand-computed values, the shift transform, the table (the
pictures: test_pictures.py)."""
from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_png
from rich.console import Console
from torch import nn

from cnnbench.data import DeviceLoader, ImageData, Split
from cnnbench.engine.runtime import make_runtime
from cnnbench.errors import UserError
from cnnbench.evaluation.evaluate import evaluate_test_set
from cnnbench.evaluation.metrics import classification_metrics, worst_mistakes
from cnnbench.evaluation.report import per_class_table, worst_classes
from cnnbench.evaluation.shift import Shift, shift_accuracy, translate
from cnnbench.run.sinks import TensorBoardSink
from cnnbench.settings.evaluation import EvaluationSettings

CLASSES = ["cat", "dog", "bird", "fish"]  # fish: never in the labels, never predicted


@pytest.fixture
def predictions():
    """10 test images: true labels, predictions (rows 3, 8, 9 wrong) and their logits.

    confusion (rows true): cat [3 1 0 0], dog [0 3 0 0], bird [2 0 1 0], fish [0 0 0 0]
    """
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    preds = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 0, 0])
    logits = torch.zeros(10, 4)
    logits[torch.arange(10), preds] = torch.tensor([1, 1, 1, 2.0, 1, 1, 1, 1, 5.0, 3.0])
    return logits, labels


def test_metrics_match_hand_computed_values(predictions):
    m = classification_metrics(*predictions, CLASSES)
    assert m["confusion_matrix"] == [[3, 1, 0, 0], [0, 3, 0, 0], [2, 0, 1, 0], [0, 0, 0, 0]]
    by_class = {row["class"]: row for row in m["per_class"]}
    assert [row["class"] for row in m["per_class"]] == CLASSES
    # cat: 3 of 5 predicted cats are cats, 3 of 4 cats found; dog: 3/4, 3/3; bird: 1/1, 1/3
    expected = {"cat": (3 / 5, 3 / 4, 4), "dog": (3 / 4, 1.0, 3), "bird": (1.0, 1 / 3, 3)}
    for name, (p, r, support) in expected.items():
        row = by_class[name]
        assert row["precision"] == pytest.approx(p, abs=1e-6)
        assert row["recall"] == pytest.approx(r, abs=1e-6)
        assert row["f1"] == pytest.approx(2 * p * r / (p + r), abs=1e-6)
        assert row["support"] == support
    assert by_class["fish"] == {"class": "fish", "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                "support": 0}
    # macro: the mean over the classes that occur (fish neither occurs nor is predicted)
    assert m["test/macro_precision"] == pytest.approx((0.6 + 0.75 + 1.0) / 3, abs=1e-6)
    assert m["test/macro_recall"] == pytest.approx((0.75 + 1.0 + 1 / 3) / 3, abs=1e-6)
    assert m["test/macro_f1"] == pytest.approx((2 / 3 + 6 / 7 + 0.5) / 3, abs=1e-6)
    assert "test/top5" not in m  # 4 classes: top-5 would always be 100%


def test_top5_only_for_more_than_ten_classes():
    labels = torch.tensor([0, 1, 2, 3, 4])
    # rank of the true class: 1st, 3rd, 5th, 6th, 12th -> 3 of 5 in the top 5
    ranks = [0, 2, 4, 5, 11]
    logits = torch.zeros(5, 12)
    for i, (label, rank) in enumerate(zip(labels.tolist(), ranks)):
        order = [c for c in range(12) if c != label]
        order.insert(rank, label)
        logits[i, order] = torch.linspace(12, 1, 12)
    m = classification_metrics(logits, labels, [f"c{i}" for i in range(12)])
    assert m["test/top5"] == pytest.approx(3 / 5)
    ten = classification_metrics(logits[:, :10], labels, [f"c{i}" for i in range(10)])
    assert "test/top5" not in ten


def test_worst_mistakes_are_the_most_confident_wrong_predictions(predictions):
    logits, labels = predictions
    worst = worst_mistakes(logits, labels, CLASSES, 5)
    assert [w["index"] for w in worst] == [8, 9, 3]
    assert worst[0] == {"index": 8, "true": "bird", "predicted": "cat",
                        "confidence": pytest.approx(math.exp(5) / (math.exp(5) + 3))}
    assert [w["index"] for w in worst_mistakes(logits, labels, CLASSES, 1)] == [8]


def test_translate_moves_a_known_image_right_and_down_with_zero_fill():
    image = torch.arange(1, 26, dtype=torch.float32).view(1, 1, 5, 5)
    out = translate(image, 2, 2)
    expected = torch.zeros(5, 5)
    expected[2:, 2:] = image[0, 0, :3, :3]
    assert torch.equal(out[0, 0], expected)
    assert out[0, 0, 4, 4] == image[0, 0, 2, 2] == 13
    assert torch.equal(translate(image, -1, 0)[0, 0, :4], image[0, 0, 1:])  # up by one
    assert torch.count_nonzero(translate(image, 5, 0)) == 0
    assert torch.equal(translate(image, 0, 0), image)


def test_shift_fills_with_black_before_normalization():
    white = Split(torch.full((2, 1, 6, 6), 255, dtype=torch.uint8), torch.zeros(2, dtype=torch.long))
    loader = DeviceLoader(white, 2, torch.device("cpu"), (0.5,), (0.25,), augment=Shift(2))
    x, _ = next(iter(loader))
    assert torch.allclose(x[:, :, :2, :], torch.tensor(-2.0))  # (0 - 0.5) / 0.25: black
    assert torch.allclose(x[:, :, :, :2], torch.tensor(-2.0))
    assert torch.allclose(x[:, :, 2:, 2:], torch.tensor(2.0))  # (1 - 0.5) / 0.25: white


class CornerDetector(nn.Module):
    """Class 1 if the top-left pixel is bright, else class 0: any shift breaks it."""

    def forward(self, x):
        return torch.stack([-x[:, 0, 0, 0], x[:, 0, 0, 0]], 1)


def test_shift_accuracy_of_a_position_dependent_model():
    images = torch.zeros(8, 1, 4, 4, dtype=torch.uint8)
    images[4:, 0, 0, 0] = 255
    split = Split(images, torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    runtime = make_runtime("cpu", "off", False)
    args = (runtime, 3, (0.0,), (1.0,))
    assert shift_accuracy(CornerDetector(), split, 1, *args) == 0.5
    loader = DeviceLoader(split, 3, torch.device("cpu"), (0.0,), (1.0,))
    from cnnbench.evaluation.predict import accuracy
    assert accuracy(CornerDetector(), loader, runtime) == 1.0


def test_evaluation_settings_are_checked():
    assert EvaluationSettings.from_config({"shifts": None}).shifts == []
    assert EvaluationSettings.from_config({"shifts": 3}).shifts == [3]
    for bad in ({"shifts": [0]}, {"shifts": ["two"]}, {"misclassified": -1}, {"shiftz": [1]}):
        with pytest.raises(UserError):
            EvaluationSettings.from_config(bad)


def render(table) -> str:
    console = Console(record=True, width=100, force_terminal=True, color_system="truecolor")
    console.print(table)
    return console.export_text(styles=True)


def test_per_class_table_highlights_the_worst_classes(predictions):
    per_class = classification_metrics(*predictions, CLASSES)["per_class"]
    assert worst_classes(per_class, 2) == [3, 2]  # fish (F1 0), then bird (F1 0.5)
    text = render(per_class_table(per_class, highlight=2))
    red_lines = [line for line in text.splitlines() if "\x1b[1;31m" in line]
    assert len(red_lines) == 2 and "bird" in red_lines[0] + red_lines[1]
    assert not any("dog" in line for line in red_lines)
    big = [{"class": f"c{i}", "precision": 1.0, "recall": 1.0, "f1": i / 100, "support": 1}
           for i in range(100)]
    plain = render(per_class_table(big)).replace("\x1b", "")
    assert "c0 " in plain and "c9 " in plain and "c10 " not in plain and "c99" not in plain


def test_evaluate_test_set_writes_metrics_files_and_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from cnnbench.data import load_dataset

    torch.manual_seed(1)  # (seed 0 draws the same numbers as the data's prototypes: 100% right)
    data: ImageData = load_dataset("synthetic", train_size=8, test_size=64)
    model = nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 10))
    tb = TensorBoardSink(tmp_path / "tb")
    settings = EvaluationSettings(shifts=[1, 3], misclassified=9)
    console = Console(record=True, width=120)
    report = evaluate_test_set(model, data, make_runtime("cpu", "off", False), settings, tmp_path,
                               batch_size=16, tb=tb, step=1, console=console, title="linear")
    tb.hparams({"model": "linear", "lr": 0.1, "scheduler": None}, ["test/macro_f1"], {"lr"})
    tb.close()
    m = report.metrics
    assert set(report.scalars) == {"test/loss", "test/acc", "test/macro_precision",
                                   "test/macro_recall", "test/macro_f1", "shift/1px", "shift/3px"}
    assert len(m["per_class"]) == 10 and sum(r["support"] for r in m["per_class"]) == 64
    assert sum(map(sum, m["confusion_matrix"])) == 64
    assert 0 <= m["shift/3px"] <= 1 and len(m["misclassified"]) == 9
    assert "evaluation_warnings" not in m
    assert_png(tmp_path / "confusion_matrix.png")
    assert_png(tmp_path / "misclassified.png")
    out = console.export_text()
    assert "Per-class results" in out and "class_9" in out and "1 px" in out
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert {"test/confusion_matrix", "test/misclassified"} <= set(events.Tags()["images"])
    assert {"test/loss", "test/acc", "test/macro_f1", "shift/1px",
            "shift/3px"} <= set(events.Tags()["scalars"])


def test_evaluation_can_be_switched_off(tmp_path):
    from cnnbench.data import load_dataset

    data = load_dataset("synthetic", train_size=8, test_size=8)
    report = evaluate_test_set(nn.Sequential(nn.Flatten(), nn.Linear(784, 10)), data,
                               make_runtime("cpu", "off", False), EvaluationSettings(enabled=False),
                               tmp_path, batch_size=8)
    assert set(report.metrics) == {"test/loss", "test/acc"}  # the one pass still gives these
    assert not list(tmp_path.iterdir())


def test_no_class_is_highlighted_when_all_do_equally_well():
    same = [{"class": f"c{i}", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 3}
            for i in range(5)]
    assert worst_classes(same, 3) == []
    assert "\x1b[1;31m" not in render(per_class_table(same))


class Counting(nn.Module):
    """A linear classifier that counts the images it has seen."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(28 * 28, 10)
        self.images = 0

    def forward(self, x):
        self.images += x.shape[0]
        return self.linear(x.flatten(1))


def test_one_pass_gives_loss_accuracy_and_every_metric(tmp_path):
    from cnnbench.data import load_dataset
    from cnnbench.engine.loop import evaluate

    torch.manual_seed(2)
    data = load_dataset("synthetic", train_size=8, test_size=40)
    model, runtime = Counting(), make_runtime("cpu", "off", False)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.1)
    report = evaluate_test_set(model, data, runtime, EvaluationSettings(shifts=[2]), tmp_path,
                               batch_size=16, loss_fn=loss_fn)
    assert model.images == 40 * 2  # the test set once, the shifted test set once
    loader = DeviceLoader(data.test, 16, torch.device("cpu"), data.mean, data.std)
    expected = evaluate(model, loader, loss_fn, runtime)
    assert report.metrics["test/loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert report.metrics["test/acc"] == expected["acc"]
    cm = report.metrics["confusion_matrix"]
    assert sum(cm[i][i] for i in range(10)) / 40 == report.metrics["test/acc"]


def test_a_training_run_evaluates_the_test_set_once(tmp_path, compose, monkeypatch):
    from cnnbench.run.lifecycle import TrainingRun

    cfg = compose(["dataset=synthetic", "model=mlp", "trainer.device=cpu", "trainer.epochs=1",
                   "dataset.train_size=16", "dataset.test_size=24", "trainer.progress=false",
                   "evaluation.shifts=[]"])
    seen = {}
    test_phase = TrainingRun.test

    def counted_test(self, parts, train_seconds):
        counter = {"images": 0}
        parts.model.register_forward_hook(
            lambda module, args, out: counter.__setitem__("images",
                                                          counter["images"] + args[0].shape[0]))
        test_phase(self, parts, train_seconds)
        seen.update(counter)

    monkeypatch.setattr(TrainingRun, "test", counted_test)
    run = TrainingRun(cfg, tmp_path / "run", {"model": "mlp", "dataset": "synthetic"},
                      console=Console(file=open(tmp_path / "out.txt", "w")))
    metrics = run.execute()
    assert metrics["status"] == "completed"
    assert seen["images"] == 24  # one pass over the 24 test images, for every metric
    assert {"test/loss", "test/acc", "test/macro_f1"} <= set(metrics)
    assert_png(tmp_path / "run" / "confusion_matrix.png")
    assert_png(tmp_path / "run" / "misclassified.png")


def test_a_class_name_that_looks_like_markup_is_shown_as_written():
    import io

    from rich.console import Console

    per_class = [{"class": name, "precision": 0.5, "recall": 0.5, "f1": f, "support": 10}
                 for name, f in (("[bold red]cat[/]", 0.1), ("[link=http://x]dog", 0.9))]
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(per_class_table(per_class, highlight=1))
    text = console.file.getvalue()
    assert "[bold red]cat[/] *" in text and "[link=http://x]dog" in text, text
