"""Prediction gradients (seed 002, chapter 3): how much each unit of a layer pushes the prediction of a class.

PG(a) = d y_c / d a, with y the softmax probability (the seed's choice) or the pre-softmax logit. Gradients come
from captum's ``LayerGradientXActivation(..., multiply_by_inputs=False)``, which returns exactly d y / d a and
removes its hooks itself; every call here also holds the model's lock and restores its mode
(:func:`vizcore.core.hooks.guarded`), so the shared model is never left changed.

A conv layer's *feature map* is the output of its activation function (``conv1`` -> ``act1``): the unit
``a = act(conv(x))`` the seed differentiates. Knocking a conv channel out zeroes that map too, since every
activation of the zoo maps 0 to 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from captum.attr import LayerGradientXActivation, Saliency
from torch import nn

from vizcore.core.hooks import capture, guarded
from vizcore.core.progress import Progress, check_cancelled
from vizcore.core.layers import conv_layers, feature_layer, model_device, num_classes

OUTPUTS: tuple[str, ...] = ("prob", "logit")
NORMS: tuple[str, ...] = ("fro", "l1", "max")


def _check(output: str, norm: str | None = None) -> None:
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS} (softmax probability or logit), not '{output}'")
    if norm is not None and norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, not '{norm}'")


def _forward_fn(model: nn.Module, output: str = "prob") -> Callable[[torch.Tensor], torch.Tensor]:
    """The function whose class-c entry is y_c: softmax probabilities or logits of ``model``."""
    _check(output)
    if output == "logit":
        return model
    return lambda x: torch.softmax(model(x), dim=1)


def _layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    layers = list(layers) if layers is not None else conv_layers(model)
    if not layers:
        raise ValueError("this model has no conv layers: pass dense layer names (e.g. 'fc1') explicitly")
    return layers


def _targets(target: int | torch.Tensor, n: int, num_classes: int) -> torch.Tensor:
    t = torch.as_tensor(target, dtype=torch.long)
    t = t.expand(n) if t.ndim == 0 else t
    if len(t) != n:
        raise ValueError(f"got {len(t)} targets for {n} inputs")
    if n and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"target class must be in 0..{num_classes - 1}")
    return t


def prediction_gradients(model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor, *,
                         layers: Sequence[str] | None = None, output: str = "prob",
                         batch_size: int = 256) -> dict[str, torch.Tensor]:
    """PG of every unit of each layer for each input (seed 002 eq. 3.1).

    Args:
        model: a classifier returning logits.
        inputs: (N, C, H, W) images.
        target: the class c (one int, or one per input).
        layers: layer names (default: every Conv2d); a conv name means its feature map (see :func:`feature_layer`).
        output: ``"prob"`` (d softmax_c) or ``"logit"``.
    Returns:
        layer name -> (N, *unit shape) tensor of d y_c / d a, on the CPU.
    """
    _check(output)
    layers = _layers(model, layers)
    out: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    with guarded(model):
        device = model_device(model)
        if len(inputs) == 0:
            raise ValueError("no input images")
        targets = _targets(target, len(inputs), num_classes(model))
        mods = [model.get_submodule(feature_layer(model, name)) for name in layers]
        pg = LayerGradientXActivation(_forward_fn(model, output), mods, multiply_by_inputs=False)
        for i in range(0, len(inputs), batch_size):
            grads = pg.attribute(inputs[i:i + batch_size].to(device), target=targets[i:i + batch_size].to(device))
            for name, g in zip(layers, grads):
                out[name].append(g.detach().cpu())
    return {name: torch.cat(v) for name, v in out.items()}


def input_gradient(model: nn.Module, inputs: torch.Tensor, target: int | torch.Tensor, *,
                   output: str = "prob") -> torch.Tensor:
    """d y_c / d x, the PG of the input pixels (seed 002 section 4.4), via captum's ``Saliency(abs=False)``."""
    _check(output)
    with guarded(model):
        device = model_device(model)
        x = inputs.to(device).detach().requires_grad_()
        t = _targets(target, len(x), num_classes(model)).to(device)
        return Saliency(_forward_fn(model, output)).attribute(x, target=t, abs=False).detach().cpu()


