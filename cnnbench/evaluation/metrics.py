"""Classification metrics from logits and labels, computed with torchmetrics.

Precision, recall and F1 of a class that is never predicted count as 0. Macro averages weigh
every class equally and leave out classes that neither occur in the labels nor are predicted.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch

TOP5_MIN_CLASSES = 11  # top-5 accuracy is reported for datasets with more than 10 classes


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor,
                           classes: Sequence[str]) -> dict[str, Any]:
    """metrics.json entries: top-5 (> 10 classes), macro and per-class P/R/F1, confusion matrix."""
    # imported here, not at the top: torchmetrics pulls in scipy.signal and torchvision.models
    # (several seconds), which `cnnbench train` would otherwise pay before its first step
    from torchmetrics.functional.classification import (multiclass_accuracy,
                                                        multiclass_confusion_matrix,
                                                        multiclass_f1_score,
                                                        multiclass_precision, multiclass_recall)

    n = len(classes)
    if logits.ndim != 2 or logits.shape[1] != n:
        raise ValueError(f"logits of shape {tuple(logits.shape)} do not match {n} classes")
    preds = logits.argmax(1)
    common = dict(target=labels, num_classes=n)
    out: dict[str, Any] = {}
    if n >= TOP5_MIN_CLASSES:
        out["test/top5"] = multiclass_accuracy(logits, top_k=5, average="micro", **common).item()
    per_class = {}
    for name, fn in (("precision", multiclass_precision), ("recall", multiclass_recall),
                     ("f1", multiclass_f1_score)):
        # float32 averaging can give 1.0000001: clamp to the range the metric is defined on
        out[f"test/macro_{name}"] = fn(preds, average="macro", **common).clamp(0, 1).item()
        per_class[name] = fn(preds, average="none", **common).clamp(0, 1).tolist()
    support = torch.bincount(labels, minlength=n).tolist()
    out["per_class"] = [
        {"class": str(classes[i]), "precision": per_class["precision"][i],
         "recall": per_class["recall"][i], "f1": per_class["f1"][i], "support": support[i]}
        for i in range(n)
    ]
    out["confusion_matrix"] = multiclass_confusion_matrix(preds, **common).tolist()
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
