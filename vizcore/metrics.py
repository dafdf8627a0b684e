"""Classification metrics shared by the teacher zoo, the knockout panel and the student lab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vizcore.core.hooks import guarded
from vizcore.core.layers import model_device


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched, under the model's lock (its mode is restored)."""
    device = model_device(model)
    with guarded(model):
        out = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0)


def classification_report(y_true, y_pred, class_names: list[str]) -> dict:
    """Accuracy, per-class precision / recall / F1 / support and the confusion matrix (rows: true class)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    return {
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "n": int(len(y_true)),
        "per_class": [
            {"class": class_names[k], "precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]), "support": int(s[k])}
            for k in labels
        ],
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def evaluate_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_names: list[str], *,
                   predictions: bool = False) -> dict:
    """:func:`classification_report` of ``model``'s predictions on ``(x, y)``; with ``predictions`` also each
    image's predicted class (``pred``) and softmax confidence (``confidence``)."""
    logits = predict_logits(model, x)
    pred = logits.argmax(1)
    report = classification_report(y.numpy(), pred.numpy(), class_names)
    if predictions:
        report["pred"], report["confidence"] = pred.tolist(), logits.softmax(1).max(1).values.tolist()
    return report


def test_report(model: nn.Module, weights: str | Path, dataset) -> dict:
    """:func:`evaluate_model` with predictions on ``dataset``'s test split (confidences to 5 digits), kept in the
    workspace cache under the weights' SHA-256 and the dataset's files: the Overview page shows it at once on
    every later start."""
    from vizcore.core.diskcache import cached_json, file_digest, key_name
    from vizcore.data import fingerprint

    def compute() -> dict:
        report = evaluate_model(model, dataset.test_x, dataset.test_y, dataset.class_names, predictions=True)
        return report | {"confidence": [round(c, 5) for c in report["confidence"]]}

    digest = fingerprint(dataset.name)
    if digest is None:
        return compute()
    return cached_json("evaluations", key_name("v1", file_digest(weights), dataset.name, digest), compute)
