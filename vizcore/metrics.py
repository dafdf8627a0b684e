"""Classification metrics shared by the teacher zoo, the knockout panel and the student lab."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vizcore.models import model_device


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Logits of ``model`` on ``x`` in eval mode, batched; the model's training flag is restored."""
    was_training = model.training
    model.eval()
    device = model_device(model)
    try:
        out = [model(x[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        model.train(was_training)
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


def evaluate_model(model: nn.Module, x: torch.Tensor, y: torch.Tensor, class_names: list[str]) -> dict:
    """:func:`classification_report` of ``model``'s predictions on ``(x, y)``."""
    pred = predict_logits(model, x).argmax(1)
    return classification_report(y.numpy(), pred.numpy(), class_names)


def test_report(model: nn.Module, weights: str | Path, dataset) -> dict:
    """:func:`classification_report` on ``dataset``'s test split plus each image's prediction and confidence,
    kept in the workspace cache under the weights' SHA-256 and the dataset's files: the Overview page shows it
    at once on every later start."""
    from vizcore.core.diskcache import cached_json, file_digest, key_name
    from vizcore.data import fingerprint

    def compute() -> dict:
        probs = predict_logits(model, dataset.test_x).softmax(1)
        report = classification_report(dataset.test_y.numpy(), probs.argmax(1).numpy(), dataset.class_names)
        return report | {"pred": probs.argmax(1).tolist(),
                         "confidence": [round(c, 5) for c in probs.max(1).values.tolist()]}

    digest = fingerprint(dataset.name)
    if digest is None:
        return compute()
    return cached_json("evaluations", key_name("v1", file_digest(weights), dataset.name, digest), compute)
