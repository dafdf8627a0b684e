"""Prediction gradients: analytic answers on tiny models, class averages, rankings, characteristic features."""

from __future__ import annotations

import pytest
import torch

from vizcore.core.layers import feature_layer
from vizcore.explain import gradients as G
from vizcore.models import build_model
from vizcore.train import TrainConfig, fit

# The planted region: rows 7..10, cols 7..10 of a 12x12 image decides the class; the rest is noise.
REGION = (7, 7, 11, 11)


def planted(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 12, 12, generator=g) * 0.5
    y = torch.randint(0, 2, (n,), generator=g)
    x[y == 0, 0, 8, 7:11] = 1.0   # class 0: a horizontal bar inside the region
    x[y == 1, 0, 7:11, 8] = 1.0   # class 1: a vertical bar inside the region
    return x, y


@pytest.fixture(scope="module")
def planted_cnn():
    x, y = planted(300, 0)
    model = build_model("cnn_tiny", (1, 12, 12), 2, seed=0)
    fit(model, x, y, TrainConfig(epochs=6, batch_size=32, lr=5e-3))
    return model


@pytest.fixture(scope="module")
def zero_out_mlp():
    """An `mlp` whose hidden unit 3 has all-zero outgoing weights."""
    model = build_model("mlp", (1, 8, 8), 10, seed=1)
    with torch.no_grad():
        model.fc2.weight[:, 3] = 0
    return model


def test_linear_input_pg_is_the_weight_row(digits, digits_linear):
    x = digits.test_x[:6]
    for c in (0, 7):
        g = G.input_gradient(digits_linear, x, c, output="logit")
        assert torch.allclose(g.flatten(1), digits_linear.fc1.weight[c].expand(6, -1), atol=1e-6)
        flat = G.prediction_gradients(digits_linear, x, c, layers=["flatten"], output="logit")["flatten"]
        assert torch.allclose(flat, digits_linear.fc1.weight[c].expand(6, -1), atol=1e-6)


def test_probability_pg_is_softmax_chain_rule(digits, digits_linear):
    """d p_c / d x = p_c (w_c - sum_k p_k w_k) for a linear model."""
    x, c = digits.test_x[:4], 2
    p = torch.softmax(digits_linear(x), 1)
    w = digits_linear.fc1.weight
    expected = p[:, c:c + 1] * (w[c] - p @ w)
    got = G.input_gradient(digits_linear, x, c, output="prob").flatten(1)
    assert torch.allclose(got, expected, atol=1e-6)


def test_unit_with_zero_outgoing_weights_has_zero_pg(digits, zero_out_mlp):
    pg = G.prediction_gradients(zero_out_mlp, digits.test_x[:8], 5, layers=["fc1"])["fc1"]
    assert pg.shape == (8, 30)
    assert torch.all(pg[:, 3] == 0)
    assert pg.abs().sum(0).gt(0).sum() == 29


def test_class_average_equals_mean_of_per_image_pg(digits, digits_cnn):
    x = digits.test_x[digits.test_y == 4][:37]
    per_image = G.prediction_gradients(digits_cnn, x, 4)
    avg = G.class_average_pg(digits_cnn, x, 4, batch_size=10)
    for name, g in per_image.items():
        assert torch.allclose(avg[name], g.mean(0), atol=1e-7)
    scores = G.class_filter_scores(digits_cnn, x, 4, batch_size=10)
    assert scores["conv1"].shape == (16,) and scores["conv2"].shape == (32,)
    assert torch.allclose(scores["conv2"], per_image["conv2"].mean(0).pow(2).sum((-2, -1)).sqrt(), atol=1e-6)


