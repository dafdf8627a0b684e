"""How readable a set of images is to classifiers other than the teacher: the share each independent
judge labels as the intended class (recognizability), and seed 000's fooling-example and hidden-message
rates (section 4.2.1, Definitions 4.1 and 4.2; Tables 3 and 4).

Everything here works on prediction arrays, so any "classifier" can take part: a network's argmax, a
person's answers, or a room's tally. An answer of ``-1`` means "no answer" (a person who skipped a picture).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from vizcore import zoo
from vizcore.data import Dataset
from vizcore.metrics import predict_logits
from vizcore.models import build_model
from vizcore.train import TrainConfig, fit

NO_ANSWER = -1


def _labels(a) -> np.ndarray:
    return np.asarray(a.numpy() if isinstance(a, torch.Tensor) else a, dtype=np.int64)


def _members(S, n: int) -> np.ndarray:
    """S as an (N images, M classifiers) integer array; a mapping {name: (N,) answers} keeps its order."""
    if isinstance(S, Mapping):
        S = np.stack([_labels(v) for v in S.values()], 1) if S else np.zeros((n, 0), dtype=np.int64)
    S = _labels(S)
    if S.ndim != 2 or S.shape[0] != n:
        raise ValueError(f"S must hold one answer per image and classifier, shape ({n}, M); got {S.shape}")
    if S.shape[1] == 0:
        raise ValueError("S must hold at least one classifier")
    return S


def fooling_examples(h, S) -> np.ndarray:
    """Definition 4.1 (seed 000): image ``x`` is a fooling example for S when more than half of S give a
    class other than ``h(x)``.

    ``h``: (N,) the teacher's class of each image; ``S``: (N, M) answers of M classifiers (or a mapping of
    named (N,) arrays). Members that gave no answer (-1) to an image are left out of that image's vote (N
    counts those who answered); an image no member answered is never a fooling example. Disagreeing members
    need not agree with each other: Table 4's rates (81 % fooling with five people who each agree with the
    teacher on 16-40 % of the images) only fit this reading.
    """
    h = _labels(h)
    S = _members(S, len(h))
    answered = S != NO_ANSWER
    disagree = (answered & (S != h[:, None])).sum(1)
    return 2 * disagree > answered.sum(1)


def hidden_messages(h, h_s, S) -> np.ndarray:
    """Definition 4.2 (seed 000): ``h`` and ``h_s`` give the same class and more than half of S give
    another one (a message the two can pass that S mostly misreads)."""
    h, h_s = _labels(h), _labels(h_s)
    if h_s.shape != h.shape:
        raise ValueError(f"h_s must answer every image: {h_s.shape} answers for {h.shape} images")
    return (h == h_s) & fooling_examples(h, S)


def agreement(h, answers) -> float | None:
    """Share of the images ``answers`` gives the class ``h`` gives, over the images it answered (None if none)."""
    h, a = _labels(h), _labels(answers)
    answered = a != NO_ANSWER
    return float((a[answered] == h[answered]).mean()) if answered.any() else None


def difficulty(h, S, h_s=None) -> dict:
    """One column of Tables 3 / 4 for one set of images: each member's agreement with ``h`` and the
    fooling-example and hidden-message rates (shares of the images; hidden messages need ``h_s``).

    ``S`` is an (N, M) array or a mapping {name: (N,) answers}; unnamed members are called ``S1, S2, ...``.
    """
    h = _labels(h)
    names = list(S) if isinstance(S, Mapping) else [f"S{i + 1}" for i in range(_members(S, len(h)).shape[1])]
    arr = _members(S, len(h))
    out = {"n": int(len(h)), "agreement": {k: agreement(h, arr[:, i]) for i, k in enumerate(names)},
           "fooling_rate": float(fooling_examples(h, arr).mean()) if len(h) else None}
    if h_s is not None:
        out["h_s_agreement"] = agreement(h, h_s)
        out["hidden_rate"] = float(hidden_messages(h, h_s, arr).mean()) if len(h) else None
    return out


# --- recognizability: independent judges -------------------------------------------------------------------

def predictions(models: Mapping[str, nn.Module], images: torch.Tensor) -> dict[str, np.ndarray]:
    """Each model's class (argmax) of each image."""
    return {k: predict_logits(m, images).argmax(1).numpy() for k, m in models.items()}


def recognizability(labels, answers: Mapping[str, np.ndarray]) -> dict:
    """Share of the images each judge labels as their intended class, with the mean and the worst judge."""
    per = {k: agreement(labels, v) for k, v in answers.items()}
    vals = [v for v in per.values() if v is not None]
    return {"per_judge": per, "mean": float(np.mean(vals)) if vals else None,
            "min": float(min(vals)) if vals else None}


