"""Targeted perturbations: they raise the target's probability, stay in range, and the sweep counts right."""

from __future__ import annotations

import json
import math

import pytest
import torch
from conftest import assert_untouched, weights_snapshot

from vizcore.core.progress import Cancelled
from vizcore.explain import perturb as A


def test_small_steps_raise_target_probability_and_stay_in_range(digits, digits_cnn):
    x, y = digits.test_x[:30], digits.test_y[:30]
    target = 3
    keep = y != target
    x = x[keep]
    p0 = torch.softmax(digits_cnn(x), 1)[:, target]
    for steps in (1, 3):
        xp = A.perturb(digits_cnn, x, target, 0.05, steps=steps)
        p1 = torch.softmax(digits_cnn(xp), 1)[:, target]
        assert xp.min() >= 0 and xp.max() <= 1
        moved = (xp - x).flatten(1).norm(dim=1)
        assert torch.all(moved <= 0.05 + 1e-5)
        assert (p1 > p0).float().mean() >= 0.9, (steps, p0, p1)


def test_step_is_along_the_normalised_input_gradient(digits, digits_linear):
    """Without clipping, a linear model's logit step is exactly the normalised weight row."""
    x = torch.full((1, 1, 8, 8), 0.5)
    xp = A.perturb(digits_linear, x, 4, 0.1, output="logit")
    w = digits_linear.fc1.weight[4]
    assert torch.allclose((xp - x).flatten(), 0.1 * w / w.norm(), atol=1e-6)


def test_strip_reports_confidences(digits, digits_cnn):
    img, cls = digits.test_x[0], int(digits.test_y[0])
    s = A.perturbation_strip(digits_cnn, img, cls, 5, [0, 1, 4])
    assert torch.equal(s.images[0], img)
    p = torch.softmax(digits_cnn(s.images), 1)
    assert s.true_conf == pytest.approx(p[:, cls].tolist(), abs=1e-6)
    assert s.target_conf == pytest.approx(p[:, 5].tolist(), abs=1e-6)
    assert s.target_conf[-1] > s.target_conf[0]


def test_sweep_counts_and_round_trips(digits, digits_cnn):
    cfg = A.PerturbConfig(eps=(0.0, 3.0), per_class=3, targets=(1, 7))
    before = weights_snapshot(digits_cnn)
    r = A.perturbation_sweep(digits_cnn, digits.test_x, digits.test_y, cfg)
    assert_untouched(digits_cnn, before)
    assert r.n_images == 30 and r.targets == [1, 7]
    succ = torch.tensor(r.success)
    assert succ.shape == (2, 10, 10)
    assert math.isnan(r.success[0][1][1]) and math.isnan(r.success[0][0][0])  # diagonal, untried column
    # eps 0 changes nothing: success is exactly the base confusion into the target, error the base error
    keep = A.sample_per_class(digits.test_y, 3)
    pred = digits_cnn(digits.test_x[keep]).argmax(1)
    y = digits.test_y[keep]
    for b in (1, 7):
        src = y != b
        assert r.target_success[0][[1, 7].index(b)] == pytest.approx(float((pred[src] == b).float().mean()))
    assert r.error[0] == pytest.approx(float(sum((pred[y != b] != y[y != b]).sum() for b in (1, 7)) / 54))
    assert r.error[1] >= r.error[0] and r.success_rate[1] > r.success_rate[0]
    again = A.SweepResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert again.error == r.error and math.isnan(again.success[0][1][1])


def test_sweep_cancel_and_bad_config(digits, digits_cnn):
    with pytest.raises(Cancelled):
        A.perturbation_sweep(digits_cnn, digits.test_x, digits.test_y, A.PerturbConfig(per_class=1),
                             cancelled=lambda: True)
    with pytest.raises(ValueError, match="step size"):
        A.PerturbConfig(eps=())
    with pytest.raises(ValueError, match="target classes"):
        A.perturbation_sweep(digits_cnn, digits.test_x, digits.test_y, A.PerturbConfig(per_class=1, targets=(12,)))