def activations(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
    """The feature maps (unit outputs) of each layer for ``inputs``: layer name -> (N, *unit shape)."""
    layers = _layers(model, layers)
    feats = {name: feature_layer(model, name) for name in layers}
    with guarded(model), torch.no_grad(), capture(model, list(set(feats.values()))) as store:
        model(inputs.to(model_device(model)))
        return {name: store[f].detach().cpu() for name, f in feats.items()}


def class_average_pg(model: nn.Module, inputs: torch.Tensor, target: int, *, layers: Sequence[str] | None = None,
                     output: str = "prob", batch_size: int = 256, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> dict[str, torch.Tensor]:
    """Mean PG over ``inputs`` (images of class ``target``, see :func:`vizcore.explain.knockout.class_images`;
    seed 002 section 4.2.1).

    Returns layer name -> (*unit shape) mean of d y_target / d a. Memory stays one batch.
    """
    total: dict[str, torch.Tensor] = {}
    n = len(inputs)
    if n == 0:
        raise ValueError("no images to average over: this class has no images in the chosen split")
    for i in range(0, n, batch_size):
        check_cancelled(cancelled)
        pg = prediction_gradients(model, inputs[i:i + batch_size], target, layers=layers, output=output,
                                  batch_size=batch_size)
        for name, g in pg.items():
            total[name] = total.get(name, 0) + g.double().sum(0)
        if progress:
            progress(min(1.0, (i + batch_size) / n), f"{min(n, i + batch_size)}/{n} images")
    return {name: (s / n).float() for name, s in total.items()}


def aggregate(pg: torch.Tensor, norm: str = "fro", dims: tuple[int, ...] = (-2, -1)) -> torch.Tensor:
    """Collapse PG over ``dims`` with the Frobenius norm, the L1 norm or the largest value (seed 002 section 3.2.2).

    ``max`` is the largest signed PG: the strongest positive push towards the class.
    """
    _check("prob", norm)
    if norm == "fro":
        return pg.pow(2).sum(dims).sqrt()
    if norm == "l1":
        return pg.abs().sum(dims)
    return pg.amax(dims)


def filter_scores(pg: dict[str, torch.Tensor], norm: str = "fro") -> dict[str, torch.Tensor]:
    """The convolutional gradient: one score per filter (collapse each map's pixels). Dense units pass through
    (``max``) or take their absolute value (norms)."""
    _check("prob", norm)
    return {name: aggregate(g, norm) if g.ndim >= 3 else (g if norm == "max" else g.abs()) for name, g in pg.items()}


def pixel_saliency(pg: torch.Tensor, norm: str = "fro", size: tuple[int, int] | None = None) -> torch.Tensor:
    """Saliency of one conv layer: collapse the filters of (N, C, h, w) PG to (N, h, w), upsampled to ``size``."""
    s = aggregate(pg, norm, dims=(1,))
    if size is not None and tuple(s.shape[-2:]) != tuple(size):
        s = F.interpolate(s[:, None], size=size, mode="nearest")[:, 0]
    return s


def class_filter_scores(model: nn.Module, inputs: torch.Tensor, target: int, *, layers: Sequence[str] | None = None,
                        norm: str = "fro", output: str = "prob", batch_size: int = 256,
                        progress: Progress | None = None,
                        cancelled: Callable[[], bool] | None = None) -> dict[str, torch.Tensor]:
    """Class-averaged per-filter PG score (seed 002 sections 4.2.1 and 4.2.2): the norm of the mean PG map.

    Args:
        inputs: images to average over (the training images of class ``target``).
        layers: default every Conv2d layer.
    Returns:
        layer name -> (C,) score of each filter (units, for a dense layer).
    """
    _check(output, norm)
    mean = class_average_pg(model, inputs, target, layers=layers, output=output, batch_size=batch_size,
                            progress=progress, cancelled=cancelled)
    return filter_scores(mean, norm)


def rank_filters(scores: dict[str, torch.Tensor], descending: bool = True) -> list[tuple[str, int, float]]:
    """(layer, filter index, score) of every filter across all layers, highest first (seed 002 Table 4.2)."""
    rows = [(name, i, float(v)) for name, s in scores.items() for i, v in enumerate(s.flatten().tolist())]
    return sorted(rows, key=lambda r: r[2], reverse=descending)


@dataclass(frozen=True)
class Feature:
    """The unit with the highest PG in one layer for one image (seed 002 sections 4.3.1 and 4.3.2).

    ``box`` is (top, left, bottom, right) in input pixels, bottom/right exclusive: the connected region around
    the unit where the filter's upsampled PG map stays above ``threshold`` of its peak. ``heat`` is that map.
    """

    layer: str
    target: int
    filter: int
    row: int
    col: int
    pg: float
    filter_score: float
    box: tuple[int, int, int, int]
    heat: torch.Tensor
    maps: torch.Tensor
    pgs: torch.Tensor

    @property
    def flat(self) -> bool:
        """True when every PG of the layer is zero (a saturated model): the box then means nothing."""
        return float(self.pgs.abs().max()) == 0.0


def _region(heat: torch.Tensor, peak: tuple[int, int], threshold: float) -> tuple[int, int, int, int]:
    from scipy import ndimage

    top = float(heat[peak])
    mask = (heat >= threshold * top).numpy() if top > 0 else (heat == top).numpy()
    labels, _ = ndimage.label(mask)
    rows, cols = (labels == labels[peak]).nonzero()
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


def layer_choices(model: nn.Module) -> list[str]:
    """Layers a feature can be looked for in: the conv layers, then ``input`` (the pixels themselves)."""
    return conv_layers(model) + ["input"]


def characteristic_feature(model: nn.Module, image: torch.Tensor, target: int, *, layer: str | None = None,
                           output: str = "prob", norm: str = "fro", threshold: float = 0.5) -> Feature:
    """The filter and region of ``image`` (C, H, W) with the highest PG for class ``target`` (seed 002 section 4.3.1).

    Args:
        layer: a conv layer (default the first, as in the seed's Figure 4.3) or ``"input"`` for pixel gradients.
        threshold: fraction of the peak PG that bounds the region drawn as the box.
    """
    layer = layer or layer_choices(model)[0]
    if image.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got shape {tuple(image.shape)}")
    x = image[None]
    if layer == "input":
        pgs, maps = input_gradient(model, x, target, output=output)[0], image.detach().cpu()
    else:
        pgs = prediction_gradients(model, x, target, layers=[layer], output=output)[layer][0]
        maps = activations(model, x, [layer])[layer][0]
    if pgs.ndim != 3:
        raise ValueError(f"'{layer}' is not a conv layer: choose one of {', '.join(layer_choices(model))}")
    c, r, k = _divmod_index(int(pgs.argmax()), pgs.shape)
    heat = F.interpolate(pgs[c][None, None], size=tuple(image.shape[-2:]), mode="nearest")[0, 0]
    scale = image.shape[-2] / pgs.shape[-2], image.shape[-1] / pgs.shape[-1]
    peak = min(int((r + 0.5) * scale[0]), image.shape[-2] - 1), min(int((k + 0.5) * scale[1]), image.shape[-1] - 1)
    return Feature(layer=layer, target=int(target), filter=c, row=r, col=k, pg=float(pgs[c, r, k]),
                   filter_score=float(aggregate(pgs[c], norm)), box=_region(heat, peak, threshold), heat=heat,
                   maps=maps, pgs=pgs)


def _divmod_index(flat: int, shape: torch.Size) -> tuple[int, int, int]:
    """(channel, row, col) of a flat index into a (C, H, W) tensor."""
    c, rest = divmod(flat, shape[1] * shape[2])
    return c, *divmod(rest, shape[2])


@dataclass(frozen=True)
class LooksLike:
    """What in an image of class A makes it look like class B (seed 002 section 4.3.2).

    ``feature`` is the highest-PG unit for B; ``heat_a`` and ``heat_b`` are the PG maps of that same filter with
    respect to A and to B (upsampled to the input), ``diff = heat_b - heat_a``.
    """

    source: int
    target: int
    feature: Feature
    own: Feature
    heat_a: torch.Tensor
    heat_b: torch.Tensor
    diff: torch.Tensor


def looks_like(model: nn.Module, image: torch.Tensor, source: int, target: int, *, layer: str | None = None,
               output: str = "prob", threshold: float = 0.5) -> LooksLike:
    """The feature of ``image`` (of class ``source``) that most makes it look like class ``target``."""
    fb = characteristic_feature(model, image, target, layer=layer, output=output, threshold=threshold)
    fa = characteristic_feature(model, image, source, layer=fb.layer, output=output, threshold=threshold)
    size = tuple(image.shape[-2:])
    heat_a = F.interpolate(fa.pgs[fb.filter][None, None], size=size, mode="nearest")[0, 0]
    return LooksLike(source=int(source), target=int(target), feature=fb, own=fa, heat_a=heat_a, heat_b=fb.heat,
                     diff=fb.heat - heat_a)

