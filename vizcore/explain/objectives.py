"""Composable activation-maximization objectives and pixel parameterizations (the shape of lucent's
``optvis.objectives`` and ``optvis.param``).

An :class:`Objective` maps the state of one ascent step to a score per sample, shape ``(N,)``, that the
render loop *maximizes*. Objectives add, subtract and scale: ``class_logit(y) - 0.01 * l2()``. Per-sample
scores matter because every sample stops on its own (seed 000 eq. 2): the loop only evaluates the samples
still running, and ``state.index`` says which rows of the full batch those are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class AscentState:
    """What an objective sees: the images shown to the model, its logits, captured layer outputs, and the
    rows of the full batch these samples are (for per-sample targets)."""

    images: torch.Tensor
    logits: torch.Tensor
    index: torch.Tensor
    acts: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective:
    """A score to maximize, one value per sample; ``layers`` lists the layer outputs it needs captured."""

    def __init__(self, fn: Callable[[AscentState], torch.Tensor], name: str, layers: tuple[str, ...] = ()):
        self.fn, self.name, self.layers = fn, name, tuple(layers)

    def __call__(self, state: AscentState) -> torch.Tensor:
        return self.fn(state)

    def __add__(self, other: Objective | float) -> Objective:
        if not isinstance(other, Objective):
            return Objective(lambda s: self(s) + other, f"{self.name} + {other}", self.layers)
        return Objective(lambda s: self(s) + other(s), f"{self.name} + {other.name}",
                         tuple(dict.fromkeys(self.layers + other.layers)))

    __radd__ = __add__

    def __mul__(self, k: float) -> Objective:
        return Objective(lambda s: k * self(s), f"{k} * {self.name}", self.layers)

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return -1.0 * self

    def __sub__(self, other: Objective | float) -> Objective:
        return self + (-other)

    def __repr__(self) -> str:
        return f"Objective({self.name})"


def _rows(t: torch.Tensor, state: AscentState) -> torch.Tensor:
    return t.to(state.logits.device)[state.index]


def class_logit(targets: torch.Tensor) -> Objective:
    """The pre-softmax logit of each sample's target class (seed 003 section 5.2)."""
    return Objective(lambda s: s.logits.gather(1, _rows(targets, s)[:, None])[:, 0], "class_logit")


def class_logprob(targets: torch.Tensor) -> Objective:
    """The log-softmax of each sample's target class (pushes the other classes down as well)."""
    return Objective(lambda s: F.log_softmax(s.logits, 1).gather(1, _rows(targets, s)[:, None])[:, 0],
                     "class_logprob")


def logit_mix(weights: torch.Tensor) -> Objective:
    """``sum_k weights[n, k] * logit_k``: +1 attracts sample ``n`` to class ``k``, -1 repels it (seed 000
    section 3.3.2's pre-AM movement)."""
    return Objective(lambda s: (s.logits * _rows(weights, s)).sum(1), "logit_mix")


def channel_mean(layer: str, channels: torch.Tensor) -> Objective:
    """Mean activation of channel ``channels[n]`` of a conv layer (over space), or of unit ``channels[n]``
    of a dense layer, for sample ``n`` (seed 000's higher-layer features)."""

    def fn(s: AscentState) -> torch.Tensor:
        a = s.acts[layer]
        a = a.flatten(2).mean(2) if a.dim() > 2 else a
        return a.gather(1, _rows(channels, s)[:, None])[:, 0]

    return Objective(fn, f"channel_mean({layer})", (layer,))


def l2() -> Objective:
    """Squared L2 norm of each image (Simonyan et al.'s penalty; scale it by minus a weight)."""
    return Objective(lambda s: s.images.flatten(1).pow(2).sum(1), "l2")


def total_variation() -> Objective:
    """Anisotropic total variation of each image (sum of absolute neighbour differences)."""

    def fn(s: AscentState) -> torch.Tensor:
        x = s.images
        return ((x[..., 1:, :] - x[..., :-1, :]).abs().flatten(1).sum(1)
                + (x[..., :, 1:] - x[..., :, :-1]).abs().flatten(1).sum(1))

    return Objective(fn, "total_variation")


# --- parameterizations: (parameter tensor, image function) ----------------------------------------------

_SIGMOID_EPS = 1e-3

# A parameterization: start images -> (tensor the optimizer changes, function giving the current images).
Param = Callable[[torch.Tensor], tuple[torch.Tensor, Callable[[], torch.Tensor]]]


def pixel_param(start: torch.Tensor, mode: str = "clamp") -> tuple[torch.Tensor, Callable[[], torch.Tensor]]:
    """Pixels kept in [0, 1]: ``clamp`` optimizes the pixels and clips them after every step (the
    parameter is the image), ``sigmoid`` optimizes logits and shows ``sigmoid(param)``. ``free`` optimizes
    the pixels with no bound at all (seed 003's ascent from a blank image, which may go negative).

    Returns ``(param, image_fn)`` where ``image_fn()`` gives the current images.
    """
    if mode == "clamp":
        param = start.detach().clone().clamp_(0, 1).requires_grad_(True)
        return param, lambda: param
    if mode == "free":
        param = start.detach().clone().requires_grad_(True)
        return param, lambda: param
    if mode == "sigmoid":
        param = torch.logit(start.detach().clamp(_SIGMOID_EPS, 1 - _SIGMOID_EPS)).requires_grad_(True)
        return param, lambda: torch.sigmoid(param)
    raise ValueError(f"unknown pixel parameterization '{mode}'; use 'clamp', 'sigmoid' or 'free'")


def jitter(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """Shift the batch by a random offset of up to ``pixels`` in each direction (wrapping around)."""
    if pixels <= 0:
        return images
    dx, dy = (torch.randint(-pixels, pixels + 1, (2,), generator=generator)).tolist()
    return torch.roll(images, shifts=(dy, dx), dims=(-2, -1))


def blur_(param: torch.Tensor, strength: float) -> None:
    """Mix each image with its 3x3 Gaussian blur in place (a smoothness prior applied between steps)."""
    if strength <= 0:
        return
    k = torch.tensor([1.0, 2.0, 1.0], device=param.device, dtype=param.dtype)
    k = (k[:, None] * k[None, :]) / 16
    c = param.shape[1]
    with torch.no_grad():
        blurred = F.conv2d(F.pad(param, (1, 1, 1, 1), mode="replicate"), k.expand(c, 1, 3, 3), groups=c)
        param.mul_(1 - strength).add_(strength * blurred)
