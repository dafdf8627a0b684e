"""The workspace cache behind a fast first page: decoded datasets and test-set evaluations are read back, and
recomputed when their inputs change."""

from __future__ import annotations

import pytest
import torch

from vizcore import data, metrics
from vizcore.models import build_model


def test_registry_dataset_is_read_back_from_the_cache(workspace, monkeypatch):
    fresh = data.load_dataset("digits", cache=False)
    first = data.load_dataset("digits")
    assert len(list((workspace / "cache" / "datasets").glob("digits-*.npz"))) == 1
    monkeypatch.setattr(data, "load_digits", lambda: pytest.fail("decoded again instead of read from the cache"))
    again = data.load_dataset("digits")
    for k in ("train_x", "train_y", "test_x", "test_y"):
        assert torch.equal(getattr(fresh, k), getattr(first, k)) and torch.equal(getattr(fresh, k), getattr(again, k))
    assert again.class_names == fresh.class_names and again.input_shape == fresh.input_shape


def test_eight_bit_images_are_stored_as_bytes_and_come_back_exact(shared_datasets):
    fresh = data.load_dataset("yale-faces", cache=False)
    cached = data.load_dataset("yale-faces")
    cached = data.load_dataset("yale-faces")
    assert torch.equal(fresh.test_x, cached.test_x) and fresh.test_tags == cached.test_tags


def test_test_report_is_keyed_by_the_weights(workspace, tmp_path, monkeypatch):
    ds = data.load_dataset("digits")
    model = build_model("linear", ds.input_shape, 10, seed=0)
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"one")
    report = metrics.test_report(model, weights, ds)
    assert report["n"] == len(ds.test_y) and len(report["pred"]) == len(ds.test_y)
    calls = []
    real = metrics.predict_logits
    monkeypatch.setattr(metrics, "predict_logits", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert metrics.test_report(model, weights, ds) == report and not calls  # read back
    weights.write_bytes(b"two")  # other weights: evaluated again
    metrics.test_report(build_model("linear", ds.input_shape, 10, seed=1), weights, ds)
    assert calls
