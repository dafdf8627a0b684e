"""Seed 003 section 8 (preset d): class-subset teachers, and swapping one class's visualization.

A two-class teacher of the same architecture is trained on real images of ``cls`` against ``versus`` (one
class, "3 vs 4") or against every other class (balanced, "3 vs all"). Its two class visualizations retrain
the same two-class architecture from scratch; then its visualization of ``cls`` replaces the 10-class
teacher's in the 10-image set, and a 10-class student learns from the swapped set. As everywhere in the
student lab, every synthetic image is labelled by the 10-class teacher (soft targets), students never see
real images, and the real test split is read once, at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from vizcore.metrics import classification_report, predict_logits
from vizcore.models import build_model
from vizcore.distill.students import SEED003_STUDENT, StudentConfig, train_student
from vizcore.distill.synthesis import SEED003_VISUALIZE, SynthesisConfig, SyntheticSet, label_with_teacher, synthesize
from vizcore.train import TrainConfig, fit
from vizcore.core.progress import Progress

Split = tuple[torch.Tensor, torch.Tensor]
PIXEL_AM = SynthesisConfig(method="pixel-am", n=10, per_class=1, visualize=SEED003_VISUALIZE)


def binary_task(split: Split, cls: int, versus: int | None, seed: int = 0) -> Split:
    """Images of ``cls`` (label 0) against ``versus`` or, with None, a balanced sample of all others (label 1)."""
    x, y = split
    pos = torch.nonzero(y == cls)[:, 0]
    neg = torch.nonzero(y == versus if versus is not None else y != cls)[:, 0]
    if versus is None:
        neg = neg[torch.from_numpy(np.random.default_rng(seed).permutation(len(neg))[:len(pos)])]
    idx = torch.cat([pos, neg])
    return x[idx], (torch.arange(len(idx)) >= len(pos)).long()


def _swap(base: SyntheticSet, cls: int, image: torch.Tensor, teacher: nn.Module) -> SyntheticSet:
    """``base`` with the image of class ``cls`` replaced by ``image``, relabelled by the 10-class teacher."""
    images = base.images.clone()
    images[int(torch.nonzero(torch.arange(len(base)) % len(base.class_names) == cls)[0])] = image
    labels, logits, probs = label_with_teacher(teacher, images)
    return replace(base, images=images, labels=labels, logits=logits, probs=probs)


def class_subset_preset(teacher: nn.Module, arch: str, *, class_names: list[str], input_shape,
                        load_train: Callable[[], Split], load_test: Callable[[], Split], cls: int = 3,
                        versus: int = 4, teacher_training: TrainConfig = TrainConfig(), synthesis: SynthesisConfig = PIXEL_AM,
                        student: StudentConfig = SEED003_STUDENT,
                        progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> dict:
    """Run preset (d) for ``cls`` vs ``versus`` and ``cls`` vs all; returns accuracies and per-class reports.

    ``synthesis`` must make one image per class (pixel AM, ``per_class=1``); ``student`` is the student of
    every run (its ``arch`` is replaced by the teacher's ``arch``).
    """
    def tick(i, msg):
        if progress:
            progress(i / 6, msg)
    student = replace(student, arch=arch)
    kw = dict(input_shape=input_shape, cancelled=cancelled)
    tick(0, "10-class visualizations")
    base = synthesize(teacher, synthesis, class_names=class_names, **kw)
    students = {"10-class visualizations": train_student(base, student, cancelled=cancelled)}
    train = load_train()
    binary = {}
    for j, (name, other) in enumerate(((f"{class_names[cls]} vs {class_names[versus]}", versus),
                                       (f"{class_names[cls]} vs all", None))):
        tick(1 + 2 * j, f"{name}: training the two-class teacher on real images")
        two = build_model(arch, tuple(input_shape), 2, seed=teacher_training.seed)
        fit(two, *binary_task(train, cls, other, teacher_training.seed), teacher_training, cancelled=cancelled)
        tick(2 + 2 * j, f"{name}: visualizations and students")
        vis = synthesize(two, synthesis, class_names=[class_names[cls], "rest" if other is None else class_names[other]], **kw)
        binary[name] = {"teacher": two, "versus": other,
                        "student": train_student(vis, student, cancelled=cancelled)}
        students[f"10-class, {class_names[cls]} swapped from {name}"] = train_student(
            _swap(base, cls, vis.images[0], teacher), student, cancelled=cancelled)
    tick(5.5, "final evaluation on the test split")
    test_x, test_y = load_test()  # the only read of the test split

    def acc(model_or_student, x, y) -> float:
        pred = model_or_student.predict(x) if hasattr(model_or_student, "predict") else \
            predict_logits(model_or_student, x).argmax(1).numpy()
        return float((np.asarray(pred) == y.numpy()).mean())
    teacher_acc = acc(teacher, test_x, test_y)
    out = {"class": cls, "versus": versus, "teacher_accuracy": teacher_acc, "two_class": [], "ten_class": []}
    for name, b in binary.items():
        x, y = binary_task((test_x, test_y), cls, b["versus"])
        out["two_class"].append({"task": name, "teacher_accuracy": acc(b["teacher"], x, y),
                                 "student_accuracy": acc(b["student"], x, y)})
    for name, s in students.items():
        pred = s.predict(test_x)
        rep = classification_report(test_y.numpy(), pred, class_names)
        out["ten_class"].append({"training set": name, "accuracy": rep["accuracy"],
                                 "ratio": rep["accuracy"] / teacher_acc,
                                 f"precision {class_names[cls]}": rep["per_class"][cls]["precision"],
                                 f"recall {class_names[cls]}": rep["per_class"][cls]["recall"],
                                 "f1": [r["f1"] for r in rep["per_class"]]})
    tick(6, "done")
    return out


JOB_KIND = "distill-subset"


def start_subset_run(teacher_id: str, dataset: str, cls: int = 3, versus: int = 4, wait: bool = False,
                     data_root: str | None = None):
    """Run :func:`class_subset_preset` as a background job on a zoo / workspace teacher; the two-class
    teachers are trained like the teacher (the hyperparameters on its model card)."""
    from vizcore import zoo
    from vizcore.data import load_dataset
    from vizcore.core.jobs import start_job

    entry = zoo.get_entry(teacher_id)
    k = len(entry.card.class_names)
    if not (0 <= cls < k and 0 <= versus < k and cls != versus):
        raise ValueError(f"choose two different classes in 0..{k - 1}")
    training = TrainConfig.from_dict({**entry.card.hyperparameters, "device": "cpu"})

    def work(ctx) -> dict:
        ds = load_dataset(dataset, root=data_root)
        return class_subset_preset(zoo.load_model(entry), entry.card.arch, class_names=list(entry.card.class_names),
                                   input_shape=tuple(entry.card.input_shape), cls=cls, versus=versus,
                                   load_train=lambda: (ds.train_x, ds.train_y), load_test=lambda: (ds.test_x, ds.test_y),
                                   teacher_training=training, progress=ctx.progress, cancelled=ctx.cancelled)

    names = entry.card.class_names
    return start_job(JOB_KIND, f"seed 003 preset (d) on {entry.id}: {names[cls]} vs {names[versus]} / vs all", work,
                     {"teacher": entry.id, "dataset": dataset, "class": cls, "versus": versus}, wait=wait)
