"""Every architecture builds for every input shape, with readable names and the seeds' layer sizes."""

import pytest
import torch
from torch import nn

from vizcore.models import ARCHITECTURES, ArchitectureError, build_model, count_parameters, layer_table
from vizcore.core.layers import conv_layers

SHAPES = [(1, 8, 8), (1, 28, 28), (1, 60, 60), (3, 32, 32)]


@pytest.mark.parametrize("arch", list(ARCHITECTURES))
@pytest.mark.parametrize("shape", SHAPES)
def test_shapes(arch, shape):
    model = build_model(arch, shape, 7, seed=0)
    assert model(torch.rand(3, *shape)).shape == (3, 7)
    assert not model.training
    names = [n for n, _ in model.named_children()]
    assert all(n.replace("_", "").isalnum() for n in names) and len(set(names)) == len(names)


def test_seeded_builds_are_identical():
    a, b = build_model("cnn", (1, 28, 28), 10, seed=3), build_model("cnn", (1, 28, 28), 10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_relative_sizes_follow_seed_000():
    n = {a: count_parameters(build_model(a, (1, 28, 28), 10)) for a in ("cnn", "cnn_s", "cnn_l", "cnn_tiny")}
    assert n["cnn_tiny"] < n["cnn_s"] < n["cnn"] < n["cnn_l"]
    cnn, small = build_model("cnn", (1, 28, 28), 10), build_model("cnn_s", (1, 28, 28), 10)
    assert small.conv1.out_channels * 2 == cnn.conv1.out_channels and small.fc1.out_features * 2 == cnn.fc1.out_features
    large = build_model("cnn_l", (1, 28, 28), 10)
    assert len(conv_layers(large)) == 3 and isinstance(large.pool1, nn.AvgPool2d) and isinstance(large.act1, nn.ELU)


def test_lenet_faces_is_seed_002_net():
    m = build_model("lenet_faces", (1, 60, 60), 15)
    assert [m.get_submodule(c).out_channels for c in conv_layers(m)] == [5, 8, 10]
    assert all(m.get_submodule(c).kernel_size == (5, 5) for c in conv_layers(m))
    assert m.fc1.out_features == 20 and isinstance(m.act1, nn.Tanh) and isinstance(m.pool1, nn.MaxPool2d)


def test_mlp_and_linear():
    assert build_model("mlp", (1, 28, 28), 10).fc1.out_features == 30
    lin = build_model("linear", (1, 28, 28), 10)
    assert [type(m) for m in lin.children()] == [nn.Flatten, nn.Linear]


def test_layer_table():
    rows = layer_table(build_model("cnn", (1, 28, 28), 10), (1, 28, 28))
    by = {r["name"]: r for r in rows}
    assert by["conv1"]["output_shape"] == [32, 28, 28] and by["pool2"]["output_shape"] == [64, 7, 7]
    assert by["conv1"]["parameters"] == 32 * 9 + 32
    assert sum(r["parameters"] for r in rows) == count_parameters(build_model("cnn", (1, 28, 28), 10))


def test_too_small_input_and_unknown_arch():
    with pytest.raises(ArchitectureError, match="too small"):
        build_model("cnn_l", (1, 4, 4), 10)
    with pytest.raises(ArchitectureError, match="known: linear"):
        build_model("resnet", (1, 8, 8), 10)

