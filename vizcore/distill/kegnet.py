"""KegNet: knowledge extraction with generative networks (seed 004, Yoo et al. 2019).

Each generator maps a sampled class ``y`` and Gaussian noise ``z`` to an image; the fixed teacher must
recover ``y`` from it (classifier loss), a decoder must recover ``z`` (decoder loss, weight ``alpha``), and a
diversity term pushes images apart when their noise vectors are apart (weight ``beta``). Several generators
are trained and the dataset is sampled evenly from all of them.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from vizcore.distill.generators import Decoder, Generator
from vizcore.core.layers import model_device
from vizcore.core.progress import Progress, check_cancelled


def diversity_loss(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """exp(-mean_{i,j} ||z_i - z_j|| * d(x_i, x_j)) over the batch (seed 004 "Diversity Loss"), d = mean square."""
    dz = torch.cdist(z, z)
    dx = torch.cdist(x.flatten(1), x.flatten(1)).pow(2) / x[0].numel()
    return torch.exp(-(dz * dx).mean())


def train_kegnet_generator(teacher: nn.Module, input_shape, num_classes: int, *, noise_dim: int, steps: int,
                           batch_size: int, lr: float, alpha: float, beta: float,
                           progress: Callable[[int], None] | None = None,
                           cancelled: Callable[[], bool] | None = None) -> Generator:
    """Train one (generator, decoder) pair against the frozen ``teacher``; returns the generator."""
    dev = model_device(teacher)
    G = Generator(input_shape, noise_dim, num_classes=num_classes).to(dev)
    D = Decoder(input_shape, noise_dim).to(dev)
    opt = torch.optim.Adam(list(G.parameters()) + list(D.parameters()), lr=lr)
    G.train()
    for step in range(steps):
        check_cancelled(cancelled)
        y = torch.randint(num_classes, (batch_size,), device=dev)
        z = torch.randn(batch_size, noise_dim, device=dev)
        x = G(z, y)
        loss = F.cross_entropy(teacher(x), y) + alpha * F.mse_loss(D(x), z)
        if beta:
            loss = loss + beta * diversity_loss(z, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if progress:
            progress(step + 1)
    return G


def kegnet_images(teacher: nn.Module, config, *, input_shape, num_classes: int, dataset: str = "", real=None,
                  progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> tuple[torch.Tensor, dict]:
    """Train ``config.generators`` KegNet generators and sample ``config.n`` images, classes balanced."""
    torch.manual_seed(config.seed)
    dev = model_device(teacher)
    k, steps = config.generators, config.train_steps
    beta = config.kegnet_beta(dataset)
    gens = []
    for g in range(k):
        def tick(step, g=g):
            if progress and (step % 10 == 0 or step == steps):
                progress((g * steps + step) / (k * steps) * 0.95, f"KegNet: generator {g + 1}/{k}, step {step}/{steps}")
        gens.append(train_kegnet_generator(
            teacher, input_shape, num_classes, noise_dim=config.noise(), steps=steps, batch_size=config.batch_size,
            lr=config.learning_rate(), alpha=config.alpha, beta=beta, progress=tick, cancelled=cancelled))
    out = []
    y_all = torch.arange(config.n) % num_classes
    y_all = y_all[torch.randperm(config.n)]
    share = -(-config.n // k)
    with torch.no_grad():
        for g, G in enumerate(gens):
            ys = y_all[g * share:(g + 1) * share]
            for i in range(0, len(ys), config.batch_size):
                y = ys[i:i + config.batch_size].to(dev)
                m = max(len(y), 2)
                yy = torch.cat([y, y[:1].repeat(m - len(y))])
                out.append(G(torch.randn(m, config.noise(), device=dev), yy)[:len(y)].cpu())
    if progress:
        progress(1.0, "KegNet: sampled")
    return torch.cat(out), {"generators": k, "beta": beta, "alpha": config.alpha, "noise_dim": config.noise()}
