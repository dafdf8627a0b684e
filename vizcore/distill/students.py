"""Students: zoo architectures trained from scratch (hard or soft labels) and scikit-learn SVM / random forest.

Selection is data-free: a student learns on a synthetic training part and the checkpoint kept is the one
that agrees most with the teacher on a synthetic hold-out (seed 000 section 4.1 students; seed 003 section
5.3 soft targets). The real-data baseline (seed 000 Table 2) goes through the same function with real images
and a validation split of the real training set.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from vizcore.distill.engine import brighten
from vizcore.metrics import predict_logits
from vizcore.models import ARCHITECTURES, build_model
from vizcore.train import TrainConfig, fit
from vizcore.core.progress import Progress, check_cancelled

SKLEARN_STUDENTS = ("svm", "rf")
STUDENT_KINDS = tuple(ARCHITECTURES) + SKLEARN_STUDENTS
MIN_HOLDOUT = 5


@dataclass(frozen=True)
class StudentConfig:
    """One student. ``labels`` is ``soft`` (teacher softmax, KL at ``temperature``) or ``hard`` (argmax);
    scikit-learn students always learn hard labels. ``holdout`` is the synthetic fraction kept for selection;
    ``checkpoints`` how many times during training the hold-out score is measured; ``min_steps`` raises the
    epoch count of small sets (10 visualizations make one batch per epoch). ``relabel`` keeps the teacher in
    the loop (see :func:`brightness_relabel`); it needs a torch student and images in [0, 1]."""

    def epochs_for(self, n: int) -> int:
        return max(self.epochs, -(-self.min_steps // max(1, -(-n // self.batch_size))))

    arch: str = "cnn"
    labels: str = "soft"
    temperature: float = 1.0
    epochs: int = 20
    lr: float = 1e-3
    optimizer: str = "adam"  # or "sgd" (plain, seed 003's batch gradient descent with a large rate)
    batch_size: int = 128
    seed: int = 0
    holdout: float = 0.1
    checkpoints: int = 5
    min_steps: int = 300  # small sets get more epochs, so every student sees at least this many batches
    relabel: bool = False

    def __post_init__(self):
        if self.arch not in STUDENT_KINDS:
            raise ValueError(f"unknown student '{self.arch}'; choose one of {', '.join(STUDENT_KINDS)}")
        if self.labels not in ("soft", "hard"):
            raise ValueError("labels must be 'soft' or 'hard'")
        if not 0 <= self.holdout < 0.9:
            raise ValueError("the hold-out fraction must lie in [0, 0.9)")
        if self.relabel and self.arch in SKLEARN_STUDENTS:
            raise ValueError(f"a {self.arch} student is fitted once, so the teacher cannot stay in its loop; "
                             "use a torch student for relabel")

    @property
    def name(self) -> str:
        if self.arch in SKLEARN_STUDENTS:
            return self.arch
        return f"{self.arch}-{'relabel' if self.relabel else self.labels}"


# Seed 003 sections 5.3 and 8: a ``linear`` student fitted to 10 images by plain gradient descent with a large rate.
SEED003_STUDENT = StudentConfig(arch="linear", epochs=300, lr=5.0, optimizer="sgd", batch_size=10)


@dataclass
class Student:
    """A trained student: a torch model or a scikit-learn estimator, and how it was selected."""

    name: str
    config: StudentConfig
    model: nn.Module | None = None
    estimator: object | None = None
    selection: dict = field(default_factory=dict)
    seconds: float = 0.0

    def predict(self, x: torch.Tensor) -> np.ndarray:
        if self.model is not None:
            return predict_logits(self.model, x).argmax(1).numpy()
        return np.asarray(self.estimator.predict(x.flatten(1).numpy()))


def holdout_split(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, hold-out) indices; no hold-out when it would hold fewer than MIN_HOLDOUT items."""
    order = np.random.default_rng(seed).permutation(n)
    k = int(round(n * fraction))
    if k < MIN_HOLDOUT or n - k < 1:
        return np.sort(order), np.array([], dtype=int)
    return np.sort(order[k:]), np.sort(order[:k])


