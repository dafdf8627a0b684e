"""Targeted perturbations along the prediction gradient of the input (seed 002 section 4.4).

One step moves an image x towards class B by ``x' = clip(x + eps * g / ||g||, 0, 1)`` with ``g = d y_B / d x``
(L2 norm per image). The iterated variant takes ``steps`` steps of ``eps / steps`` each, recomputing ``g``
every time, so both travel at most ``eps`` before clipping.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from vizcore.explain.gradients import input_gradient
from vizcore.core.layers import num_classes
from vizcore.metrics import predict_logits
from vizcore.core.config import Config
from vizcore.core.progress import check_cancelled


@dataclass(frozen=True)
class PerturbConfig(Config):
    """A perturbation sweep: step sizes, iterations per step size, output differentiated, images per class."""

    eps: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)
    steps: int = 1
    output: str = "prob"
    per_class: int = 20
    targets: tuple[int, ...] | None = None

    def __post_init__(self):
        if not self.eps or any(e < 0 for e in self.eps):
            raise ValueError("give at least one step size, none negative (e.g. 0.5, 1, 2, 4)")
        if self.steps < 1:
            raise ValueError("steps must be at least 1")
        if self.per_class < 1:
            raise ValueError("per_class must be at least 1 image")


def _unit(g: torch.Tensor) -> torch.Tensor:
    norm = g.flatten(1).norm(dim=1).clamp_min(1e-12)
    return g / norm.view(-1, *([1] * (g.ndim - 1)))


def perturb(model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor, eps: float, *, steps: int = 1,
            output: str = "prob") -> torch.Tensor:
    """Move ``inputs`` (N, C, H, W) in [0, 1] towards class ``target`` by an L2 distance ``eps`` (seed 002 4.4).

    Returns the perturbed images, clipped to [0, 1], on the CPU.
    """
    return _perturb_steps(model, inputs, target, [eps], steps=steps, output=output)[0]


def _perturb_steps(model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor, eps: Sequence[float], *,
                  steps: int = 1, output: str = "prob") -> list[torch.Tensor]:
    """:func:`perturb` for several step sizes; one gradient serves them all when ``steps == 1``."""
    if steps < 1 or any(e < 0 for e in eps):
        raise ValueError("step sizes must be >= 0 and steps >= 1")
    x0 = inputs.detach().cpu()
    if steps == 1:
        direction = _unit(input_gradient(model, x0, target, output=output))
        return [(x0 + e * direction).clamp(0, 1) for e in eps]
    out = []
    for e in eps:
        x = x0
        for _ in range(steps):
            x = (x + (e / steps) * _unit(input_gradient(model, x, target, output=output))).clamp(0, 1)
        out.append(x)
    return out


@dataclass
class Strip:
    """One image perturbed by increasing step sizes (seed 002 Figure 4.5)."""

    eps: list[float]
    images: torch.Tensor
    true_conf: list[float]
    target_conf: list[float]
    predicted: list[int]


def perturbation_strip(model: nn.Module, image: torch.Tensor, true_class: int, target: int, eps: Sequence[float], *,
                       steps: int = 1, output: str = "prob") -> Strip:
    """The image after each step size in ``eps`` (0 shows the original) with the confidence in both classes."""
    images = torch.cat(_perturb_steps(model, image[None], target, eps, steps=steps, output=output))
    p = torch.softmax(predict_logits(model, images), 1)
    return Strip(eps=[float(e) for e in eps], images=images, true_conf=p[:, true_class].tolist(),
                 target_conf=p[:, target].tolist(), predicted=p.argmax(1).tolist())


@dataclass
class SweepResult:
    """Success of every source -> target pair per step size (Figure 4.6) and the induced error (Figure 4.7).

    ``success[e][a][b]``: fraction of images of class a predicted as b after a push towards b with step
    ``eps[e]`` (NaN on the diagonal and for classes without images). ``error[e]``: fraction of all pushes
    (every image to every other target) that leave the image misclassified. ``target_success[e][b]``: success
    towards b averaged over source images.
    """

    config: dict
    eps: list[float]
    success: list[list[list[float]]]
    error: list[float]
    success_rate: list[float]
    target_success: list[list[float]]
    n_images: int
    base_accuracy: float
    targets: list[int]

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (NaN written as null)."""
        return _nan_to_none(asdict(self))

    @classmethod
    def from_dict(cls, d: dict) -> SweepResult:
        nan = float("nan")
        return cls(**{**d, "success": [[[nan if v is None else v for v in row] for row in m] for m in d["success"]]})


def _nan_to_none(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_nan_to_none(v) for v in obj]
    return obj


def sample_per_class(y: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Indices of up to ``per_class`` images of each class, in a seeded random order."""
    g = torch.Generator().manual_seed(seed)
    idx = [torch.nonzero(y == c).flatten() for c in torch.unique(y).tolist()]
    return torch.cat([i[torch.randperm(len(i), generator=g)[:per_class]] for i in idx]).sort().values


def perturbation_sweep(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: PerturbConfig = PerturbConfig(), *,
                       progress: Callable[[float, str], None] | None = None,
                       cancelled: Callable[[], bool] | None = None) -> SweepResult:
    """Push ``per_class`` images of every class towards every other class at each step size (seed 002 4.4)."""
    k = num_classes(model)
    keep = sample_per_class(y, config.per_class)
    x, y = x[keep], y[keep]
    if len(x) == 0:
        raise ValueError("no images to perturb")
    targets = list(config.targets) if config.targets is not None else list(range(k))
    if any(t < 0 or t >= k for t in targets):
        raise ValueError(f"target classes must be in 0..{k - 1}")
    hits = torch.zeros(len(config.eps), k, k)
    pushes = torch.zeros(k, k)
    wrong = torch.zeros(len(config.eps))
    for j, b in enumerate(targets):
        check_cancelled(cancelled)
        src = y != b
        xs, ys = x[src], y[src]
        pushes[:, b] += torch.bincount(ys, minlength=k).float()
        moved = _perturb_steps(model, xs, b, config.eps, steps=config.steps, output=config.output)
        for e, xp in enumerate(moved):
            pred = predict_logits(model, xp).argmax(1)
            hits[e, :, b] += torch.bincount(ys[pred == b], minlength=k).float()
            wrong[e] += (pred != ys).sum()
        if progress:
            progress((j + 1) / len(targets), f"target {j + 1}/{len(targets)}")
    success = hits / pushes  # NaN where a pair had no images (and on the diagonal)
    n_push = pushes.sum()
    base = float((predict_logits(model, x).argmax(1) == y).float().mean())
    target_success = hits.sum(1) / pushes.sum(0)
    return SweepResult(
        config=config.to_dict(), eps=list(config.eps), success=success.tolist(), error=(wrong / n_push).tolist(),
        success_rate=(hits.sum((1, 2)) / n_push).tolist(), target_success=target_success[:, targets].tolist(),
        n_images=len(x), base_accuracy=base, targets=targets)