def test_aggregations():
    pg = torch.tensor([[[1.0, -2.0], [0.0, 2.0]], [[-3.0, 0.0], [0.0, 0.5]]])[None]  # (1, 2, 2, 2)
    assert torch.allclose(G.aggregate(pg, "fro"), torch.tensor([[3.0, (9 + 0.25) ** 0.5]]))
    assert torch.allclose(G.aggregate(pg, "l1"), torch.tensor([[5.0, 3.5]]))
    assert torch.allclose(G.aggregate(pg, "max"), torch.tensor([[2.0, 0.5]]))
    sal = G.pixel_saliency(pg, "l1", size=(4, 4))
    assert sal.shape == (1, 4, 4) and sal[0, 0, 0] == 4.0 and sal[0, 3, 3] == 2.5
    with pytest.raises(ValueError, match="norm"):
        G.aggregate(pg, "l7")


def test_rank_filters_orders_across_layers():
    scores = {"conv1": torch.tensor([0.2, 0.9]), "conv2": torch.tensor([0.5, 0.1, 0.95])}
    assert G.rank_filters(scores)[:3] == [("conv2", 2, pytest.approx(0.95)), ("conv1", 1, pytest.approx(0.9)),
                                          ("conv2", 0, pytest.approx(0.5))]
    assert G.rank_filters(scores, descending=False)[0][:2] == ("conv2", 1)
    assert len(G.rank_filters(scores)) == 5


def test_conv_layer_means_its_feature_map(digits_cnn):
    assert feature_layer(digits_cnn, "conv1") == "act1"
    assert feature_layer(digits_cnn, "fc2") == "fc2"
    with pytest.raises(ValueError, match="no layer"):
        feature_layer(digits_cnn, "conv9")


def test_planted_feature_box_covers_the_region(planted_cnn):
    """The box centre lies on the planted region, give or take the 3x3 kernel's reach (one pixel for conv1,
    two for pixel gradients, which pass back through conv1 as well)."""
    x, y = planted(12, 1)
    assert (planted_cnn(x).argmax(1) == y).float().mean() == 1.0
    top, left, bottom, right = REGION
    for layer, slack in (("conv1", 1), ("input", 2)):
        inside = 0
        for i in range(len(x)):
            f = G.characteristic_feature(planted_cnn, x[i], int(y[i]), layer=layer)
            b = f.box
            cy, cx = (b[0] + b[2] - 1) / 2, (b[1] + b[3] - 1) / 2
            assert top - slack <= cy <= bottom - 1 + slack and left - slack <= cx <= right - 1 + slack, (layer, i, b)
            inside += top <= cy <= bottom - 1 and left <= cx <= right - 1
            assert f.heat.shape == (12, 12) and f.pg == pytest.approx(float(f.pgs.max()))
        assert inside >= 8, layer  # most centres fall strictly inside


def test_looks_like_takes_pg_wrt_the_other_class(planted_cnn):
    x, _ = planted(1, 3)
    r = G.looks_like(planted_cnn, x[0], 0, 1, layer="conv1")
    pg_b = G.prediction_gradients(planted_cnn, x, 1, layers=["conv1"])["conv1"][0, r.feature.filter]
    assert r.feature.target == 1 and r.own.target == 0
    assert torch.allclose(r.heat_b, pg_b)  # conv1 keeps the 12x12 size, so the map is not resampled
    assert torch.allclose(r.diff, r.heat_b - r.heat_a)


def test_bad_input_gets_clear_errors(digits, digits_cnn, digits_linear):
    x = digits.test_x[:2]
    with pytest.raises(ValueError, match="target class"):
        G.prediction_gradients(digits_cnn, x, 10)
    with pytest.raises(ValueError, match="output"):
        G.prediction_gradients(digits_cnn, x, 1, output="softmax")
    with pytest.raises(ValueError, match="no conv layers"):
        G.prediction_gradients(digits_linear, x, 1)
    with pytest.raises(ValueError, match="no images"):
        G.class_filter_scores(digits_cnn, x[:0], 1)
    with pytest.raises(ValueError, match="not a conv layer"):
        G.characteristic_feature(digits_cnn, x[0], 1, layer="fc1")
