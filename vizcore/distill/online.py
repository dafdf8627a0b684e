"""Online methods (DFAD, Fang et al. 2019; vizcore's default) as a fixed set: the game played with a proxy student.

In the protocol an online method (:func:`vizcore.distill.methods.is_online`) trains the student itself
against the generator inside the engine. This function serves the callers that need a fixed set
(``synthesize(method='dfad')``, ``'online'``): the same engine plays the game with a ``proxy_arch`` student
for ``train_steps`` generator steps and the memory bank of the images it made is the set.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from vizcore.core.layers import model_device
from vizcore.core.progress import Progress
from vizcore.distill.engine import EngineConfig, distill
from vizcore.distill.methods import engine_for
from vizcore.models import build_model


def online_images(teacher: nn.Module, config, *, input_shape, num_classes: int, real=None,
                  progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> tuple[torch.Tensor, dict]:
    """Play ``config.method``'s game for ``config.train_steps`` generator steps; return ``config.n`` of its images."""
    base = EngineConfig(batch_size=config.batch_size, generator_lr=config.learning_rate(), noise_dim=config.noise(),
                        seed=config.seed, checkpoints=1)
    engine = engine_for(config.method, base, config.n)
    engine = EngineConfig(**{**engine.to_dict(), "steps": config.train_steps * engine.student_per_generator})
    proxy = build_model(config.proxy_arch, tuple(input_shape), num_classes, seed=config.seed)
    res = distill(teacher, proxy, engine, input_shape=input_shape, num_classes=num_classes, progress=progress,
                  cancelled=cancelled)
    images = res.bank
    if len(images) < config.n:
        with torch.no_grad():  # the generator stays in training mode: batch statistics, as during the game
            dev = model_device(res.generator)
            extra = res.generator(torch.randn(max(2, config.n - len(images)), engine.noise_dim, device=dev))
        images = torch.cat([images, extra.cpu()])
    return images[:config.n].cpu(), {"rounds": config.train_steps, "final_disagreement": res.stats["discrepancy"][-1]}
