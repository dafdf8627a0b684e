"""The seed architectures, built for any input shape and class count.

Every zoo model is a flat ``nn.Sequential`` with readable layer names (``conv1``, ``pool1``, ``fc1``...), so
the UI can list layers and the knockout code can run the tail of a network from any layer. Models output
pre-softmax logits.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from vizcore.core.hooks import capture
from vizcore.core.layers import model_device


class ArchitectureError(ValueError):
    """The architecture cannot be built for this input shape."""


def _conv_stack(in_shape, specs, act: Callable[[], nn.Module], pool: type[nn.Module], kernel: int) -> tuple[list, tuple]:
    """conv-act-pool blocks with 'same' padding; returns the layers and the output shape."""
    if len(in_shape) != 3:
        raise ArchitectureError(f"a convolutional network needs images (C, H, W), not feature rows of shape {list(in_shape)}; "
                                "use a dense architecture (linear, mlp, mlp3, mlp10)")
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
    return math.prod(shape)


def linear(input_shape, num_classes):
    """No hidden layer: one weight row per class (seed 003 section 3)."""
    return [("flatten", nn.Flatten()), ("fc1", nn.Linear(_flat(input_shape), num_classes))]


def mlp(input_shape, num_classes):
    """One hidden layer of 30 sigmoid units (seed 003 section 3)."""
    return [("flatten", nn.Flatten())] + _dense(_flat(input_shape), [30], num_classes, nn.Sigmoid)


def mlp3(input_shape, num_classes):
    """Three hidden ReLU layers (seed 000 section 4.1, student (5))."""
    return [("flatten", nn.Flatten())] + _dense(_flat(input_shape), [256, 128, 64], num_classes, nn.ReLU)


def mlp10(input_shape, num_classes):
    """Seed 004's teacher for unstructured data: 10 hidden layers of 128 ELU units, each followed by dropout
    (0.15, as in KegNet's published code)."""
    layers: list[tuple[str, nn.Module]] = [("flatten", nn.Flatten())]
    f = _flat(input_shape)
    for i in range(1, 11):
        layers += [(f"fc{i}", nn.Linear(f, 128)), (f"fc_act{i}", nn.ELU()), (f"drop{i}", nn.Dropout(0.15))]
        f = 128
    return layers + [("fc11", nn.Linear(f, num_classes))]


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
    "linear": linear, "mlp": mlp, "mlp3": mlp3, "mlp10": mlp10, "cnn": cnn, "cnn_s": cnn_s, "cnn_l": cnn_l,
    "cnn_tiny": cnn_tiny, "lenet_faces": lenet_faces,
}


def build_model(arch: str, input_shape: tuple[int, ...], num_classes: int, seed: int | None = None) -> nn.Sequential:
    """A fresh model of a zoo architecture (in eval mode), seeded if ``seed`` is given."""
    if arch not in ARCHITECTURES:
        raise ArchitectureError(f"unknown architecture '{arch}'; known: {', '.join(ARCHITECTURES)}")
    if seed is not None:
        torch.manual_seed(seed)
    model = nn.Sequential(OrderedDict(ARCHITECTURES[arch](tuple(input_shape), num_classes)))
    return model.eval()


class LowRankLinear(nn.Sequential):
    """A dense layer factorized as ``first`` (in -> rank, no bias) then ``last`` (rank -> out, with the bias):
    W ~ U V, the two-factor form of KegNet's Tucker-decomposed dense layers (seed 004, "Tucker Decomposition")."""

    def __init__(self, in_features: int, out_features: int, rank: int, bias: bool = True):
        super().__init__(OrderedDict(first=nn.Linear(in_features, rank, bias=False),
                                     last=nn.Linear(rank, out_features, bias=bias)))


class Tucker2Conv(nn.Sequential):
    """A convolution factorized by Tucker-2 over its channel modes (Kim et al. 2016, used by seed 004):
    1x1 conv to ``in_rank`` channels, the k x k core conv to ``out_rank``, 1x1 conv back out (with the bias)."""

    def __init__(self, conv: nn.Conv2d, in_rank: int, out_rank: int):
        super().__init__(OrderedDict(
            first=nn.Conv2d(conv.in_channels, in_rank, 1, bias=False),
            core=nn.Conv2d(in_rank, out_rank, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                           dilation=conv.dilation, bias=False),
            last=nn.Conv2d(out_rank, conv.out_channels, 1, bias=conv.bias is not None),
        ))


def factorized_skeleton(model: nn.Sequential, ranks: dict[str, list[int]]) -> nn.Sequential:
    """``model`` with the named top-level layers replaced by untrained factorized ones of the given ranks
    (``{"fc1": [r]}`` for a dense layer, ``{"conv2": [in_rank, out_rank]}`` for a convolution). Layer names stay,
    so a compressed model lists, hooks and knocks out like its original."""
    children = OrderedDict(model.named_children())
    for name, r in ranks.items():
        layer = children.get(name)
        if isinstance(layer, nn.Linear) and len(r) == 1:
            children[name] = LowRankLinear(layer.in_features, layer.out_features, int(r[0]), layer.bias is not None)
        elif isinstance(layer, nn.Conv2d) and len(r) == 2:
            children[name] = Tucker2Conv(layer, int(r[0]), int(r[1]))
        else:
            raise ValueError(f"layer '{name}' is not a dense layer with one rank or a convolution with two ranks")
    return nn.Sequential(children).train(model.training)


def layer_table(model: nn.Module, input_shape: tuple[int, int, int]) -> list[dict]:
    """One row per leaf layer: name, type, output shape and parameter count (from one forward pass on zeros)."""
    leaves = [(n, m) for n, m in model.named_modules() if n and not list(m.children())]
    with capture(model, [n for n, _ in leaves]) as out, torch.no_grad():  # under the model's lock: it may be shared
        model(torch.zeros(1, *input_shape, device=model_device(model)))
        shapes = {n: tuple(o.shape[1:]) for n, o in out.items()}
    rows: list[dict] = []
    for name, mod in leaves:
        rows.append({
            "name": name, "type": type(mod).__name__, "output_shape": list(shapes.get(name, ())),
            "parameters": sum(p.numel() for p in mod.parameters(recurse=False)),
        })
    return rows


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
