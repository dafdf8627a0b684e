"""vizcore.core.layers (which layers of a model, in one place) and the small functions moved out of pages."""

from __future__ import annotations

import threading

import pytest
import torch
from torch import nn

from vizcore.core import jobs
from vizcore.core.hooks import model_lock
from vizcore.core.layers import (conv_layers, default_layers, dense_layers, feature_layer, knockable_layers,
                                 model_device, num_classes, penultimate_layer)
from vizcore.explain.knockout import score_mask
from vizcore.metrics import evaluate_model, predict_logits
from vizcore.models import build_model


def test_layers_of_a_zoo_cnn():
    m = build_model("cnn_s", (1, 8, 8), 5, seed=0)
    assert conv_layers(m) == ["conv1", "conv2"]
    assert dense_layers(m) == ["fc1", "fc2"]
    assert knockable_layers(m) == {"conv1": 16, "conv2": 32, "fc1": 64}
    assert default_layers(m) == ["conv1", "conv2"]
    assert num_classes(m) == 5
    assert feature_layer(m, "conv1") == "act1" and feature_layer(m, "fc2") == "fc2"
    assert penultimate_layer(m) == "dropout"
    mlp = build_model("mlp", (1, 8, 8), 3, seed=0)
    assert default_layers(mlp) == ["fc1"] and penultimate_layer(mlp) == "fc_act1"
    with pytest.raises(ValueError, match="no layer 'conv9'"):
        feature_layer(m, "conv9")


def test_model_device_of_models_without_parameters():
    assert model_device(nn.Flatten()) == torch.device("cpu")
    bn = nn.BatchNorm1d(3, affine=False)
    assert model_device(bn) == bn.running_mean.device
    assert model_device(nn.Linear(2, 2).to(torch.float64)) == torch.device("cpu")
    with pytest.raises(ValueError, match="no Linear output layer"):
        num_classes(nn.Flatten())
    with pytest.raises(ValueError, match="no layer before"):
        penultimate_layer(nn.Sequential(nn.Linear(2, 2)))


def test_score_mask_takes_top_and_bottom_per_layer_and_adds_extra():
    scores = {"a": [0.1, 0.9, 0.5, 0.3], "b": [2.0, 1.0, 3.0]}
    assert score_mask(scores, {"a": 1}, {"a": 1}) == {"a": [0, 1]}
    assert score_mask(scores, {"a": 2, "b": 1}, {}, {"b": [1], "a": [3]}) == {"a": [1, 2, 3], "b": [1, 2]}
    assert score_mask(scores, {}, {}) == {}
    assert score_mask({"a": [1.0, 1.0, 0.0]}, {"a": 1}, {}) == {"a": [0]}  # ties keep filter order


def test_predict_logits_waits_for_the_models_lock_and_restores_its_mode():
    m = build_model("linear", (1, 4, 4), 3, seed=0).train()
    x = torch.rand(5, 1, 4, 4)
    out: list[torch.Tensor] = []
    with model_lock(m):
        t = threading.Thread(target=lambda: out.append(predict_logits(m, x)))
        t.start()
        t.join(0.3)
        assert t.is_alive() and not out, "predict_logits ran while another operation held the model's lock"
    t.join()
    assert out[0].shape == (5, 3) and m.training


def test_evaluate_model_with_predictions():
    m = build_model("linear", (1, 4, 4), 3, seed=0)
    x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    r = evaluate_model(m, x, y, ["a", "b", "c"], predictions=True)
    logits = m(x).detach()
    assert r["pred"] == logits.argmax(1).tolist()
    assert r["confidence"] == pytest.approx(logits.softmax(1).max(1).values.tolist())
    assert r["accuracy"] == pytest.approx((logits.argmax(1) == y).float().mean().item())
    assert "pred" not in evaluate_model(m, x, y, ["a", "b", "c"])


class _Result:
    def __init__(self, v):
        self.v = v

    def to_dict(self):
        return {"v": self.v}


def test_job_call_passes_progress_and_cancel_and_stores_to_dict():
    def op(a, *, scale, progress=None, cancelled=None):
        progress(0.5, "half")
        assert cancelled() is False
        return _Result(a * scale)

    job = jobs.start_job("test-call", "t", jobs.job_call(op, 3, scale=2), {}, wait=True)
    assert jobs.get_job(job.id).result == {"v": 6}


def test_distill_sizes_are_parsed_and_checked_in_one_place():
    from vizcore.distill import protocol
    from vizcore.distill.synthesis import SynthesisConfig

    assert protocol.parse_sizes("200, 500 1000") == (200, 500, 1000) and protocol.parse_sizes("") == ()
    with pytest.raises(ValueError, match="whole numbers"):
        protocol.parse_sizes("200, -5")
    with pytest.raises(ValueError, match="between 1 and the synthetic set's 300 images"):
        protocol.DistillConfig("zoo:x", "digits", SynthesisConfig(n=300), sizes=(100, 400))


def test_compare_reports_lists_each_teacher_once():
    per = [{"class": "a", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}]

    def report(method):
        s = {"name": "cnn", "report": {"per_class": per}, "accuracy": 0.8, "ratio": 0.9, "selection": {"score": 0.7},
             "seconds": 1.0}
        return {"config": {"synthesis": {"method": method}}, "synthesis": {"n": 10},
                "teacher": {"id": "zoo:t", "report": {"per_class": per}, "accuracy": 0.9},
                "students": [s], "baselines": []}

    from vizcore.distill.protocol import compare_reports

    series, rows = compare_reports({"r1": report("pixel-am"), "r2": report("kegnet")})
    assert [(label, role) for label, role, _ in series] == [
        ("zoo:t (teacher)", "teacher"), ("cnn pixel-am x10", "student"), ("cnn kegnet x10", "student")]
    assert [(r["run"], r["role"]) for r in rows] == [("r1", "teacher"), ("r1", "student"), ("r2", "teacher"),
                                                     ("r2", "student")]


def test_every_config_round_trips_through_json():
    import json

    from vizcore.distill.protocol import DistillConfig
    from vizcore.distill.synthesis import SynthesisConfig
    from vizcore.explain.importance import StudyConfig
    from vizcore.explain.perturb import PerturbConfig
    from vizcore.explain.visualize import VisualizeConfig
    from vizcore.train import TrainConfig

    configs = [TrainConfig(epochs=3, lr=0.01), PerturbConfig(eps=(0.0, 2.0), targets=(1, 2)),
               StudyConfig(target=2, layers=("conv1",), random_seeds=(0, 1)),
               VisualizeConfig(threshold=None, threshold_range=(0.9, 0.99)),
               DistillConfig("zoo:t", "digits", SynthesisConfig(n=100), sizes=(10, 50))]
    for c in configs:
        again = type(c).from_dict(json.loads(json.dumps(c.to_dict())))
        assert again == c, type(c).__name__
    assert TrainConfig.from_dict({"epochs": 2, "unknown_key": 1}) == TrainConfig(epochs=2)