def selection_score(model: nn.Module, x: torch.Tensor, y: torch.Tensor, probs: torch.Tensor | None = None) -> tuple[float, float]:
    """(agreement with ``y``, minus the cross-entropy to ``probs`` or to ``y``) on a hold-out."""
    logits = predict_logits(model, x)
    target = probs if probs is not None else torch.nn.functional.one_hot(y, logits.shape[1]).float()
    ce = float(-(target * logits.log_softmax(1)).sum(1).mean())
    return float((logits.argmax(1) == y).float().mean()), -ce


def brightness_relabel(teacher: nn.Module, temperature: float = 1.0,
                       seed: int = 0) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Keep the teacher in the student's loop: every batch, each image is scaled by a random factor between 1
    and 1 / its brightest pixel (clipped to [0, 1]) and labelled afresh by the teacher (softmax at
    ``temperature``).

    Activation maximization from a blank image (seed 003 section 5.2) stops as soon as the teacher is sure,
    so its pictures are far dimmer than real ones; the student then never sees the teacher's view of bright
    images. Only the teacher and the synthetic images are used: the protocol stays data-free.
    """
    gen = torch.Generator().manual_seed(seed)

    def relabel(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        images = brighten(x, gen)
        with torch.no_grad():
            return images, (teacher(images) / temperature).softmax(1)
    return relabel


def fit_student(config: StudentConfig, x: torch.Tensor, y: torch.Tensor, *, soft: torch.Tensor | None = None,
                select: tuple[torch.Tensor, torch.Tensor] | None = None, num_classes: int,
                relabel: Callable | None = None, model: nn.Module | None = None, params=None,
                extra_loss: Callable | None = None, progress: Progress | None = None,
                cancelled: Callable[[], bool] | None = None) -> Student:
    """Train one student on ``x`` with hard labels ``y`` (or ``soft`` targets) and keep its best checkpoint.

    ``select`` = (images, labels[, teacher probs]) scored after every chunk of epochs by
    :func:`selection_score` (agreement with the teacher on a synthetic hold-out, or accuracy on a real
    validation split for the baseline); without it the last checkpoint is kept. ``model``/``params`` let a caller pass a prepared model and train only some of its
    parameters (preset e, a compressed model's repair); such a model's start is scored too and kept if no epoch beats it. ``relabel`` (from :func:`brightness_relabel`) replaces every batch and its targets;
    ``extra_loss``: see :func:`vizcore.train.fit`.
    """
    import time

    start = time.perf_counter()
    if config.arch in SKLEARN_STUDENTS:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import Normalizer
        from sklearn.svm import SVC

        # every image scaled to unit norm first: synthetic pictures are far dimmer than real ones, and a
        # brightness-blind view is what lets pixel-space learners carry over (Table 1 students, seed 000)
        est = make_pipeline(Normalizer(), SVC(kernel="rbf", gamma="scale") if config.arch == "svm" else
                            RandomForestClassifier(n_estimators=100, random_state=config.seed, n_jobs=1))
        if len(torch.unique(y)) < 2:
            raise ValueError("a scikit-learn student needs at least two classes among the synthetic labels")
        est.fit(x.flatten(1).numpy(), y.numpy())
        student = Student(config.name, config, estimator=est)
        if select is not None and len(select[0]):
            student.selection = {"score": float((student.predict(select[0]) == select[1].numpy()).mean()), "epoch": 0}
        if progress:
            progress(1.0, f"{config.name}: fitted")
        student.seconds = time.perf_counter() - start
        return student
    best, best_state, history, done = (-1.0, float("-inf")), None, [], 0
    if model is None:
        model = build_model(config.arch, tuple(x.shape[1:]), num_classes, seed=config.seed)
    elif select is not None and len(select[0]):  # a prepared model's start is a candidate (KegNet's code scores epoch 0)
        best, best_state, best_epoch = selection_score(model, *select), copy.deepcopy(model.state_dict()), 0
        history.append(best[0])
    total = config.epochs_for(len(x))
    chunks = max(1, min(config.checkpoints, total))
    sizes = [total // chunks + (1 if i < total % chunks else 0) for i in range(chunks)]
    for i, epochs in enumerate(sizes):
        check_cancelled(cancelled)
        tc = TrainConfig(epochs=epochs, batch_size=config.batch_size, lr=config.lr, seed=config.seed + i,
                         temperature=config.temperature, optimizer=config.optimizer, momentum=0.0)

        def tick(frac, msg, base=done):
            if progress:
                progress((base + frac * epochs) / total, f"{config.name}: {msg}")
        fit(model, x, None if soft is not None else y, tc, soft_targets=soft, params=params, relabel=relabel,
            extra_loss=extra_loss, progress=tick, cancelled=cancelled)
        done += epochs
        if select is not None and len(select[0]):
            score = selection_score(model, *select)
            history.append(score[0])
            if score >= best:  # agreement first; its ties (it saturates) go to the lower cross-entropy
                best, best_state, best_epoch = score, copy.deepcopy(model.state_dict()), done
    if best_state is not None:
        model.load_state_dict(best_state)
    selection = {"score": best[0], "cross_entropy": -best[1], "epoch": best_epoch, "history": history} if history else {}
    return Student(config.name, config, model=model.cpu().eval(), selection=selection,
                   seconds=time.perf_counter() - start)


def train_student(synth, config: StudentConfig, *, teacher: nn.Module | None = None, progress: Progress | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Student:
    """Train a student on a :class:`~vizcore.distill.synthesis.SyntheticSet`, selected by hold-out agreement.

    ``teacher`` (a frozen copy) is needed by ``config.relabel`` only; the hold-out keeps its stored labels.
    """
    tr, ho = holdout_split(len(synth), config.holdout, config.seed)
    train, hold = synth.subset(tr), synth.subset(ho)
    soft = relabel = None
    if config.relabel:  # the teacher labels every batch afresh: the stored labels only serve selection
        if teacher is None:
            raise ValueError("relabel keeps the teacher in the student's loop: pass the teacher")
        if float(synth.images.min()) < 0 or float(synth.images.max()) > 1:
            raise ValueError("relabel rescales images within [0, 1]; this synthetic set has unbounded pixels")
        relabel = brightness_relabel(teacher, config.temperature, config.seed)
    elif config.labels == "soft" and config.arch not in SKLEARN_STUDENTS:
        soft = (train.logits / config.temperature).softmax(1) if config.temperature != 1 else train.probs
    return fit_student(config, train.images, train.labels, soft=soft, select=(hold.images, hold.labels, hold.probs),
                       num_classes=len(synth.class_names), relabel=relabel, progress=progress, cancelled=cancelled)


def bias_only_student(prototypes: torch.Tensor, synth, config: StudentConfig, *, progress: Progress | None = None,
                      cancelled: Callable[[], bool] | None = None) -> Student:
    """Seed 003 section 10 (extreme compression): a ``linear`` model whose weight rows are the class
    visualizations ``prototypes`` (K, C, H, W); only the K biases are trained, on the synthetic set."""
    k = len(prototypes)
    model = build_model("linear", tuple(prototypes.shape[1:]), k, seed=config.seed)
    with torch.no_grad():
        model.fc1.weight.copy_(prototypes.flatten(1))
        model.fc1.bias.zero_()
    model.fc1.weight.requires_grad_(False)
    cfg = StudentConfig(**{**config.__dict__, "arch": "linear"})
    student = fit_student(cfg, synth.images, synth.labels, soft=synth.probs if config.labels == "soft" else None,
                          num_classes=k, model=model, params=[model.fc1.bias], progress=progress,
                          cancelled=cancelled)
    student.name = "linear-bias-only"
    return student
