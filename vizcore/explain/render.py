"""The public render loop: maximize any composable objective over images (lucent's ``optvis.render.render_vis``).

``render(model, objective, start)`` optimizes a batch of images in one go on a private frozen copy of the model
(the shared model is only locked while it is copied), with the same loop that makes the class and filter
visualizations (seed 003 section 5.2, seed 000 section 3.3)::

    from vizcore.explain import objectives as obj
    images = render(model, obj.class_logit(targets) - 0.01 * obj.l2(), torch.zeros(4, 1, 28, 28))
    images = render(model, obj.channel_mean("conv2", torch.arange(4)), start,
                    param=functools.partial(obj.pixel_param, mode="sigmoid"))

Objectives compose with ``+``, ``-`` and ``*`` (:mod:`vizcore.explain.objectives`); a parameterization maps the
start images to ``(parameter, image_fn)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vizcore.core.layers import model_device
from vizcore.core.progress import Progress
from vizcore.explain.objectives import Objective, Param
from vizcore.explain.visualize import VisualizeConfig, _ascend, _working_copies

RENDER_DEFAULTS = VisualizeConfig(steps=100, threshold=None)


def render(model: nn.Module, objective: Objective, start: torch.Tensor, config: VisualizeConfig = RENDER_DEFAULTS,
           *, param: Param | None = None, progress: Progress | None = None,
           cancelled: Callable[[], bool] | None = None) -> torch.Tensor:
    """Images (N, C, H, W), float32 on the CPU, after ``config.steps`` ascent steps on ``objective`` from ``start``.

    ``config`` supplies the optimizer, learning rate, jitter, blur, pixel range and precision; its start and
    threshold options belong to :func:`~vizcore.explain.visualize.class_visualizations` and are not used here
    (every sample takes every step). ``param`` replaces the pixel parameterization ``config.pixel``.
    """
    if start.dim() != 4:
        raise ValueError(f"start must be a batch of images (N, C, H, W), got shape {tuple(start.shape)}")
    _, work = _working_copies(model, config)
    gen = torch.Generator().manual_seed(config.seed)
    images, _ = _ascend(work, objective, start.float().to(model_device(model)), config, gen, config.steps,
                        progress=progress, cancelled=cancelled, what="render", param=param)
    return images.cpu()
