"""The numbers behind the network diagram: every layer's maps or units for one image, each one's prediction
gradient, and how much of that gradient flows along each edge between consecutive layers (seed 002 chapter 3).

For a unit ``a_i`` of one layer and the units ``b_j`` of the next, the chain rule splits its prediction gradient
into one part per path: ``PG(a_i) = sum_j dy/db_j * db_j/da_i``. The *edge* ``i -> j`` carries the j-th term
(a map for conv layers), and its weight is that map's norm, so the edges into a node add up (before the norm) to
exactly the node's PG. Knocked-out filters are zeroed during the pass, as on the *Knockout* page, so the
diagram shows the network as it is with them removed.

Works on flat ``nn.Sequential`` models (every zoo model); anything else raises :class:`ValueError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vizcore.core.hooks import guarded
from vizcore.core.layers import model_device
from vizcore.explain.gradients import OUTPUTS, aggregate

_ACTS = (nn.ReLU, nn.Tanh, nn.ELU, nn.Sigmoid, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Softplus)


@dataclass(frozen=True)
class FlowLayer:
    """One column of the diagram: ``input``, a ``conv`` layer's maps, a ``dense`` layer's units or the ``output``.

    ``acts``: (C, h, w) maps or (C,) unit values (class probabilities for the output; the image for the input).
    ``pg``: (C,) PG score of each map or unit for the target class (norm of its PG map; |PG| for a unit).
    ``knocked``: indices zeroed by the knockout mask.
    ``pg_maps``: the PG itself, dy/da of every unit ((C, h, w) or (C,); 0 where knocked), for conv and dense layers.
    """

    name: str
    kind: str
    acts: torch.Tensor
    pg: torch.Tensor
    knocked: tuple[int, ...] = ()
    pg_maps: torch.Tensor | None = None

    @property
    def width(self) -> int:
        return 1 if self.kind == "input" else len(self.acts)


@dataclass(frozen=True)
class NetworkFlow:
    """Layers left to right and ``edges[k]`` (next width, this width) between ``layers[k]`` and ``layers[k + 1]``."""

    layers: list[FlowLayer]
    edges: list[torch.Tensor]
    target: int
    output: str
    probs: torch.Tensor

    @property
    def predicted(self) -> int:
        return int(self.probs.argmax())


def _stages(model: nn.Module) -> list[tuple[int, int, int]]:
    """(index of a weighted child, index of its feature module, end index) for every Conv2d / Linear child."""
    if not isinstance(model, nn.Sequential):
        raise ValueError("the network diagram needs a flat nn.Sequential model (every zoo model is one)")
    kids = list(model.children())
    weighted = [i for i, m in enumerate(kids) if isinstance(m, (nn.Conv2d, nn.Linear))]
    if not weighted:
        raise ValueError("the model has no Conv2d or Linear layer")
    if not isinstance(kids[weighted[-1]], nn.Linear):
        raise ValueError("the model's last weighted layer must be the Linear output layer")
    out = []
    for k, i in enumerate(weighted):
        feat = i + 1 if i + 1 < len(kids) and isinstance(kids[i + 1], _ACTS) else i
        end = weighted[k + 1] if k + 1 < len(weighted) else len(kids)
        out.append((i, feat, end))
    return out


def _run(mods: Sequence[nn.Module], h: torch.Tensor) -> torch.Tensor:
    for m in mods:
        h = m(h)
    return h


def _zero(h: torch.Tensor, idx: Sequence[int]) -> torch.Tensor:
    if not idx:
        return h
    keep = torch.ones(h.shape[1], device=h.device, dtype=h.dtype)
    keep[list(idx)] = 0
    return h * keep.view(1, -1, *([1] * (h.ndim - 2)))


def _edge_maps(a: torch.Tensor, between: Sequence[nn.Module], layer: nn.Module, g_z: torch.Tensor) -> torch.Tensor:
    """Path gradients: out[j, i] = the part of dy/da_i that flows through unit j of ``layer``.

    ``a`` (1, C, ...) feeds ``between`` (channel-wise modules: pooling, flatten) then ``layer``, whose output
    gradient is ``g_z`` (1, Cn, ...). One copy of ``a`` per j keeps the paths apart: copy j only sees output unit
    j's gradient. (A batched backward through ``between`` instead of the copies is much slower on a busy CPU.)
    """
    cn = g_z.shape[1]
    rep = a.detach().expand(cn, *a.shape[1:]).clone().requires_grad_(True)
    h = _run(between, rep)
    if isinstance(layer, nn.Linear):
        own = (h * layer.weight).sum(1)  # unit j of copy j
    elif layer.groups == 1 and layer.padding_mode == "zeros":  # output map j of copy j: one grouped conv
        own = F.conv2d(h.reshape(1, -1, *h.shape[2:]), layer.weight, None, layer.stride, layer.padding,
                       layer.dilation, groups=cn)[0]
    else:
        own = layer(h)[torch.arange(cn), torch.arange(cn)]
    return torch.autograd.grad((own * g_z[0]).sum(), rep)[0]


def _score(maps: torch.Tensor, norm: str) -> torch.Tensor:
    """Norm of each map over its last two (spatial) dims; the absolute value of scalars."""
    return aggregate(maps, norm) if maps.ndim >= 3 else maps.abs()


def network_flow(model: nn.Module, image: torch.Tensor, target: int, *, output: str = "prob", norm: str = "fro",
                 mask: Mapping[str, Sequence[int]] | None = None) -> NetworkFlow:
    """Activations, PG scores and PG edge weights of every layer for one ``image`` (C, H, W) and class ``target``.

    Args:
        output: y is the softmax probability (``prob``, the seed's choice) or the ``logit`` of ``target``.
        norm: how a PG map becomes one number (``fro`` or ``l1``; see :func:`vizcore.explain.gradients.aggregate`).
        mask: {layer: filter indices} knocked out during the pass (the *Knockout* page's mask); a knocked unit
            passes nothing on, so its PG and its edges are 0.
    """
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, not '{output}'")
    if norm not in ("fro", "l1"):
        raise ValueError("norm must be 'fro' or 'l1' (a norm of the edge's PG map)")
    if image.ndim != 3:
        raise ValueError(f"expected one image (C, H, W), got shape {tuple(image.shape)}")
    stages = _stages(model)
    kids = list(model.children())
    names = [n for n, _ in model.named_children()]
    knocked = {names[i]: sorted({int(c) for c in (mask or {}).get(names[i], [])}) for i, _, _ in stages[:-1]}
    with guarded(model), torch.enable_grad():
        model.requires_grad_(False)  # gradients for the units only; the shared model's .grad stays untouched
        x = image[None].to(model_device(model)).requires_grad_(True)
        h, raw, feats, zs = _run(kids[:stages[0][0]], x), [], [], []  # e.g. a leading Flatten
        for i, feat, end in stages:
            z = kids[i](h)
            zs.append(z)
            raw.append(_run(kids[i + 1:feat + 1], z))
            feats.append(_zero(raw[-1], knocked.get(names[i], [])))
            h = _run(kids[feat + 1:end], feats[-1])
        logits = zs[-1]
        if not 0 <= target < logits.shape[1]:
            raise ValueError(f"target class must be in 0..{logits.shape[1] - 1}")
        probs = logits.softmax(1)
        y = (probs if output == "prob" else logits)[0, target]
        grads = torch.autograd.grad(y, [x] + zs + raw[:-1])
        g_x, g_z, g_a = grads[0], grads[1:len(zs) + 1], grads[len(zs) + 1:]
        edges = []
        for k, (i, _, _) in enumerate(stages):
            start = stages[k - 1][1] + 1 if k else 0
            paths = _edge_maps(x if k == 0 else feats[k - 1], kids[start:i], kids[i], g_z[k])
            if k == 0:
                paths = paths.sum(1, keepdim=True)  # the image is one node: its colour channels together
            else:
                paths = _zero(paths, knocked[names[stages[k - 1][0]]])
            edges.append(_score(paths, norm).cpu())
        # clones, not views: a view of a dataset row would carry (and pickle) the whole dataset with it
        layers = [FlowLayer("input", "input", image.detach().cpu().clone(), _score(g_x.sum(1), norm).cpu())]
        for (i, _, _), a, g in zip(stages[:-1], feats[:-1], g_a):
            layers.append(FlowLayer(names[i], "conv" if a.ndim == 4 else "dense", a[0].detach().cpu().clone(),
                                    _score(g[0], norm).cpu(), tuple(knocked[names[i]]), g[0].detach().cpu().clone()))
        p = probs[0].detach().cpu().clone()
        layers.append(FlowLayer(names[stages[-1][0]], "output", p, g_z[-1][0].abs().cpu()))
    return NetworkFlow(layers=layers, edges=edges, target=int(target), output=output, probs=p)
