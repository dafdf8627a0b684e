"""Adversarial data-free distillation (DFAD, Fang et al. 2019; ZSKT, Micaelli & Storkey 2019): beyond the seeds.

A generator is trained to make images on which a proxy student disagrees with the teacher (L1 between
logits), while the proxy student learns to agree. The images the game produces in its second half, labelled
by the teacher, form the synthetic set, so the seeds' methods and this one feed the same student trainer
and the same protocol.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vizcore.distill.generators import Generator
from vizcore.models import build_model
from vizcore.core.layers import model_device
from vizcore.core.progress import Progress, check_cancelled


def dfad_images(teacher: nn.Module, config, *, input_shape, num_classes: int, real=None,
                progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                student_steps: int = 5) -> tuple[torch.Tensor, dict]:
    """Play the generator-student game for ``config.train_steps`` rounds and return ``config.n`` of its images."""
    torch.manual_seed(config.seed)
    dev = model_device(teacher)
    nd, bs, steps = config.noise(), config.batch_size, config.train_steps
    G = Generator(input_shape, nd).to(dev).train()
    S = build_model(config.proxy_arch, tuple(input_shape), num_classes, seed=config.seed).to(dev).train()
    opt_g = torch.optim.Adam(G.parameters(), lr=config.learning_rate())
    opt_s = torch.optim.Adam(S.parameters(), lr=1e-3)
    pool: list[torch.Tensor] = []
    disagreement = 0.0
    for step in range(steps):
        check_cancelled(cancelled)
        for _ in range(student_steps):
            with torch.no_grad():
                x = G(torch.randn(bs, nd, device=dev))
                t = teacher(x)
            loss_s = F.l1_loss(S(x), t)
            opt_s.zero_grad(set_to_none=True)
            loss_s.backward()
            opt_s.step()
        if step >= steps // 2:
            pool.append(x.cpu())
        x = G(torch.randn(bs, nd, device=dev))
        loss_g = -F.l1_loss(S(x), teacher(x))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        disagreement = -float(loss_g.detach())
        if progress and (step % 10 == 0 or step == steps - 1):
            progress((step + 1) / steps, f"DFAD: round {step + 1}/{steps}, student-teacher L1 {disagreement:.3f}")
    with torch.no_grad():
        while sum(len(p) for p in pool) < config.n:
            pool.append(G(torch.randn(bs, nd, device=dev)).cpu())
    images = torch.cat(pool)
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))[:config.n]
    return images[pick], {"final_disagreement": disagreement, "rounds": steps}
