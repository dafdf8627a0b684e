"""The public render loop (lucent's render_vis): composable objectives, custom parameterizations."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import vizcore
from vizcore.explain import objectives as obj
from vizcore.explain.visualize import VisualizeConfig
from vizcore.models import build_model

CFG = VisualizeConfig(steps=30, threshold=None, lr=0.1)


@pytest.fixture(scope="module")
def model():
    return build_model("cnn_tiny", (1, 8, 8), 4, seed=0)


def test_render_raises_the_objective_and_penalties_compose(model):
    start = torch.full((4, 1, 8, 8), 0.5)
    targets = torch.arange(4)
    before = model(start).gather(1, targets[:, None])[:, 0]
    plain = vizcore.render(model, obj.class_logit(targets), start, CFG)
    assert plain.shape == start.shape and 0 <= plain.min() and plain.max() <= 1
    after = model(plain).gather(1, targets[:, None])[:, 0]
    assert (after > before).all()
    shrunk = vizcore.render(model, obj.class_logit(targets) - 5.0 * obj.l2(), start, CFG)
    assert shrunk.pow(2).sum() < plain.pow(2).sum()  # the L2 penalty, composed with -, pulls pixels down


def test_render_with_a_custom_parameterization(model):
    def upsampled(start):  # a 4x4 parameter shown as 8x8 images (a lucent-style parameterization)
        p = torch.zeros(start.shape[0], 1, 4, 4, requires_grad=True)
        return p, lambda: torch.sigmoid(torch.nn.functional.interpolate(p, scale_factor=2))

    out = vizcore.render(model, obj.channel_mean("conv1", torch.tensor([0, 1])), torch.zeros(2, 1, 8, 8), CFG,
                         param=upsampled)
    assert torch.equal(out[:, :, ::2, ::2], out[:, :, 1::2, 1::2])  # every pixel repeated 2x2
    sig = vizcore.render(model, obj.class_logit(torch.tensor([1])), torch.zeros(1, 1, 8, 8), CFG,
                         param=partial(obj.pixel_param, mode="sigmoid"))
    assert 0 < sig.min() and sig.max() < 1


def test_render_needs_a_batch(model):
    with pytest.raises(ValueError, match="batch of images"):
        vizcore.render(model, obj.l2(), torch.zeros(1, 8, 8))
