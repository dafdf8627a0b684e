"""Training loops: teachers for the zoo, and (with soft targets) students.

Progress goes through a callback and cancellation through a predicate, so the same loop runs in the CLI,
in a background job of the app and in tests.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import torch
import torch.nn.functional as F
from torch import nn

from vizcore.core import distributed as dist
from vizcore.core.config import Config
from vizcore.core.progress import Progress, check_cancelled
from vizcore.core.workspace import name_from
from vizcore.data import Dataset, dataset_label, load_dataset
from vizcore.metrics import evaluate_model
from vizcore.models import build_model
from vizcore.zoo import ZOO_DIR, ModelCard, ModelEntry, save_model

@dataclass(frozen=True)
class TrainConfig(Config):
    """Hyperparameters of :func:`fit`. ``temperature`` applies to soft targets (knowledge distillation)."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"  # or "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    seed: int = 0
    temperature: float = 1.0
    device: str = "cpu"  # "cpu", "cuda" or "auto"


@dataclass(frozen=True)
class Recipe:
    """An architecture's training recipe, as the zoo trained it (``assets/models/train_zoo.sh``).

    ``steps`` is the budget in optimizer steps: the zoo model's epochs times its batches per epoch on the data it
    was trained on, so a dataset of any size gets the same amount of training (:func:`recipe_config`).
    """

    lr: float = 1e-3
    batch_size: int = 128
    optimizer: str = "adam"
    steps: int = 10 * 469  # 10 epochs of Fashion-MNIST's 60,000 images in batches of 128


# Fashion-MNIST recipes (469 batches of 128 per epoch) and Yale faces' (123 training images: 8 batches of 16;
# Adam at 0.003, since the seed's plain SGD at 0.1 did not learn). mlp3 has no zoo model: the generic recipe.
# mlp10 (seed 004's tables) took 10 / 40 / 50 epochs on Shuttle / PenDigits / Letter (298 / 52 / 110 batches of
# 128): its recipe is the largest of those budgets, Letter's, which still gained from more.
RECIPES: dict[str, Recipe] = {
    "linear": Recipe(steps=10 * 469), "mlp": Recipe(steps=15 * 469), "mlp3": Recipe(),
    "cnn": Recipe(steps=12 * 469), "cnn_s": Recipe(steps=12 * 469), "cnn_tiny": Recipe(steps=15 * 469),
    "cnn_l": Recipe(steps=8 * 469), "lenet_faces": Recipe(lr=0.003, batch_size=16, steps=250 * 8),
    "mlp10": Recipe(steps=50 * 110),
}


