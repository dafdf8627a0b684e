"""The seed architectures, built for any input shape and class count.

Every zoo model is a flat ``nn.Sequential`` with readable layer names (``conv1``, ``pool1``, ``fc1``...), so
the UI can list layers and the knockout code can run the tail of a network from any layer. Models output
pre-softmax logits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from vizcore.core.layers import model_device


class ArchitectureError(ValueError):
    """The architecture cannot be built for this input shape."""


def _conv_stack(in_shape, specs, act: Callable[[], nn.Module], pool: type[nn.Module], kernel: int) -> tuple[list, tuple]:
    """conv-act-pool blocks with 'same' padding; returns the layers and the output shape."""
    c, h, w = in_shape
    layers: list[tuple[str, nn.Module]] = []
    for i, out_c in enumerate(specs, start=1):
        if h < 2 or w < 2:
            raise ArchitectureError(f"input {in_shape} is too small for {len(specs)} conv+pool blocks")
        layers += [
            (f"conv{i}", nn.Conv2d(c, out_c, kernel, padding=kernel // 2)),
            (f"act{i}", act()),
            (f"pool{i}", pool(2)),
        ]
        c, h, w = out_c, h // 2, w // 2
    return layers, (c, h, w)


def _dense(in_features: int, hidden: list[int], num_classes: int, act: Callable[[], nn.Module], first: int = 1,
           dropout: float = 0.0) -> list[tuple[str, nn.Module]]:
    layers: list[tuple[str, nn.Module]] = []
    f = in_features
    for i, units in enumerate(hidden, start=first):
        layers += [(f"fc{i}", nn.Linear(f, units)), (f"fc_act{i}", act())]
        f = units
    if dropout:
        layers.append(("dropout", nn.Dropout(dropout)))
    layers.append((f"fc{first + len(hidden)}", nn.Linear(f, num_classes)))
    return layers


def _flat(shape) -> int:
    c, h, w = shape
    return c * h * w


def linear(input_shape, num_classes):
    """No hidden layer: one weight row per class (seed 003 section 3)."""
    return [("flatten", nn.Flatten()), ("fc1", nn.Linear(_flat(input_shape), num_classes))]


def mlp(input_shape, num_classes):
    """One hidden layer of 30 sigmoid units (seed 003 section 3)."""
    return [("flatten", nn.Flatten())] + _dense(_flat(input_shape), [30], num_classes, nn.Sigmoid)


def mlp3(input_shape, num_classes):
    """Three hidden ReLU layers (seed 000 section 4.1, student (5))."""
    return [("flatten", nn.Flatten())] + _dense(_flat(input_shape), [256, 128, 64], num_classes, nn.ReLU)


def _cnn(channels, units, act, pool, input_shape, num_classes, kernel=3, dropout=0.5):
    convs, shape = _conv_stack(input_shape, channels, act, pool, kernel)
    return convs + [("flatten", nn.Flatten())] + _dense(_flat(shape), units, num_classes, act, dropout=dropout)


def cnn(input_shape, num_classes):
    """Seed 000's teacher h1: conv-maxpool-conv-maxpool-fc-dropout-fc (ReLU)."""
    return _cnn([32, 64], [128], nn.ReLU, nn.MaxPool2d, input_shape, num_classes)


def cnn_s(input_shape, num_classes):
    """CNN_S: half the channels and units of ``cnn`` (seed 000 section 4.1)."""
    return _cnn([16, 32], [64], nn.ReLU, nn.MaxPool2d, input_shape, num_classes)


def cnn_l(input_shape, num_classes):
    """CNN_L: one more conv and fc layer than ``cnn``, average pooling and ELU (seed 000 section 4.1)."""
    return _cnn([32, 64, 128], [256, 128], nn.ELU, nn.AvgPool2d, input_shape, num_classes)


def cnn_tiny(input_shape, num_classes):
    """Fewer weights than CNN_S (seed 000 section 4.1, student (4))."""
    return _cnn([4, 8], [16], nn.ReLU, nn.MaxPool2d, input_shape, num_classes, dropout=0.0)


def lenet_faces(input_shape, num_classes):
    """Seed 002 section 4.1: three 5x5 conv layers (5, 8, 10 maps), 2x2 max pooling, tanh, 20 hidden units."""
    return _cnn([5, 8, 10], [20], nn.Tanh, nn.MaxPool2d, input_shape, num_classes, kernel=5, dropout=0.0)


ARCHITECTURES: dict[str, Callable] = {
    "linear": linear, "mlp": mlp, "mlp3": mlp3, "cnn": cnn, "cnn_s": cnn_s, "cnn_l": cnn_l,
    "cnn_tiny": cnn_tiny, "lenet_faces": lenet_faces,
}


def build_model(arch: str, input_shape: tuple[int, int, int], num_classes: int, seed: int | None = None) -> nn.Sequential:
    """A fresh model of a zoo architecture (in eval mode), seeded if ``seed`` is given."""
    if arch not in ARCHITECTURES:
        raise ArchitectureError(f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = nn.Sequential(OrderedDict(ARCHITECTURES[arch](tuple(input_shape), num_classes)))
    return model.eval()


def layer_table(model: nn.Module, input_shape: tuple[int, int, int]) -> list[dict]:
    """One row per leaf layer: name, type, output shape and parameter count (from one forward pass on zeros)."""
    rows: list[dict] = []
    shapes: dict[str, tuple] = {}
    hooks = []
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    for name, mod in leaves:
        hooks.append(mod.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=model_device(model)))
    finally:
        for h in hooks:
            h.remove()
    for name, mod in leaves:
        rows.append({
            "name": name, "type": type(mod).__name__, "output_shape": list(shapes.get(name, ())),
            "parameters": sum(p.numel() for p in mod.parameters(recurse=False)),
        })
    return rows


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
