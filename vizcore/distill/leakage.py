"""Does a synthetic set give away whose data trained the teacher? Seed 000 section 4.3 (Table 5) on faces.

The subjects are split into two teams. For each team a task model is trained on that team's real images
only, a synthetic set is generated from the task model alone, and a student of the same architecture learns
the task from the synthetic set. A team identifier, trained on real images of both teams, then says which
team each image comes from: on real test images it should succeed, on the synthetic set (whose team is known:
the team of its teacher) it should be near chance if the pictures carry the task and not the people.

On Yale faces the task is the lighting direction (left / right / front: ``leftlight``, ``rightlight`` and all
other conditions), a task that does not need to know who is in the picture.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from vizcore.core.progress import Progress, progress_span
from vizcore.data import Dataset
from vizcore.distill.synthesis import METHODS, SynthesisConfig, synthesize
from vizcore.metrics import predict_logits
from vizcore.models import ARCHITECTURES, build_model
from vizcore.train import TrainConfig, fit

LIGHTING = ("left", "right", "front")


@dataclass(frozen=True)
class LeakageConfig:
    """``arch``: task model, student and identifier; ``n_synthetic``: images per team's synthetic set,
    made by ``method``; ``epochs``: every model's training epochs (on class-balanced batches)."""

    arch: str = "lenet_faces"
    n_synthetic: int = 300
    epochs: int = 60
    method: str = "generator-am"
    seed: int = 0

    def __post_init__(self):
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture '{self.arch}'; choose one of {', '.join(ARCHITECTURES)}")
        if self.method not in METHODS or self.method == "class-averages":
            raise ValueError(f"the synthetic set must be data-free: one of {', '.join(m for m in METHODS if m != 'class-averages')}")
        if self.n_synthetic < 2 or self.epochs < 1:
            raise ValueError("n_synthetic must be at least 2 and epochs at least 1")


def lighting_task(ds: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
    """Lighting labels (0 left, 1 right, 2 front) of the train and test images, from their condition tags."""
    if ds.train_tags is None or ds.test_tags is None:
        raise ValueError(f"{ds.name} has no per-image condition tags; the leakage check needs Yale faces' "
                         "'leftlight' / 'rightlight' conditions to define its task")
    code = {"leftlight": 0, "rightlight": 1}
    return tuple(torch.tensor([code.get(t, 2) for t in tags]) for tags in (ds.train_tags, ds.test_tags))


def _balanced(y: torch.Tensor, seed: int) -> torch.Tensor:
    """Indices that repeat every class up to the largest class's count (class-balanced training)."""
    g = torch.Generator().manual_seed(seed)
    top = int(torch.bincount(y).max())
    idx = []
    for c in torch.unique(y):
        rows = (y == c).nonzero()[:, 0]
        idx.append(rows[torch.randint(0, len(rows), (top,), generator=g)] if len(rows) < top else rows)
    return torch.cat(idx)


def _train(arch: str, x: torch.Tensor, y: torch.Tensor, k: int, config: LeakageConfig, seed: int, *,
           soft: torch.Tensor | None = None, cancelled=None):
    model = build_model(arch, tuple(x.shape[1:]), k, seed=seed)
    idx = _balanced(y, seed)
    fit(model, x[idx], None if soft is not None else y[idx],
        TrainConfig(epochs=config.epochs, batch_size=32, seed=seed),
        soft_targets=soft[idx] if soft is not None else None, cancelled=cancelled)
    return model.requires_grad_(False)


def balanced_accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Mean per-class recall over the classes present in ``y`` (chance is 1 / classes)."""
    return float(np.mean([(pred[y == c] == c).float().mean() for c in torch.unique(y)]))


def leakage_experiment(x: torch.Tensor, y: torch.Tensor, person: torch.Tensor, test: torch.Tensor,
                       task_names: list[str], config: LeakageConfig, *, progress: Progress | None = None,
                       cancelled: Callable[[], bool] | None = None) -> dict:
    """Table 5 of seed 000 on any images with a task label ``y``, a person id and a test mask.

    Persons are split into two teams at random (seeded). Per team: the task model's balanced accuracy on the
    team's real test images, the synthetic-set student's, and the identifier's share of the team's real
    test images and of its synthetic images put in the right team (chance 50 %).
    """
    k = len(task_names)
    people = torch.unique(person)
    if len(people) < 2:
        raise ValueError("the leakage check needs images of at least two people")
    g = torch.Generator().manual_seed(config.seed)
    order = people[torch.randperm(len(people), generator=g)]
    teams = [order[: len(order) // 2], order[len(order) // 2:]]
    team = torch.isin(person, teams[1]).long()
    train = ~test
    ident = _train(config.arch, x[train], team[train], 2, config, config.seed + 100, cancelled=cancelled)
    rows = []
    for t in (0, 1):
        span = progress_span(progress, t / 2, (t + 1) / 2)
        mine_train, mine_test = train & (team == t), test & (team == t)
        if span:
            span(0.0, f"team {t + 1}: task model")
        h1 = _train(config.arch, x[mine_train], y[mine_train], k, config, config.seed + t, cancelled=cancelled)
        synth = synthesize(h1, SynthesisConfig(method=config.method, n=config.n_synthetic, seed=config.seed + t),
                           input_shape=tuple(x.shape[1:]), class_names=list(task_names),
                           progress=progress_span(span, 0.1, 0.8), cancelled=cancelled)
        h2 = _train(config.arch, synth.images, synth.labels, k, config, config.seed + 10 + t, soft=synth.probs,
                    cancelled=cancelled)
        xt, yt = x[mine_test], y[mine_test]
        rows.append({
            "team": f"Team {t + 1}", "people": sorted(int(p) for p in teams[t]),
            "train_images": int(mine_train.sum()), "test_images": int(mine_test.sum()),
            "task_real": balanced_accuracy(predict_logits(h1, xt).argmax(1), yt),
            "student_synthetic": balanced_accuracy(predict_logits(h2, xt).argmax(1), yt),
            "identifier_real": float((predict_logits(ident, xt).argmax(1) == t).float().mean()),
            "identifier_synthetic": float((predict_logits(ident, synth.images).argmax(1) == t).float().mean()),
            "synthetic_class_counts": synth.stats["class_counts"],
        })
    return {"task_classes": list(task_names), "config": asdict(config), "teams": rows,
            "chance": {"task_balanced_accuracy": 1 / k, "identifier": 0.5}}


def identity_leakage(ds: Dataset, config: LeakageConfig = LeakageConfig(), *, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> dict:
    """:func:`leakage_experiment` on Yale faces (or any dataset whose classes are people and whose images
    carry Yale's condition tags), with the lighting direction as the task; the dataset's own train / test
    split is kept."""
    ytr, yte = lighting_task(ds)
    x = torch.cat([ds.train_x, ds.test_x])
    out = leakage_experiment(x, torch.cat([ytr, yte]), torch.cat([ds.train_y, ds.test_y]),
                             torch.arange(len(x)) >= len(ds.train_x), list(LIGHTING), config,
                             progress=progress, cancelled=cancelled)
    return {"dataset": ds.name, "task": "lighting direction (left / right / front)", **out}
