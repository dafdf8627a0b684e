"""Which layers of a model: decided here, once, for every method and page.

Any ``nn.Module`` works; zoo models are flat ``nn.Sequential``s with readable names (``conv1``, ``fc1``...).
"""

from __future__ import annotations

import torch
from torch import nn

# Element-wise activations: a layer's units are read after the one that directly follows it.
_ACTIVATIONS = (nn.ReLU, nn.Tanh, nn.ELU, nn.Sigmoid, nn.LeakyReLU, nn.GELU, nn.SiLU)


def model_device(model: nn.Module) -> torch.device:
    """The device a model lives on (its weights, else its buffers; CPU for a model with neither).

    Computations follow the model, never a global device.
    """
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def conv_layers(model: nn.Module) -> list[str]:
    """Names of the model's ``Conv2d`` layers, in order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def dense_layers(model: nn.Module) -> list[str]:
    """Names of the model's ``Linear`` layers, in order."""
    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]


def num_classes(model: nn.Module) -> int:
    """Number of classes: the width of the model's last ``Linear`` layer."""
    last = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ValueError("the model has no Linear output layer")
    return last[-1].out_features


def knockable_layers(model: nn.Module) -> dict[str, int]:
    """Conv and linear layers whose filters / units can be knocked out, with their widths (not the output layer)."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return {n: (m.out_channels if isinstance(m, nn.Conv2d) else m.out_features) for n, m in layers[:-1]}


def default_layers(model: nn.Module) -> list[str]:
    """The layers whose filters are ranked together: the conv layers (seed 002 ranks the filters of all conv
    layers at once), or the hidden dense layers of a model without convolutions."""
    knockable = knockable_layers(model)
    return [n for n in conv_layers(model) if n in knockable] or list(knockable)


def feature_layer(model: nn.Module, layer: str) -> str:
    """Name of the module whose output is ``layer``'s units: its activation when one follows it directly."""
    names = [n for n, _ in model.named_children()]
    if layer not in dict(model.named_modules()):
        raise ValueError(f"model has no layer '{layer}'; layers: {', '.join(names)}")
    if layer in names:
        i = names.index(layer)
        if i + 1 < len(names) and isinstance(getattr(model, names[i + 1]), _ACTIVATIONS):
            return names[i + 1]
    return layer


def penultimate_layer(model: nn.Module) -> str:
    """Name of the layer whose output feeds the last ``nn.Linear`` (seed 000's layer L-1)."""
    children = list(model.named_children())
    linear = [i for i, (_, m) in enumerate(children) if isinstance(m, nn.Linear)]
    if not linear or linear[-1] == 0:
        raise ValueError("the model has no layer before its output layer")
    return children[linear[-1] - 1][0]