def _digest(entry: zoo.ModelEntry) -> str:
    return hashlib.sha256(entry.weights.read_bytes()).hexdigest()


def zoo_judges(teacher_id: str | None, dataset: Dataset) -> list[zoo.ModelEntry]:
    """Zoo models trained on ``dataset``'s real images that fit it, other than the teacher (by id and by
    weights): judges that never took part in making the pictures."""
    entries = [e for e in zoo.list_models(include_user=False) if e.card.dataset == dataset.name and zoo.fits(e, dataset)]
    if teacher_id is None:
        return entries
    try:
        teacher = zoo.get_entry(teacher_id)
    except zoo.ModelFileError:
        return entries
    own = _digest(teacher)
    return [e for e in entries if e.id != teacher.id and _digest(e) != own]


def quick_judge(dataset: Dataset, seed: int = 0, progress=None, cancelled=None) -> tuple[nn.Module, str]:
    """A small classifier trained here on the real training split of ``dataset`` (seeded): ``cnn_s`` when
    the images are large enough for two conv+pool blocks, else ``mlp3`` (small images, table rows); about 20,000 images' worth of
    epochs (1-30). Returns the model and a line that says what it is and its test accuracy."""
    shape = dataset.input_shape
    arch = "cnn_s" if len(shape) == 3 and min(shape[1:]) >= 4 else "mlp3"
    model = build_model(arch, dataset.input_shape, dataset.num_classes, seed=seed)
    epochs = int(min(30, max(1, math.ceil(20000 / len(dataset.train_x)))))
    fit(model, dataset.train_x, dataset.train_y, TrainConfig(epochs=epochs, batch_size=64, seed=seed),
        progress=progress, cancelled=cancelled)
    model.requires_grad_(False)
    acc = float((predict_logits(model, dataset.test_x).argmax(1) == dataset.test_y).float().mean())
    return model, f"{arch} trained here on {dataset.name}'s {len(dataset.train_x)} real training images " \
                   f"({epochs} epochs, seed {seed}; test accuracy {acc:.1%})"


def judges_for(teacher_id: str | None, dataset: Dataset, quick: bool = True, progress=None,
               cancelled=None) -> tuple[dict[str, nn.Module], str]:
    """The independent judges for pictures of a teacher: the dataset's other zoo models, or (when there
    are none and ``quick``) one :func:`quick_judge`. Returns {name: model} and a line saying which."""
    entries = zoo_judges(teacher_id, dataset)
    if entries:
        names = ", ".join(e.id for e in entries)
        return {e.id: zoo.load_model(e) for e in entries}, f"judges: {names} (trained on real {dataset.name} images)"
    if not quick:
        return {}, f"no other zoo model was trained on {dataset.name}: no independent judge"
    model, line = quick_judge(dataset, progress=progress, cancelled=cancelled)
    return {"quick judge": model}, f"no other zoo model was trained on {dataset.name}; judge: {line}"


def test_accuracy(models: Mapping[str, nn.Module], dataset: Dataset, limit: int | None = None) -> dict[str, float]:
    """Each model's accuracy on the test split (the metric m(h_i, D_T) seed 000 asks every member of S to pass)."""
    x, y = dataset.test_x[:limit], dataset.test_y[:limit]
    return {k: float((predict_logits(m, x).argmax(1) == y).float().mean()) for k, m in models.items()}


def interpretability_table(h: nn.Module, S: Mapping[str, nn.Module], sets: Mapping[str, torch.Tensor], *,
                           h_s: nn.Module | None = None, extra: Mapping[str, Mapping[str, Sequence[int]]] | None = None,
                           dataset: Dataset | None = None) -> dict:
    """Tables 3 / 4 of seed 000 on our data: for each named set of images, the teacher ``h``'s class of each
    image, every member of S's agreement with it, and the fooling-example / hidden-message rates.

    ``extra`` adds prediction arrays as further members of S per set ({set: {name: (N,) answers}}), e.g. a
    room's answers. With ``dataset`` each network's test accuracy is reported too (the first column).
    """
    out: dict = {"sets": {}}
    if dataset is not None:
        out["test_accuracy"] = test_accuracy({"h": h, **({"h_s": h_s} if h_s is not None else {}), **S}, dataset)
    for name, images in sets.items():
        teacher = predict_logits(h, images).argmax(1).numpy()
        answers = {**predictions(S, images), **{k: _labels(v) for k, v in (extra or {}).get(name, {}).items()}}
        hs = predict_logits(h_s, images).argmax(1).numpy() if h_s is not None else None
        out["sets"][name] = difficulty(teacher, answers, hs)
    return out
