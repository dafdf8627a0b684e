"""Synthetic datasets made from a teacher alone: the method registry, generator AM, and the dataset artifact.

A method turns a teacher into images; :func:`synthesize` then labels every image with the teacher (hard
label = argmax, soft label = softmax, as seed 000 section 3.1 step 2 and seed 003 section 3.2 do) and wraps
them in a :class:`SyntheticSet` that is saved to the workspace and reused by the student trainer.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizcore.distill.generators import Generator
from vizcore.core.hooks import capture, frozen_copy, guarded
from vizcore.metrics import predict_logits
from vizcore.core.layers import model_device, penultimate_layer
from vizcore.core.progress import Progress, check_cancelled, progress_span
from vizcore.explain.visualize import VisualizeConfig
from vizcore.core.workspace import atomic_write

METHODS = ("kegnet-online", "online", "mixed-am", "generator-am", "kegnet", "dfad", "pixel-am", "weight-images",
           "class-averages", "uniform-noise")
# the methods whose images (all, or the starting set) KegNet's generators make; they also make feature rows
KEGNET_METHODS = ("kegnet-online", "kegnet")
METHOD_LABELS = {
    "kegnet-online": "KegNet set + online generator in the loop (vizcore's default)",
    "online": "Online generator in the loop (DFAD's adversary, DAFL's priors, a blank start)",
    "mixed-am": "Generator AM + pixel AM from blank, half each (the strongest here)",
    "generator-am": "Generator AM (seed 000)",
    "kegnet": "KegNet (seed 004)",
    "dfad": "Adversarial DFAD (beyond the seeds)",
    "pixel-am": "Pixel AM class visualizations (seed 003)",
    "weight-images": "Output-weight images (seed 003 section 9)",
    "class-averages": "Class averages (seed 003 section 7, needs real data)",
    "uniform-noise": "Uniform noise (naive baseline, KegNet's T+Uniform)",
}
DIGIT_DATASETS = ("digits", "mnist")
# Seed 003 sections 5.2-5.3: plain gradient ascent on the target logit from a blank image, pixels unbounded
# (the negative half of a linear teacher's weights survives), no stopping threshold. For a ``linear`` teacher
# every image is 0.1 x its class's weight row; the student matches the teacher's logits on them.
# Pixel AM as a dataset generator for deep teachers: from a blank image (seed 003), T drawn per image in
# 0.5-0.99 (seed 000 appendix A, widened), attraction-repulsion first; the best setting in bench/students.py.
PIXEL_HALF = dict(start="blank", max_steps=200, pre_steps=10, threshold=0.5, threshold_max=0.99)
SEED003_VISUALIZE = VisualizeConfig(start="blank", objective="logit", optimizer="sgd", lr=0.001, steps=100,
                                    pixel="free", threshold=None)


@dataclass(frozen=True)
class SynthesisConfig:
    """How to make a synthetic set. Fields a method does not use are ignored by it.

    ``images_per_generator``: generator AM re-initializes G for every this many images (3.3.1); smaller
    means more re-initializations and a more diverse set.
    ``threshold``/``threshold_max``: seed 000's stopping rule p(target) > T; a ``threshold_max`` draws T
    uniformly per batch (appendix A). ``pre_steps``: at most this many attraction-repulsion steps (3.3.2).
    ``loss2``: keep penultimate features away from real images of the class (4.1.2; needs real data).
    ``alpha``/``beta``/``generators``: KegNet's decoder and diversity weights and generator count (seed 004);
    ``beta=None`` means the paper's code's choice: 0 for digit data (MNIST), 10 otherwise (Fashion-MNIST); its
    learning rate likewise 1e-3 for digits and 1e-2 otherwise (:meth:`kegnet_lr`; tables keep 1e-3).
    ``start``: where pixel AM starts ('blank' as seed 003 argues: its pictures keep real images' dark
    background; 'noise' for textured ones). ``visualize``: pixel AM's full
    :class:`~vizcore.explain.visualize.VisualizeConfig` (None: built from the fields above); with ``pixel='free'`` the
    images keep their unbounded values (seed 003, see ``SEED003_VISUALIZE``).
    """

    method: str = "generator-am"
    n: int = 1000
    seed: int = 0
    batch_size: int = 64  # KegNet / DFAD training batches
    images_per_generator: int = 16  # generator AM: images each freshly initialized generator makes
    lr: float | None = None  # None: 0.01 for generator and pixel AM, 0.001 for KegNet and DFAD
    noise_dim: int | None = None  # None: 64 for generator AM / DFAD, 10 for KegNet (seed 004)
    threshold: float = 0.99
    threshold_max: float | None = None
    max_steps: int = 150
    pre_steps: int = 30
    loss2: bool = False
    loss2_lr_ratio: float = 0.25
    generators: int = 5
    train_steps: int = 300
    alpha: float = 1.0
    beta: float | None = None
    proxy_arch: str = "cnn_s"
    per_class: int | None = None  # pixel AM / weight images: images per class (default n // classes)
    start: str = "blank"  # pixel AM
    visualize: VisualizeConfig | None = None
    shard_images: int = 1000  # made in chunks of this many images, each seeded by its index (vizcore.distill.sharded)

    def __post_init__(self):
        if isinstance(self.visualize, dict):  # from JSON
            object.__setattr__(self, "visualize", VisualizeConfig.from_dict(self.visualize))
        if self.start not in ("blank", "noise"):
            raise ValueError(f"pixel AM starts from 'blank' or 'noise', not '{self.start}'")
        if self.method not in METHODS:
            raise ValueError(f"unknown synthesis method '{self.method}'; choose one of {', '.join(METHODS)}")
        if self.n < (2 if self.method == "mixed-am" else 1) or min(self.batch_size, self.images_per_generator) < 2 \
                or self.shard_images < 1:
            raise ValueError("the synthetic set needs n >= 1 images (2 for a mixed set), batches of at least 2 and "
                             "shards of at least 1")
        if not 0 < self.threshold < 1 or (self.threshold_max is not None and not self.threshold <= self.threshold_max < 1):
            raise ValueError("the threshold T must lie in (0, 1), and threshold_max between T and 1")
        if self.generators < 1:
            raise ValueError("KegNet needs at least one generator")

    @property
    def unbounded(self) -> bool:
        """Whether the images may leave [0, 1] (pixel AM with free pixels)."""
        return self.method == "pixel-am" and self.visualize is not None and self.visualize.pixel == "free"

    @property
    def needs_real_data(self) -> bool:
        return self.method == "class-averages" or (self.method in ("generator-am", "mixed-am") and self.loss2)

    @property
    def uses_kegnet(self) -> bool:
        """Whether KegNet's generators make the set (``kegnet``, and ``kegnet-online``'s starting set)."""
        return self.method in KEGNET_METHODS

    def noise(self) -> int:
        return self.noise_dim or (10 if self.uses_kegnet else 64)

    def learning_rate(self) -> float:
        return self.lr or (0.01 if self.method.endswith("-am") else 1e-3)

    def kegnet_beta(self, dataset: str) -> float:
        if self.beta is not None:
            return self.beta
        return 0.0 if dataset in DIGIT_DATASETS else 10.0

    def kegnet_lr(self, dataset: str) -> float:
        """KegNet's generator learning rate on images: its code's MNIST rate for digits, its Fashion-MNIST (and
        SVHN) rate otherwise."""
        return self.lr or (1e-3 if dataset in DIGIT_DATASETS else 1e-2)


@dataclass
class SyntheticSet:
    """Images with the teacher's view of them: the artifact students learn from."""

    images: torch.Tensor  # (N, C, H, W) in [0, 1] (unbounded for pixel AM with free pixels)
    labels: torch.Tensor  # (N,) teacher argmax
    logits: torch.Tensor  # (N, K)
    probs: torch.Tensor  # (N, K) teacher softmax
    class_names: list[str]
    config: dict
    teacher_id: str = ""
    stats: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx) -> SyntheticSet:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return replace(self, images=self.images[idx], labels=self.labels[idx], logits=self.logits[idx],
                       probs=self.probs[idx])

    def to_npz(self, path: str | Path) -> Path:
        meta = {"class_names": self.class_names, "config": self.config, "teacher_id": self.teacher_id,
                "stats": self.stats}

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, images=self.images.numpy(), labels=self.labels.numpy(),
                                    logits=self.logits.numpy(), probs=self.probs.numpy(), meta=json.dumps(meta))
        return atomic_write(path, write)

    @classmethod
    def from_npz(cls, source: str | Path | bytes) -> SyntheticSet:
        with np.load(io.BytesIO(source) if isinstance(source, bytes) else source, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            return cls(images=torch.from_numpy(z["images"]), labels=torch.from_numpy(z["labels"]),
                       logits=torch.from_numpy(z["logits"]), probs=torch.from_numpy(z["probs"]), **meta)


def label_with_teacher(teacher: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(hard labels, logits, softmax) of ``teacher`` on ``images`` (the shared model is only read, under its lock)."""
    with guarded(teacher):
        logits = predict_logits(teacher, images)
    return logits.argmax(1), logits, logits.softmax(1)


def _check(cancelled: Callable[[], bool] | None) -> None:
    check_cancelled(cancelled)


def generator_am(teacher: nn.Module, config: SynthesisConfig, *, input_shape, num_classes: int,
                 real: tuple[torch.Tensor, torch.Tensor] | None = None, progress: Progress | None = None,
                 cancelled: Callable[[], bool] | None = None) -> tuple[torch.Tensor, dict]:
    """Generator-based activation maximization (seed 000 sections 3.3-3.3.2, appendix A, 4.1.2).

    For each batch a freshly initialized generator maps fixed uniform noise to images; it first makes a
    random number of attraction-repulsion steps (raising or lowering the logits of a random class subset),
    then ascends the target class's log-probability. Each image is kept at the first step where the target
    softmax exceeds T and is the largest (the images that never get there keep their last state).
    Returns the images and statistics (fraction that reached T).
    """
    dev = model_device(teacher)
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    n, bs, nd = config.n, config.images_per_generator, config.noise()
    n_batches = -(-n // bs)
    targets = np.resize(rng.permutation(num_classes), n_batches)
    penult = penultimate_layer(teacher) if config.loss2 else None
    out, reached = [], []
    for b in range(n_batches):
        _check(cancelled)
        size = min(bs, n - b * bs)
        m = max(size, 2)  # batch norm needs two samples
        cls = int(targets[b])
        G = Generator(input_shape, nd).to(dev)
        opt = torch.optim.Adam(G.parameters(), lr=config.learning_rate())
        z = torch.rand(m, nd, device=dev) * 2 - 1
        T = config.threshold if config.threshold_max is None else float(rng.uniform(config.threshold, config.threshold_max))
        subset = torch.as_tensor(rng.choice(num_classes, size=int(rng.integers(1, num_classes)), replace=False))
        sign = float(rng.choice([-1.0, 1.0]))
        for _ in range(int(rng.integers(0, config.pre_steps + 1))):
            loss = -sign * teacher(G(z))[:, subset.to(dev)].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if penult:
            opt2 = torch.optim.Adam(G.parameters(), lr=config.learning_rate() * config.loss2_lr_ratio)
            rx = real[0][real[1] == cls]
            rx = rx[torch.randperm(len(rx))[:256]].to(dev)
            with capture(teacher, [penult]) as feats, torch.no_grad():
                teacher(rx)
                real_feats = feats[penult].flatten(1).detach()
        keep = torch.zeros(m, *input_shape, device=dev)
        done = torch.zeros(m, dtype=torch.bool, device=dev)
        target = torch.full((m,), cls, device=dev)
        for _ in range(config.max_steps):
            x = G(z)
            logits = teacher(x)
            ok = (logits.softmax(1)[:, cls] > T) & (logits.argmax(1) == cls) & ~done
            keep[ok] = x[ok].detach()
            done |= ok
            if bool(done[:size].all()):
                break
            loss = F.cross_entropy(logits[~done], target[~done])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if penult:
                with capture(teacher, [penult]) as feats:
                    teacher(G(z))
                    loss2 = -torch.cdist(feats[penult].flatten(1), real_feats).mean()
                opt2.zero_grad(set_to_none=True)
                loss2.backward()
                opt2.step()
        else:
            with torch.no_grad():
                x = G(z)
        keep[~done] = x[~done].detach()
        out.append(keep[:size].cpu())
        reached.append(done[:size].cpu())
        if progress:
            progress((b + 1) / n_batches, f"generator AM: batch {b + 1}/{n_batches} (class {cls}, T={T:.3f})")
    hit = torch.cat(reached)
    return torch.cat(out), {"reached_fraction": float(hit.float().mean()), "generators": n_batches}


def _pixel_am(teacher, config, *, input_shape, num_classes, real=None, progress=None, cancelled=None):
    """Issue 3's pixel-space class visualizations as the dataset (seed 003 sections 5.2-5.3): from
    ``config.start`` (blank by default), several per class with seed 000's attraction-repulsion first."""
    from vizcore.explain.visualize import bf16_is_fast, class_visualizations

    per_class = config.per_class or max(1, config.n // num_classes)
    many = per_class > 1
    vc = config.visualize or VisualizeConfig(
        start=config.start, steps=config.max_steps, lr=config.learning_rate(), threshold=config.threshold,
        threshold_range=(config.threshold, config.threshold_max) if config.threshold_max else None,
        attract_repel=many, pre_steps=max(1, config.pre_steps), seed=config.seed,
        precision="bfloat16" if bf16_is_fast(model_device(teacher)) else "float32")
    vis = class_visualizations(teacher, list(range(num_classes)), per_class, vc, input_shape=tuple(input_shape),
                               progress=progress, cancelled=cancelled)
    return vis.images, {"reached_fraction": float(vis.reached.float().mean()), "visualize_config": vc.to_dict()}


def _mixed_am(teacher, config, *, input_shape, num_classes, real=None, progress=None, cancelled=None):
    """Half the set by generator AM (seed 000 3.3), half by pixel AM from a blank image (seed 003 5.2).

    The generator's pictures are textured and fill the frame, the pixel-space ones keep a dark background;
    together they teach a student more than the same number of either kind (``bench/students.py``). The
    config's AM options drive the generator half; the pixel half uses ``PIXEL_HALF`` (or ``visualize``).
    """
    half = config.n // 2
    a, sa = generator_am(teacher, replace(config, n=half), input_shape=input_shape, num_classes=num_classes,
                         real=real, progress=progress_span(progress, 0.0, 0.9), cancelled=cancelled)
    pixel = replace(config, n=config.n - half, **({} if config.visualize else PIXEL_HALF))
    b, sb = _pixel_am(teacher, pixel, input_shape=input_shape, num_classes=num_classes,
                      progress=progress_span(progress, 0.9, 1.0), cancelled=cancelled)
    reached = (sa["reached_fraction"] * len(a) + sb["reached_fraction"] * len(b)) / config.n
    return torch.cat([a, b]), {"reached_fraction": reached, "generator_am": sa, "pixel_am": sb}


def _weight_images(teacher, config, *, input_shape, num_classes, real=None, progress=None, cancelled=None):
    """Seed 003 section 9: output-neuron weight rows (effective weights for deeper models) shown as images,
    min-max scaled together to [0, 1], used as training data."""
    from vizcore.explain.visualize import weight_images

    w = weight_images(teacher, torch.zeros(1, *input_shape)).images
    return (w - w.min()) / (w.max() - w.min()).clamp(min=1e-12), {}


def _class_averages(teacher, config, *, input_shape, num_classes, real=None, progress=None, cancelled=None):
    """Seed 003 section 7: the mean real training image of each class (not data-free)."""
    from vizcore.explain.visualize import class_averages

    return class_averages(real[0], real[1], num_classes), {}


def _uniform_noise(teacher, config, *, input_shape, num_classes, real=None, progress=None, cancelled=None):
    """The naive baseline of seed 004 (T+Uniform): uniform random images, labelled by the teacher."""
    return torch.rand(config.n, *input_shape, generator=torch.Generator().manual_seed(config.seed)), {}


def _kegnet(teacher, config, **kw):
    from vizcore.distill.kegnet import kegnet_images

    return kegnet_images(teacher, config, **kw)


def _online(teacher, config, **kw):
    from vizcore.distill.online import online_images

    return online_images(teacher, config, **kw)


_MAKERS = {"mixed-am": _mixed_am, "generator-am": generator_am, "kegnet": _kegnet, "kegnet-online": _kegnet,
           "dfad": _online, "online": _online, "pixel-am": _pixel_am, "weight-images": _weight_images, "class-averages": _class_averages,
           "uniform-noise": _uniform_noise}


def synthesize(teacher: nn.Module, config: SynthesisConfig, *, input_shape, class_names: list[str],
               dataset: str = "", teacher_id: str = "", real: tuple[torch.Tensor, torch.Tensor] | None = None,
               progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> SyntheticSet:
    """Make a synthetic set with ``config.method`` and label it with the teacher.

    ``real`` (training images and labels) is only accepted by the methods that need it (class averages,
    Loss_2); the teacher is copied, so the caller's model is never modified.
    """
    if config.needs_real_data and real is None:
        raise ValueError(f"{METHOD_LABELS[config.method]} needs the real training data"
                         + (" (Loss_2 compares with real images); switch Loss_2 off for a data-free set" if config.loss2 else ""))
    twin = frozen_copy(teacher)
    kw = dict(input_shape=tuple(input_shape), num_classes=len(class_names), real=real if config.needs_real_data else None,
              progress=progress, cancelled=cancelled)
    if config.uses_kegnet:
        kw["dataset"] = dataset
    images, stats = _MAKERS[config.method](twin, config, **kw)
    images = images.float() if config.unbounded or len(input_shape) == 1 else images.float().clamp(0, 1)
    labels, logits, probs = label_with_teacher(twin, images)
    stats = {**stats, "class_counts": torch.bincount(labels, minlength=len(class_names)).tolist()}
    return SyntheticSet(images=images, labels=labels, logits=logits, probs=probs,
                        class_names=list(class_names), config={**asdict(config), "dataset": dataset},
                        teacher_id=teacher_id, stats=stats)
