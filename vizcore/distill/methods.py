"""Methods as image sources for the one engine, the shared default, and the time estimate shown before a run.

A fixed-set method (generator AM, pixel AM, mixed AM, KegNet, ...) makes its images first
(:func:`vizcore.synthesis.synthesize`); an online method makes them while the student trains. Either way the
student is trained by :func:`vizcore.distill.engine.distill` with the same loss, budget and selection, so a
methods table compares image sources only.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch
from torch import nn

from vizcore.core.hooks import trainable_copy
from vizcore.distill.engine import EngineConfig, distill
from vizcore.distill.synthesis import PIXEL_HALF
from vizcore.models import build_model

# DFAD (Fang et al. 2019, section 3 and DFAD_mnist.py): generator against student, L1 between logits, five
# student steps per generator step, no prior on the generator, no augmentation, the student on fresh images only.
DFAD = dict(generator=True, generator_blank=False, loss="l1", adversarial=1.0, one_hot=0.0, balance=0.0, mix="none",
            shift=0, replay=0.0, brightness=False)
# vizcore's online method (also the default's engine): DFAD's adversary with DAFL's priors (Chen et al. 2019,
# section 3.2: one-hot and information-entropy terms; without them a digits student fell from 93 % to 80 % of its
# teacher), a generator that starts from a blank canvas (Fashion-MNIST: 52 % -> 71 %), one generator step per six
# student steps (DFAD's five: 93 % -> 97 % on digits; with the student's dropout off, Fashion-MNIST 91.6 % at two ->
# 94.9 % at three, in less time; six instead of three: digits 99.8 % -> 100 % in 63 s instead of 95 s, and a
# cheaper step, so the Fashion-MNIST budget below fits 6,000 steps; the online method alone was not re-measured at
# six), half of every batch replayed from a memory bank of its past images (Fast-DFKD; +3 points on digits), the
# teacher's logits at T = 2 (KL; L1 at T = 4: -1.5 points; two seeds each, one thread, 2026-12-04: Fashion-MNIST
# cnn -> cnn 97.0 / 90.5 % of the teacher at T = 4, 94.7 / 92.7 % at T = 2, the same mean with a third of the spread;
# cnn -> cnn_s 91.4 / 87.7 % -> 93.4 / 91.8 %; digits 99.8 % in 47 s; T = 3: 93.5 % and 91.5 %, seed 0; the online
# method alone was measured at T = 4), Adam at 3e-3, the student's dropout off (EngineConfig.student_dropout), and
# attention transfer at ZSKT's weight (Micaelli & Storkey 2019: beta = 250 against a KL averaged over 10 classes,
# i.e. 2,500 against our batch-mean KL; Fashion-MNIST cnn -> cnn_s 93.4 / 91.8 / 90.0 % -> 95.5 / 94.3 / 95.6 % of
# the teacher, seeds 0 / 1 / 2; 250: 89.8 %, seed 1). Measured in bench/logs/engine_log.jsonl; nothing here reads
# the dataset, so it holds for any image classifier (and attention transfer is off where either model lacks conv maps).
ONLINE = dict(generator=True, generator_blank=True, adversarial=1.0, one_hot=1.0, balance=5.0,
              student_per_generator=6, lr=3e-3, replay=0.5, mix="none", temperature=2.0, attention=2500.0)
# the methods whose generator trains against the student inside the engine, and their engine settings; kegnet-online
# first makes a fixed set with KegNet's generators (seed 004) and replays it beside the online generator's images
# and bank: Fashion-MNIST cnn -> cnn 76.0 % (online) and 78.7 % (KegNet alone) -> 87.5 % of the teacher; digits
# 98.2 % -> 98.4 % (bench/logs/engine_log.jsonl)
IN_THE_LOOP = {"online": ONLINE, "dfad": DFAD, "kegnet-online": ONLINE}

# The default of the Student lab and of `distill`, chosen by measurement (bench/students.py --only defaults,
# methods): KegNet's set and the online method, student steps of 128 images (default_steps), a bank of n images.
DEFAULT_METHOD = "kegnet-online"
DEFAULT_N = 10_000
DEFAULT_ENGINE = EngineConfig()
# A method's settings where the user gives none: the ones measured best (bench/students.py, issue 6)
METHOD_DEFAULTS = {"pixel-am": PIXEL_HALF, "mixed-am": {"max_steps": 60}}
# The budget grows with the picture: 3,000 steps for images of at most 16 x 16 pixels (and for tables), 6,000 above.
# Measured with the default method at 2 threads (bench/logs/students_defaults.json, bench/logs/engine_log.jsonl):
# digits (8 x 8) 100 % of its teacher at 3,000 steps in 63 s (99.1 % at 4,500 steps, one generator step per three);
# Fashion-MNIST (28 x 28) cnn -> cnn 93.2 % at 5,000 steps (378 s whole run), 97.0 % at 6,000 (686 s and 643 s:
# inside the 15 minutes; 4,000 at one generator step per three gave 94.9 % in 736 s); the smaller cnn_s student
# 91.4 % at one thread (86.2 % in a two-thread run; 89.1 % at 5,000 steps).
SMALL_IMAGE_SIDE = 16
LARGE_IMAGE_STEPS = 6000
BUDGET_RULE = (f"{DEFAULT_ENGINE.steps:,} for images of up to {SMALL_IMAGE_SIDE} x {SMALL_IMAGE_SIDE} pixels and for "
               f"tables, {LARGE_IMAGE_STEPS:,} for larger images")


def default_steps(input_shape) -> int:
    """The default engine budget for a teacher whose input is ``input_shape`` ((C, H, W) images or (F,) rows)."""
    big = len(input_shape) == 3 and input_shape[-2] * input_shape[-1] > SMALL_IMAGE_SIDE ** 2
    return LARGE_IMAGE_STEPS if big else DEFAULT_ENGINE.steps


def default_engine(input_shape) -> EngineConfig:
    """:data:`DEFAULT_ENGINE` with the budget of :func:`default_steps` (the page and the CLI start from this)."""
    return replace(DEFAULT_ENGINE, steps=default_steps(input_shape))


def engine_for(method: str, engine: EngineConfig, n: int) -> EngineConfig:
    """The engine settings a method runs with: a generator-in-the-loop method's own settings where ``engine`` keeps
    :data:`DEFAULT_ENGINE`'s (a setting the user changed, such as ``distill --mix cutmix``, stays), its bank ``n``
    images."""
    if method in IN_THE_LOOP:
        own = {k: v for k, v in IN_THE_LOOP[method].items() if getattr(engine, k) == getattr(DEFAULT_ENGINE, k)}
        return replace(engine, **own, bank=n)
    return engine


def is_online(method: str) -> bool:
    """Whether the method makes its images only inside the engine (no synthesis stage, its set is the bank)."""
    return method in ("online", "dfad")


def needs_engine(method: str) -> bool:
    """Whether the method trains a generator against the student (it cannot run without the engine)."""
    return method in IN_THE_LOOP


def step_seconds(teacher: nn.Module, arch: str | nn.Module, engine: EngineConfig, *, input_shape, num_classes: int,
                 steps: int = 3) -> float:
    """Seconds per engine step on this machine, measured on ``steps`` steps of a throwaway student (of
    architecture ``arch``, or a copy of the module ``arch``)."""
    probe = replace(engine, steps=steps + 1, checkpoints=1, bank=min(engine.bank, 4 * engine.batch_size))
    images = None if probe.generator else torch.rand(2 * engine.batch_size, *input_shape)
    student = (trainable_copy(arch) if isinstance(arch, nn.Module) else
               build_model(arch, tuple(input_shape), num_classes, seed=0))
    start = time.perf_counter()
    distill(teacher, student, probe, input_shape=input_shape, num_classes=num_classes, images=images)
    return (time.perf_counter() - start) / (steps + 1)


def synthesis_seconds(teacher: nn.Module, syn, *, input_shape, class_names: list[str], dataset: str = "") -> float:
    """Seconds the synthesis ``syn`` (a :class:`~vizcore.distill.synthesis.SynthesisConfig`) will take here, timed
    on one generator's twentieth of its steps (at most 200) or a few images, after a one-step warm-up, and scaled
    to the whole set."""
    from vizcore.distill.synthesis import synthesize

    probe_n = min(syn.n, max(2 * syn.images_per_generator, 2 * len(class_names)))
    probe_steps = max(1, min(200, syn.train_steps // 20))
    probe = replace(syn, n=probe_n, train_steps=probe_steps, per_class=None, generators=1)
    # a first synthesis in a process pays one-time costs (imports, allocator, kernels: 7 s of a 17 s KegNet probe)
    synthesize(teacher, replace(probe, train_steps=1), input_shape=input_shape, class_names=class_names, dataset=dataset)
    start = time.perf_counter()
    synthesize(teacher, probe, input_shape=input_shape, class_names=class_names, dataset=dataset)
    took = time.perf_counter() - start
    return took * (syn.generators * syn.train_steps / probe_steps if syn.uses_kegnet else syn.n / probe_n)


def estimate_seconds(config, teacher: nn.Module | None = None) -> float:
    """Seconds a :class:`~vizcore.distill.protocol.DistillConfig` will take here: its synthesis and every student, timed
    on a small probe of each (a few seconds) and scaled to the run's size."""
    from vizcore import zoo
    from vizcore.core.hooks import frozen_copy
    from vizcore.distill.students import SKLEARN_STUDENTS

    entry = zoo.get_entry(config.teacher)
    shape, names = tuple(entry.card.input_shape), list(entry.card.class_names)
    twin = frozen_copy(teacher if teacher is not None else zoo.load_model(entry))
    syn, total = config.synthesis, 0.0
    if not is_online(syn.method):
        total += synthesis_seconds(twin, syn, input_shape=shape, class_names=names, dataset=config.dataset)
    engine = engine_for(syn.method, config.engine, syn.n) if config.engine else None
    for sc in config.students:
        if sc.arch in SKLEARN_STUDENTS:
            total += 1e-3 * syn.n
            continue
        per_step = step_seconds(twin, sc.arch, engine or replace(DEFAULT_ENGINE, mix="none", shift=0),
                                input_shape=shape, num_classes=len(names))
        steps = engine.steps if engine else sc.epochs_for(syn.n) * -(-syn.n // sc.batch_size)
        total += per_step * steps
        if config.baseline:  # the real-data baseline: the same student on n real images, hard labels
            total += 0.5 * per_step * sc.epochs_for(syn.n) * -(-syn.n // sc.batch_size)
    return total
