"""KegNet: knowledge extraction with generative networks (seed 004, Yoo et al. 2019).

Each generator maps a sampled class ``y`` and Gaussian noise ``z`` to an image; the fixed teacher must
recover ``y`` from it (classifier loss), a decoder must recover ``z`` (decoder loss, weight ``alpha``), and a
diversity term pushes images apart when their noise vectors are apart (weight ``beta``). Several generators
are trained and the dataset is sampled evenly from all of them.

Under torchrun the generators are shared out between the ranks (:func:`vizcore.core.distributed.shard`):
generator ``g`` starts from its own seed ``item_seed(seed, g)`` whatever rank trains it, every rank gathers the
trained weights, and the sampling draws from one seeded stream, so N processes make the one-process set.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from vizcore.core import distributed as dist
from vizcore.core.layers import model_device
from vizcore.core.progress import Progress, check_cancelled, progress_span
from vizcore.distill.generators import Decoder, Generator, TableGenerator


def diversity_loss(z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """exp(-mean_{i,j} ||z_i - z_j|| * d(x_i, x_j)) over the batch (seed 004 "Diversity Loss"), d = mean square."""
    dz = torch.cdist(z, z)
    dx = torch.cdist(x.flatten(1), x.flatten(1)).pow(2) / x[0].numel()
    return torch.exp(-(dz * dx).mean())


def make_generator(input_shape, noise_dim: int, num_classes: int) -> nn.Module:
    """KegNet's generator for an input of ``input_shape``: the image generator, or the table one for a vector."""
    if len(input_shape) == 1:
        return TableGenerator(input_shape[0], noise_dim, num_classes)
    return Generator(input_shape, noise_dim, num_classes=num_classes)


def train_kegnet_generator(teacher: nn.Module, input_shape, num_classes: int, *, noise_dim: int, steps: int,
                           batch_size: int, lr: float, alpha: float, beta: float, teacher_dropout: bool = False,
                           progress: Callable[[int], None] | None = None,
                           cancelled: Callable[[], bool] | None = None) -> Generator:
    """Train one (generator, decoder) pair against the frozen ``teacher``; returns the generator. With
    ``teacher_dropout`` the teacher's dropout layers stay on while the generator learns (the teacher's other
    layers and its mode afterwards are untouched)."""
    dev = model_device(teacher)
    G = make_generator(input_shape, noise_dim, num_classes).to(dev)
    D = Decoder(input_shape, noise_dim).to(dev)
    opt = torch.optim.Adam(list(G.parameters()) + list(D.parameters()), lr=lr)
    G.train()
    with dropout_on(teacher, teacher_dropout):
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


@contextmanager
def dropout_on(model: nn.Module, on: bool = True):
    """``model``'s dropout layers in training mode inside the block (when ``on``), as they were afterwards."""
    drops = [m for m in model.modules() if isinstance(m, nn.Dropout)] if on else []
    modes = [m.training for m in drops]
    try:
        for m in drops:
            m.train()
        yield model
    finally:
        for m, mode in zip(drops, modes):
            m.train(mode)


def train_kegnet_generators(teacher: nn.Module, config, *, input_shape, num_classes: int, dataset: str = "",
                            progress: Progress | None = None,
                            cancelled: Callable[[], bool] | None = None) -> tuple[list[nn.Module], dict]:
    """Train ``config.generators`` (generator, decoder) pairs against the frozen ``teacher``, this rank's share
    of them under torchrun; returns every generator (in eval mode, on every rank) and the settings used."""
    k, steps = config.generators, config.train_steps
    # tables as KegNet's code for its unstructured sets: no diversity term, and the classifier left in training
    # mode, so its dropout is on while the generators learn (PenDigits at 8x, 20,000 steps at 1e-4: T+KegNet
    # 75.6 % with the teacher in eval mode, 83.1 % with its dropout on)
    image = len(input_shape) == 3
    beta = config.kegnet_beta(dataset) if image or config.beta is not None else 0.0
    lr = config.kegnet_lr(dataset) if image else config.learning_rate()
    mine = dist.shard(k)
    trained = {}
    for i, g in enumerate(mine):
        def tick(step, i=i, g=g):
            if progress and (step % 10 == 0 or step == steps):
                progress((i * steps + step) / (len(mine) * steps), f"KegNet: generator {g + 1}/{k}, step {step}/{steps}")
        torch.manual_seed(dist.item_seed(config.seed, g))
        trained[g] = train_kegnet_generator(
            teacher, input_shape, num_classes, noise_dim=config.noise(), steps=steps, batch_size=config.batch_size,
            lr=lr, alpha=config.alpha, beta=beta, teacher_dropout=not image, progress=tick, cancelled=cancelled).eval()
    shards = [sorted(trained)]
    if dist.world_size() > 1:  # every rank gets every generator's weights
        dev = model_device(teacher)
        parts = dist.gather({g: {n: t.cpu() for n, t in G.state_dict().items()} for g, G in trained.items()})
        shards = [sorted(part) for part in parts]
        for part in parts:
            for g, state in part.items():
                if g not in trained:
                    G = make_generator(input_shape, config.noise(), num_classes)
                    G.load_state_dict(state)
                    trained[g] = G.to(dev).eval()
    gens = [trained[g] for g in range(k)]
    return gens, {"generators": k, "beta": beta, "lr": lr, "alpha": config.alpha, "noise_dim": config.noise(),
                  "teacher_dropout": not image,
                  "trained_by_rank": shards}


