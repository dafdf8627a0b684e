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


def random_view(images: torch.Tensor, generator: torch.Generator, shift: float = 0.0, scale: float = 0.0,
                degrees: float = 0.0) -> torch.Tensor:
    """Each image moved by its own random affine map: a shift of up to ``shift`` pixels, a zoom in
    ``[1 - scale, 1 + scale]`` and a rotation of up to ``degrees`` (lucent's ``transform.jitter``,
    ``random_scale`` and ``random_rotate`` in one differentiable resampling; Olah et al. 2017,
    "transformation robustness"). Edge pixels fill the border. Identity when all three are 0."""
    if shift <= 0 and scale <= 0 and degrees <= 0:
        return images
    n, _, h, w = images.shape
    r = torch.rand(n, 4, generator=generator).to(images.device) * 2 - 1
    angle = r[:, 0] * degrees * torch.pi / 180
    zoom = 1 + r[:, 1] * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin * h / w, r[:, 2] * 2 * shift / w], 1),
                         torch.stack([sin * w / h, cos, r[:, 3] * 2 * shift / h], 1)], 1)
    grid = F.affine_grid(theta.to(images.dtype), list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


# lucent's colour decorrelation (the square root of ImageNet's RGB covariance): an RGB image is built from
# three decorrelated channels, so one step changes colour and brightness the way natural images vary.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


def fft_param(start: torch.Tensor, generator: torch.Generator, sd: float = 1.0,
              decay: float = 1.0) -> tuple[torch.Tensor, Callable[[], torch.Tensor]]:
    """A decorrelated image parameterization (Olah et al. 2017 "Feature Visualization", lucent's
    ``param.fft_image`` + ``to_valid_rgb``): the parameters are the image's Fourier coefficients, scaled
    by 1 / frequency^``decay`` so that every frequency learns at the same rate (plain pixel ascent is
    dominated by high-frequency noise); RGB images are colour-decorrelated; a sigmoid keeps pixels in
    (0, 1). Unlike lucent the scale is normalized to RMS 1, so one Adam step of rate ``lr`` moves a
    pixel's pre-sigmoid value by about ``lr`` whatever the image size (8x8 digits and 224x224 photos alike). Each sample starts from its own
    random spectrum (seeded by ``generator``; pre-sigmoid pixel noise of RMS about ``sd``) added to ``start``,
    so samples climb to different pictures (lucent's sd 0.01 lets every sample of a class reach the same one).

    Returns ``(param, image_fn)`` as :func:`pixel_param` does.
    """
    n, c, h, w = start.shape
    fy = torch.fft.fftfreq(h)[:, None]
    fx = torch.fft.rfftfreq(w)[None, :]
    freqs = (fx ** 2 + fy ** 2).sqrt()
    scale = 1.0 / freqs.clamp(min=1.0 / max(h, w)) ** decay
    scale = (scale / scale.pow(2).mean().sqrt()).to(start.device)  # RMS 1: a step moves a pixel by ~lr at any size
    spectrum = (torch.randn(n, c, h, w // 2 + 1, 2, generator=generator) * sd).to(start.device).requires_grad_(True)
    base = torch.logit(start.detach().clamp(_SIGMOID_EPS, 1 - _SIGMOID_EPS))
    color = _COLOR_SQRT.to(start.device)

    def image_fn() -> torch.Tensor:
        x = torch.fft.irfftn(torch.view_as_complex(spectrum) * scale, s=(h, w), norm="ortho")
        if c == 3:
            x = torch.einsum("nchw,dc->ndhw", x, color)
        return torch.sigmoid(base + x)

    return spectrum, image_fn


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