def recipe_config(arch: str, n_train: int, **overrides) -> TrainConfig:
    """The default :class:`TrainConfig` for ``arch`` on ``n_train`` training images: its recipe's optimizer, rate
    and batch size, and as many epochs as its step budget takes (at least 1). Overrides that are not None win."""
    r = RECIPES.get(arch, Recipe())
    batch = overrides.get("batch_size") or r.batch_size
    epochs = max(1, round(r.steps / max(1, -(-n_train // batch))))
    base = TrainConfig(epochs=epochs, batch_size=batch, lr=r.lr, optimizer=r.optimizer)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def default_model_name(dataset: str, arch: str) -> str:
    """``DATASET-ARCH`` as a valid workspace model name, also for ``image-folder:PATH`` and ``npz:PATH``
    datasets; ``DATASET-ARCH-mine`` where the zoo has a model of that name (a workspace model may not take it)."""
    name = f"{name_from(dataset_label(dataset))}-{arch}"
    return f"{name}-mine" if (ZOO_DIR / f"{name}.json").exists() else name


def _resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, config: TrainConfig, *,
        soft_targets: torch.Tensor | None = None, params=None,
        relabel: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] | None = None,
        progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
        parallel: bool = False, extra_loss: Callable[[torch.Tensor], torch.Tensor] | None = None) -> list[float]:
    """Train ``model`` in place on ``x`` with hard labels ``y`` or ``soft_targets`` (N, K probabilities).

    With soft targets the loss is the cross-entropy to the targets at ``config.temperature`` (scaled by T^2,
    Hinton et al.), as seeds 000 and 003 train on the teacher's softmax. ``params`` restricts what is
    optimized (seed 003's bias-only training). ``relabel`` maps every batch to (new images, soft targets at
    the temperature), for a teacher kept in the loop. ``extra_loss(batch)``, called after the model's forward pass
    on the batch, is added to its loss (feature matching: :func:`vizcore.distill.engine.feature_matching`). Returns
    the mean loss of each epoch; the model is left in eval mode.

    ``parallel`` (every rank of a torchrun job calls it): the model is wrapped in DistributedDataParallel and each
    rank takes every ``world``-th image of each batch of the one-process order, so the all-reduced gradient is the
    one-process batch's (up to float sums) and N processes train the one-process model.
    """
    if y is None and soft_targets is None and relabel is None:
        raise ValueError("fit needs hard labels, soft targets or a relabel function")
    device = _resolve_device(config.device)
    model.to(device)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    params = list(params if params is not None else model.parameters())
    if config.optimizer == "sgd":
        opt = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    else:
        opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    n, T = len(x), config.temperature
    steps_per_epoch = max(1, -(-n // config.batch_size))
    world = dist.world_size() if parallel else 1
    net = dist.wrap(model) if world > 1 else model
    losses = []
    model.train()
    try:
        for epoch in range(config.epochs):
            order = torch.randperm(n, generator=gen)
            total = 0.0
            for step, i in enumerate(range(0, n, config.batch_size)):
                check_cancelled(cancelled)
                idx = order[i:i + config.batch_size]
                share = 1.0
                if world > 1:  # this rank's share of the batch (a last batch smaller than the world is skipped)
                    if len(idx) < world:
                        continue
                    mine = idx[dist.rank()::world]
                    share, idx = world * len(mine) / len(idx), mine  # DDP's mean of means = the batch mean
                xb = x[idx].to(device)
                target = soft_targets[idx].to(device) if soft_targets is not None else None
                if relabel is not None:
                    xb, target = relabel(xb)
                logits = net(xb)
                if target is not None:
                    loss = -(target * F.log_softmax(logits / T, dim=1)).sum(1).mean() * T * T
                else:
                    loss = F.cross_entropy(logits, y[idx].to(device))
                if extra_loss is not None:
                    loss = loss + extra_loss(xb)
                opt.zero_grad(set_to_none=True)
                (loss * share).backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
                if progress:
                    done = (epoch * steps_per_epoch + step + 1) / (config.epochs * steps_per_epoch)
                    progress(done, f"epoch {epoch + 1}/{config.epochs}, loss {loss.item():.4f}")
            losses.append(total / n)
    finally:
        model.eval()
    return losses


def train_teacher(dataset: Dataset | str, arch: str, config: TrainConfig, name: str | None = None, *,
                  folder=None, command: str | None = None, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None, overwrite: bool = False) -> ModelEntry | None:
    """Train a zoo architecture on a dataset's train split, evaluate it on the test split and save it with
    its model card (to ``folder``, default the workspace); under torchrun the ranks train it together
    (:func:`fit` ``parallel``) and rank 0 saves it (the others return None). Nothing is written if training is cancelled; a model
    of the same name is replaced only with ``overwrite``."""
    ds = load_dataset(dataset) if isinstance(dataset, str) else dataset
    model = build_model(arch, ds.input_shape, ds.num_classes, seed=config.seed)
    start = time.perf_counter()
    fit(model, ds.train_x, ds.train_y, config, progress=progress, cancelled=cancelled, parallel=True)
    seconds = time.perf_counter() - start
    model.cpu()
    if not dist.is_main():  # under torchrun rank 0 alone evaluates and saves
        return None
    card = ModelCard(
        name=name or default_model_name(ds.name, arch), dataset=ds.name, arch=arch, input_shape=list(ds.input_shape),
        class_names=list(ds.class_names), hyperparameters=config.to_dict(), seed=config.seed,
        metrics=evaluate_model(model, ds.test_x, ds.test_y, ds.class_names), train_seconds=round(seconds, 2),
        command=command or "python -m vizcore " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), preprocessing=ds.preprocessing,
    )
    return save_model(model, card, folder, overwrite=overwrite)
