"""The training loop: learns, honours soft targets, parameter subsets and cancellation; teacher cards."""

import pytest
import torch

from vizcore import zoo
from vizcore.models import build_model
from vizcore.train import TrainConfig, fit, train_teacher
from vizcore.core.progress import Cancelled


def test_fit_learns_digits(digits):
    model = build_model("linear", digits.input_shape, 10, seed=0)
    losses = fit(model, digits.train_x, digits.train_y, TrainConfig(epochs=5, lr=0.01))
    assert losses[-1] < losses[0] * 0.6
    acc = (model(digits.test_x).argmax(1) == digits.test_y).float().mean()
    assert acc > 0.85 and not model.training


def test_soft_targets_match_a_teacher(digits, digits_linear):
    soft = digits_linear(digits.train_x).softmax(1).detach()
    student = build_model("linear", digits.input_shape, 10, seed=1)
    fit(student, digits.train_x, None, TrainConfig(epochs=20, lr=0.01), soft_targets=soft)
    agree = (student(digits.test_x).argmax(1) == digits_linear(digits.test_x).argmax(1)).float().mean()
    assert agree > 0.9


def test_params_subset_trains_only_those(digits):
    model = build_model("linear", digits.input_shape, 10, seed=0)
    w0, b0 = model.fc1.weight.clone(), model.fc1.bias.clone()
    fit(model, digits.train_x, digits.train_y, TrainConfig(epochs=1), params=[model.fc1.bias])
    assert torch.equal(model.fc1.weight, w0) and not torch.equal(model.fc1.bias, b0)


def test_cancel_stops_and_saves_nothing(digits):
    calls = []
    with pytest.raises(Cancelled):
        train_teacher(digits, "linear", TrainConfig(epochs=50), "never", cancelled=lambda: calls.append(1) or len(calls) > 3)
    assert not any(e.card.name == "never" for e in zoo.list_models())


def test_train_teacher_writes_a_card(digits):
    seen = []
    e = train_teacher(digits, "mlp", TrainConfig(epochs=3, lr=0.01), "t1", command="python -m vizcore train ...",
                      progress=lambda f, m: seen.append(f))
    assert e.id == "user:t1" and seen[-1] == 1.0 and seen == sorted(seen)
    c = e.card
    assert c.dataset == "digits" and c.arch == "mlp" and c.hyperparameters["epochs"] == 3 and c.seed == 0
    assert 0 <= c.metrics["accuracy"] <= 1 and len(c.metrics["per_class"]) == 10 and c.train_seconds > 0


def test_fit_needs_targets(digits):
    with pytest.raises(ValueError, match="hard labels, soft targets or a relabel"):
        fit(build_model("linear", (1, 8, 8), 10), digits.train_x, None, TrainConfig())