def kegnet_images(teacher: nn.Module, config, *, input_shape, num_classes: int, dataset: str = "", real=None,
                  progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> tuple[torch.Tensor, dict]:
    """Train ``config.generators`` KegNet generators and sample ``config.n`` images, classes balanced."""
    dev = model_device(teacher)
    gens, stats = train_kegnet_generators(teacher, config, input_shape=input_shape, num_classes=num_classes,
                                          dataset=dataset, progress=progress_span(progress, 0.0, 0.95),
                                          cancelled=cancelled)
    k = len(gens)
    rng = torch.Generator().manual_seed(dist.item_seed(config.seed, k))  # the sampling's own stream
    out = []
    y_all = torch.arange(config.n) % num_classes
    y_all = y_all[torch.randperm(config.n, generator=rng)]
    share = -(-config.n // k)
    with torch.no_grad():
        for g, G in enumerate(gens):
            G.train()  # batch statistics, as during training
            ys = y_all[g * share:(g + 1) * share]
            for i in range(0, len(ys), config.batch_size):
                y = ys[i:i + config.batch_size]
                m = max(len(y), 2)
                yy = torch.cat([y, y[:1].repeat(m - len(y))]).to(dev)
                z = torch.randn(m, config.noise(), generator=rng).to(dev)
                out.append(G(z, yy)[:len(y)].cpu())
            G.eval()
    if progress:
        progress(1.0, "KegNet: sampled")
    return torch.cat(out), stats


@torch.no_grad()
def kegnet_pictures(generators: list[nn.Module], num_classes: int, noise_dim: int, *, samples: int = 64,
                    walk: tuple[int, int] = (0, 5), steps: int = 9, seed: int = 0) -> dict[str, torch.Tensor]:
    """Seed 004's qualitative figures, per generator: each class at ``z = 0`` ("zero", G x K x input), each class
    averaged over ``samples`` noise vectors ("mean"), and a latent walk of the label from class ``walk[0]`` to
    ``walk[1]`` at ``z = 0`` ("walk", G x steps x input; "walk_weights" the share of the second class)."""
    a, b = walk
    if not (0 <= a < num_classes and 0 <= b < num_classes):
        raise ValueError(f"the walk's classes must lie in 0..{num_classes - 1}")
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, noise_dim, generator=g)
    t = torch.linspace(0, 1, steps)
    soft = torch.zeros(steps, num_classes)
    soft[:, a] += 1 - t
    soft[:, b] += t
    zero, mean, path = [], [], []
    for G in generators:
        G.eval()
        dev = model_device(G)
        ks = torch.arange(num_classes, device=dev)
        zero.append(G(torch.zeros(num_classes, noise_dim, device=dev), ks).cpu())
        mean.append(torch.stack([G(z.to(dev), torch.full((samples,), k, device=dev)).mean(0) for k in range(num_classes)]).cpu())
        path.append(G(torch.zeros(steps, noise_dim, device=dev), soft.to(dev)).cpu())
    return {"zero": torch.stack(zero), "mean": torch.stack(mean), "walk": torch.stack(path), "walk_weights": t}
