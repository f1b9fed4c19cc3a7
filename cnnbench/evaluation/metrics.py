"""Classification metrics from logits and labels: top-5, precision, recall, F1, confusion matrix.

All of them follow from one confusion matrix (a bincount), so they are a few lines of tensor
arithmetic; a metrics library would cost seconds of import at the end of every run (tests check
these numbers against torchmetrics). Precision, recall and F1 of a class that is never
predicted count as 0. Macro averages weigh every class equally and leave out classes that
neither occur in the labels nor are predicted.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

TOP5_MIN_CLASSES = 11  # top-5 accuracy is reported for datasets with more than 10 classes


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, n: int) -> torch.Tensor:
    """n x n counts: row = true class, column = predicted class."""
    return torch.bincount(labels.long() * n + preds.long(), minlength=n * n).reshape(n, n)


def _ratio(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    return torch.where(denominator > 0, numerator / denominator.clamp(min=1), 0.0)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor,
                           classes: Sequence[str]) -> dict[str, Any]:
    """metrics.json entries: top-5 (> 10 classes), macro and per-class P/R/F1, confusion matrix."""
    n = len(classes)
    if logits.ndim != 2 or logits.shape[1] != n:
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not match {n} classes")
    cm = confusion_matrix(logits.argmax(1), labels, n)
    true_pos = cm.diagonal().double()
    support, predicted = cm.sum(1).double(), cm.sum(0).double()
    per_class = {"precision": _ratio(true_pos, predicted), "recall": _ratio(true_pos, support)}
    per_class["f1"] = _ratio(2 * true_pos, support + predicted)
    present = (support + predicted) > 0
    out: dict[str, Any] = {}
    if n >= TOP5_MIN_CLASSES:
        top5 = logits.topk(5, dim=1).indices == labels[:, None]
        out["test/top5"] = top5.any(1).double().mean().item()
    for name, values in per_class.items():
        out[f"test/macro_{name}"] = values[present].mean().item() if present.any() else 0.0
    out["per_class"] = [
        {"class": str(classes[i]), **{k: v[i].item() for k, v in per_class.items()},
         "support": int(support[i])} for i in range(n)
    ]
    out["confusion_matrix"] = cm.tolist()
    return out


def worst_mistakes(logits: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
                   count: int) -> list[dict[str, Any]]:
    """The `count` wrong predictions made with the highest confidence, most confident first."""
    probs = logits.float().softmax(1)
    confidence, preds = probs.max(1)
    wrong = (preds != labels).nonzero().flatten()
    order = wrong[confidence[wrong].argsort(descending=True, stable=True)][:count]
    return [{"index": int(i), "true": str(classes[labels[i]]), "predicted": str(classes[preds[i]]),
             "confidence": float(confidence[i])} for i in order]
