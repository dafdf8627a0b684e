"""One distillation engine: a student learns the teacher's logits on images that some source makes.

Methods differ only in where the images come from:

* a fixed synthetic set (seed 000 generator AM, seed 003 pixel AM, mixed AM, KegNet), sampled in batches;
* a generator trained online against the current student (DFAD, Fang et al. 2019, section 3: the generator
  maximizes the student-teacher discrepancy while the student minimizes it; DAFL, Chen et al. 2019, section
  3.2: a one-hot term and an information-entropy term keep its batches confident and class-balanced);
* a memory bank of past generated images replayed beside the fresh ones (Fast-DFKD, Fang et al. 2022;
  CMI, Fang et al. 2021, keep such a bank so the student does not forget earlier batches).

Every batch can be augmented (a random shift of a few pixels, and mixup / cutmix of two images) and is
then labelled afresh by the teacher: the targets are always the teacher's logits on exactly the pixels the
student sees (ZSKT, Micaelli & Storkey 2019, and DFAD train on the teacher's outputs at every step). The
loss is the KL divergence at a temperature (Hinton et al. 2015) or DFAD's L1 between logits.

Nothing here reads real data: the hold-out that selects the student and draws its live curve is synthetic.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vizcore.core import distributed as dist
from vizcore.core.hooks import capture, fast_layout, guarded
from vizcore.core.layers import conv_layers, dense_layers, feature_layer, model_device
from vizcore.core.progress import Cancelled, Progress
from vizcore.distill.generators import Generator, TableGenerator
from vizcore.metrics import predict_logits
from vizcore.models import Tucker2Conv, layer_table

LOSSES = ("kl", "l1")
MIXES = ("none", "mixup", "cutmix", "both")
CHECKPOINT_SCORES = ("agreement", "mixed")  # EngineConfig.select


@dataclass(frozen=True)
class EngineConfig:
    """How the student is trained (the budget is ``steps`` student updates of ``batch_size`` images).

    ``generator``: also train a generator online (DFAD / DAFL); ``student_per_generator`` student steps follow
    each generator step (DFAD uses 5); ``generator_blank``: the generator starts from near-black images
    (:class:`~vizcore.distill.generators.Generator`'s ``blank``; DFAD's own generator does not).
    ``adversarial`` / ``one_hot`` / ``balance`` weight the generator's losses: student-teacher discrepancy
    (DFAD), cross-entropy to the teacher's own argmax and the negative entropy of the batch's mean prediction
    (DAFL's L_oh and L_ie). ``bank``: the memory bank keeps this many
    generated images (0: none); ``replay`` is the share of each batch drawn from the bank or fixed set.
    ``shift``: random translation in pixels (None: one pixel per 14 of the image's height, 2 for 28 x 28,
    none for 8 x 8 digits); ``brightness``: scale each image by a random factor up to
    1 / its brightest pixel (activation maximization's pictures are dimmer than real ones); ``mix``: mixup / cutmix between images of a batch (``mix_share``
    of the batch), always relabelled by the teacher. ``checkpoints``: how often the hold-out agreement is
    measured (the best checkpoint is kept). ``student_dropout``: keep the student's dropout layers active while it
    learns; off by default, since the teacher's soft targets already regularize it and a short budget cannot
    afford dropout's noise (Fashion-MNIST cnn -> cnn: 92.0 % -> 94.9 % of the teacher). ``ema``: the decay of an
    exponential moving average of the student's weights (Polyak averaging, as in mean-teacher and SWA); the
    checkpoints judge and keep the average rather than the student of the moment (0: off). ``attention``: the
    weight of attention transfer (Zagoruyko & Komodakis 2017, as ZSKT trains its students, section 3.1): the student's
    spatial attention maps (the squares of a conv layer's activations summed over channels, L2-normalized) match the
    teacher's at every resolution both have (0: off; nothing to match where either has no conv layers).
    ``features``: the weight of feature matching (FitNets' hints, Romero et al. 2015) for a student that keeps the
    teacher's layers, as a compressed model does: the output of every hidden layer matches the teacher's
    (:func:`feature_pairs`; 0: off). ``select``: how the hold-out ranks the checkpoints: ``agreement`` (the share
    of it labelled as the teacher does) or ``mixed`` (the KL divergence from the teacher's softmax on the hold-out's
    images mixed in pairs, :func:`mixed_pairs`; for a hold-out of images the teacher is sure of, whose agreement
    saturates).
    """

    steps: int = 3000
    batch_size: int = 128
    lr: float = 1e-3
    loss: str = "kl"
    temperature: float = 4.0
    generator: bool = False
    student_per_generator: int = 5
    generator_lr: float = 1e-3
    generator_width: int = 64
    generator_blank: bool = True
    noise_dim: int = 64
    adversarial: float = 1.0
    one_hot: float = 1.0
    balance: float = 5.0
    bank: int = 0
    replay: float = 0.5
    shift: int | None = None
    brightness: bool = True
    mix: str = "none"
    mix_share: float = 0.5
    checkpoints: int = 10
    student_dropout: bool = False
    ema: float = 0.0
    attention: float = 0.0
    features: float = 0.0
    select: str = "agreement"
    seed: int = 0

    def __post_init__(self):
        if self.loss not in LOSSES:
            raise ValueError(f"the loss is one of {', '.join(LOSSES)}, not '{self.loss}'")
        if self.mix not in MIXES:
            raise ValueError(f"mix is one of {', '.join(MIXES)}, not '{self.mix}'")
        if self.select not in CHECKPOINT_SCORES:
            raise ValueError(f"select is one of {', '.join(CHECKPOINT_SCORES)}, not '{self.select}'")
        if self.steps < 1 or self.batch_size < 2 or not 0 <= self.replay <= 1 or not 0 <= self.mix_share <= 1:
            raise ValueError("the engine needs steps >= 1, batches of at least 2 and shares in [0, 1]")
        if self.attention < 0 or self.features < 0:
            raise ValueError("the attention-transfer and feature-matching weights are at least 0")
        if not 0 <= self.ema < 1:
            raise ValueError(f"the average's decay is in [0, 1), not {self.ema}")

    def to_dict(self) -> dict:
        return asdict(self)


class MemoryBank:
    """A ring buffer of past images (Fast-DFKD / CMI): keeps at most ``size`` images and replays random ones."""

    def __init__(self, size: int, seed: int = 0):
        self.size, self.images, self.next = size, None, 0
        self.gen = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return 0 if self.images is None else min(self.next, self.size)

    def add(self, x: torch.Tensor) -> None:
        x = x.detach().cpu()[:self.size]
        if self.images is None:
            self.images = torch.empty(self.size, *x.shape[1:], dtype=x.dtype)
        idx = (self.next + torch.arange(len(x))) % self.size
        self.images[idx] = x
        self.next += len(x)

    def sample(self, n: int) -> torch.Tensor:
        return self.images[torch.randint(len(self), (n,), generator=self.gen)]


def discrepancy(s_logits: torch.Tensor, t_logits: torch.Tensor, loss: str, temperature: float) -> torch.Tensor:
    """The distillation loss: KL(teacher || student) at ``temperature`` (scaled by T^2) or DFAD's mean L1."""
    if loss == "l1":
        return (s_logits - t_logits).abs().mean()
    T = temperature
    return F.kl_div(F.log_softmax(s_logits / T, 1), F.log_softmax(t_logits / T, 1), log_target=True,
                    reduction="batchmean") * T * T


def attention_pairs(teacher: nn.Module, student: nn.Module, input_shape) -> list[tuple[str, str]]:
    """(teacher layer, student layer) whose attention maps are matched: at every spatial size that both models'
    conv feature maps take, the last such map in each (a conv layer's activation, or the conv layer itself). The
    sizes come from :func:`~vizcore.models.layer_table`'s probe, run in eval mode (a student's BatchNorm statistics
    are not touched by it)."""
    if len(input_shape) != 3:
        return []

    def last_per_size(model):
        # a factorized conv (Tucker2Conv, a compressed model's layer) is one layer: its activation follows it
        names = [feature_layer(model, _factorized(model, n)) for n in conv_layers(model)]
        if not names:
            return {}
        with guarded(model):
            shapes = {row["name"]: row["output_shape"] for row in layer_table(model, tuple(input_shape))}
        return {tuple(shapes[n][-2:]): n for n in names if len(shapes[n]) == 3}

    t, s = last_per_size(teacher), last_per_size(student)
    return [(t[size], s[size]) for size in t if size in s]


def _factorized(model: nn.Module, name: str) -> str:
    """``name``'s top-level layer when that is a factorized conv (``conv2.last`` -> ``conv2``), else ``name``."""
    top = name.split(".")[0]
    return top if top != name and isinstance(getattr(model, top, None), Tucker2Conv) else name


def feature_pairs(teacher: nn.Module, student: nn.Module, input_shape) -> list[str]:
    """The layers whose outputs feature matching compares: each hidden conv and dense layer of the teacher (its
    activation where one follows it) that the student has under the same name with the same output shape. A
    compressed model (:func:`vizcore.distill.compression.compress_model`) keeps every name, its factorized layers
    standing for the ones they replace; a student of another architecture has few or none."""
    names = [feature_layer(teacher, n) for n in conv_layers(teacher) + dense_layers(teacher)[:-1]]

    def shapes(model):
        with guarded(model):
            return {row["name"]: row["output_shape"] for row in layer_table(model, tuple(input_shape))}

    t, s = shapes(teacher), shapes(student)
    return [n for n in dict.fromkeys(names) if n in s and s[n] == t.get(n)]


def feature_loss(t_maps: list[torch.Tensor], s_maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over the matched layers of the mean squared difference of the outputs, each over the teacher output's
    mean square (so that every layer weighs the same, whatever its scale)."""
    return sum(F.mse_loss(s.float(), t.float()) / t.float().pow(2).mean().clamp_min(1e-8) for t, s in zip(t_maps, s_maps))


@contextmanager
def feature_matching(teacher: nn.Module, student: nn.Module, input_shape, weight: float):
    """A loss term for a training loop that runs the student itself (:func:`vizcore.train.fit`'s ``extra_loss``):
    called with a batch after the student's forward pass on it, ``weight`` x :func:`feature_loss` between the
    teacher's outputs on the batch and the student's at :func:`feature_pairs`. Yields None when ``weight`` is 0 or
    no layer pairs."""
    names = feature_pairs(teacher, student, input_shape) if weight else []
    if not names:
        yield None
        return
    with capture(teacher, names) as t, capture(student, names) as s:
        def loss(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                teacher(x)
            return weight * feature_loss([t[n] for n in names], [s[n] for n in names])

        yield loss


def attention_map(a: torch.Tensor) -> torch.Tensor:
    """A feature map's spatial attention: the sum of squares over channels, flattened and L2-normalized (the same as
    ZSKT's mean square once normalized; ``a * a`` takes half the time of ``a.pow(2)`` forward and back on CPU)."""
    a = a.float()
    return F.normalize((a * a).sum(1).flatten(1), dim=1)


def attention_loss(t_maps: list[torch.Tensor], s_maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over the matched layers of the mean squared difference of the two attention maps (ZSKT's form)."""
    return sum((attention_map(s) - attention_map(t)).pow(2).mean() for t, s in zip(t_maps, s_maps))


def shift_images(x: torch.Tensor, pixels: int, gen: torch.Generator) -> torch.Tensor:
    """Translate every image by up to ``pixels`` in each direction (zero padding), a label-safe augmentation."""
    if pixels <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (pixels,) * 4)
    dy, dx = (torch.randint(2 * pixels + 1, (n,), generator=gen) for _ in range(2))
    rows = (dy.view(n, 1) + torch.arange(h)).view(n, 1, h, 1).expand(n, x.shape[1], h, w + 2 * pixels)
    out = padded.gather(2, rows.to(x.device))
    cols = (dx.view(n, 1) + torch.arange(w)).view(n, 1, 1, w).expand(n, x.shape[1], h, w)
    return out.gather(3, cols.to(x.device))


def brighten(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Scale each image by a random factor between 1 and 1 / its brightest pixel (images stay in [0, 1])."""
    shape = (len(x),) + (1,) * (x.dim() - 1)
    peak = x.flatten(1).amax(1).clamp(min=1e-3).view(shape)
    factor = 1 + torch.rand(shape, generator=gen).to(x.device) * (1 / peak - 1).clamp(min=0)
    return (x * factor).clamp(0, 1)


def mix_images(x: torch.Tensor, mode: str, share: float, gen: torch.Generator) -> torch.Tensor:
    """Replace ``share`` of the batch with mixup (a convex blend) or cutmix (a pasted box) of two of its images.

    The labels are not mixed: the teacher labels the result (its logits are the target of every image).
    """
    k = int(round(len(x) * share)) if mode != "none" else 0
    if k == 0:
        return x
    a, b = torch.randint(len(x), (2, k), generator=gen)
    lam = torch.rand(k, *(1,) * (x.dim() - 1), generator=gen).to(x.device)
    mixed = []
    if mode in ("mixup", "both"):
        mixed.append(lam * x[a] + (1 - lam) * x[b])
    if mode in ("cutmix", "both"):
        _, _, h, w = x.shape
        ch = (torch.sqrt(lam.view(k)) * h).long().clamp(1, h)
        cw = (torch.sqrt(lam.view(k)) * w).long().clamp(1, w)
        y0 = (torch.rand(k, generator=gen) * (h - ch + 1)).long()
        x0 = (torch.rand(k, generator=gen) * (w - cw + 1)).long()
        ys, xs = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        box = ((ys >= y0.view(k, 1, 1)) & (ys < (y0 + ch).view(k, 1, 1)) &
               (xs >= x0.view(k, 1, 1)) & (xs < (x0 + cw).view(k, 1, 1))).unsqueeze(1).to(x.device)
        mixed.append(torch.where(box, x[b], x[a]))
    mixed = torch.cat(mixed)
    mixed = mixed[torch.randperm(len(mixed), generator=gen)[:k]]
    return torch.cat([x[:len(x) - k], mixed])


def generator_step(G: nn.Module, opt: torch.optim.Optimizer, teacher: nn.Module, student: nn.Module,
                   config: EngineConfig, batch_size: int | None = None) -> torch.Tensor:
    """One generator update: raise the student-teacher discrepancy on its images (DFAD eq. 3), keep the teacher
    confident on them (DAFL's one-hot loss) and its batch predictions balanced over classes (DAFL's
    information entropy). Only the generator's weights change; returns the batch it made (detached).
    ``batch_size``: this rank's share of ``config.batch_size`` when ``G`` is data-parallel."""
    dev = next(G.parameters()).device
    x = fast_layout(G(torch.randn(batch_size or config.batch_size, config.noise_dim, device=dev)))
    t = teacher(x)
    student.requires_grad_(False)  # gradients flow through the student to the images, not into its weights
    try:
        s = student(x)
    finally:
        student.requires_grad_(True)
    loss = -config.adversarial * discrepancy(s, t, config.loss, config.temperature)
    if config.one_hot:
        loss = loss + config.one_hot * F.cross_entropy(t, t.argmax(1))
    if config.balance:
        mean = t.softmax(1).mean(0)
        loss = loss + config.balance * (mean * mean.clamp_min(1e-8).log()).sum()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return x.detach()


def _save(path: Path, step: int, student, opt_s, sched, G, opt_g, sched_g, bank, history, best, stats,
          stages, average) -> None:
    """The training state at ``step``, written atomically (a killed process leaves the previous one)."""
    from vizcore.core.workspace import atomic_write

    buf = io.BytesIO()
    torch.save({"step": step, "student": student.state_dict(), "opt": opt_s.state_dict(), "sched": sched.state_dict(),
                "generator": G.state_dict() if G is not None else None,
                "opt_g": (opt_g.state_dict(), sched_g.state_dict()) if opt_g is not None else None,
                "bank": (bank.images, bank.next) if bank is not None else None,
                "history": history, "best": best, "stats": stats, "stages": stages,
                "average": average.state_dict() if average is not None else None}, buf)
    atomic_write(path, buf.getvalue())


def _restore(state: dict, student, opt_s, sched, G, opt_g, sched_g, bank, average) -> int:
    """Load a state saved by :func:`_save` into the run's objects; returns its step."""
    student.load_state_dict(state["student"])
    opt_s.load_state_dict(state["opt"])
    sched.load_state_dict(state["sched"])
    if G is not None and state["generator"] is not None:
        G.load_state_dict(state["generator"])
        opt_g.load_state_dict(state["opt_g"][0])
        sched_g.load_state_dict(state["opt_g"][1])
    if bank is not None and state["bank"] is not None:
        bank.images, bank.next = state["bank"]
    if average is not None and state.get("average") is not None:
        average.load_state_dict(state["average"])
    return int(state["step"])


@dataclass
class EngineResult:
    """The trained student, its hold-out curve (step, agreement) and what the sources did."""

    model: nn.Module
    history: list[tuple[int, float]]
    selection: dict
    stats: dict
    seconds: float
    generator: nn.Module | None = None
    bank: torch.Tensor | None = None


def _best_stage(student: nn.Module, teacher: nn.Module, stages: dict) -> tuple[float, dict, int]:
    """(agreement, weights, step) of the checkpoint that agrees most with the teacher on the generator's images of
    every checkpoint: an adversarial generator wins against the student near the end of a run (agreement on
    its last batch falls to a few per cent while real accuracy still rises), so that batch alone cannot rank
    the students."""
    x = torch.cat(stages["images"])
    labels = predict_logits(teacher, x).argmax(1)
    best = (-1.0, None, 0)
    for step, weights in stages["students"]:
        student.load_state_dict(weights)
        score = agreement(student, x, labels)
        if score >= best[0]:
            best = (score, weights, step)
    return best


def _training(student: nn.Module, config: EngineConfig) -> None:
    """Put the student in training mode, with its dropout layers off unless ``config.student_dropout``."""
    student.train()
    if not config.student_dropout:
        for m in student.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()


def agreement(model: nn.Module, x: torch.Tensor, teacher_labels: torch.Tensor) -> float:
    """Share of ``x`` on which ``model``'s argmax equals the teacher's."""
    return float((predict_logits(model, x).argmax(1) == teacher_labels).float().mean())


def mixed_pairs(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Each of ``x`` blended with another of ``x`` at a uniform random weight (mixup's pairs, Zhang et al. 2018; seeded):
    inputs between the synthetic ones, near the teacher's boundaries, where a student can drift from it while still
    labelling every synthetic input as it does."""
    g = torch.Generator().manual_seed(seed)
    other = torch.randperm(len(x), generator=g)
    weight = torch.rand(len(x), generator=g).view(-1, *[1] * (x.dim() - 1))
    return weight * x + (1 - weight) * x[other]


def divergence(model: nn.Module, x: torch.Tensor, teacher_logits: torch.Tensor) -> float:
    """:func:`discrepancy`'s KL(teacher || ``model``) at temperature 1 on ``x``, averaged over the inputs
    (``teacher_logits``: the teacher's on ``x``)."""
    return float(discrepancy(predict_logits(model, x), teacher_logits, "kl", 1.0))


def distill(teacher: nn.Module, student: nn.Module, config: EngineConfig, *, input_shape, num_classes: int,
            images: torch.Tensor | None = None, holdout: torch.Tensor | None = None,
            progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
            on_checkpoint: Callable[[int, float], None] | None = None, save_to: Path | None = None,
            resume_from: Path | None = None, parallel: bool = False) -> EngineResult:
    """Train ``student`` in place to match ``teacher`` (a frozen copy, never modified) for ``config.steps`` steps.

    ``images``: a fixed synthetic set to sample from (with ``config.generator`` it is replayed beside the
    generator's images, as a warm memory bank). ``holdout``: synthetic images never trained on, on which
    the agreement with the teacher is measured at every checkpoint; the best checkpoint is kept. Without
    one, the agreement is measured on a fresh generator batch each time (never trained on; the checkpoint that
    agrees most on all of these batches together is kept), or on the fixed set itself when there is no
    generator (not comparable across checkpoints, so the last checkpoint is kept).
    ``on_checkpoint(step, agreement)`` is called at every checkpoint (the live curve).

    ``parallel`` (every rank of a torchrun job calls it): the student is wrapped in DistributedDataParallel;
    each rank draws ``batch_size / world`` images per step from its own ``DistributedSampler`` share of the
    fixed set (and from the one data-parallel generator, with noise seeded per rank), and the gradients are
    all-reduced, so a step still
    learns from ``batch_size`` images. Rank 0 saves the training state to ``save_to`` at every checkpoint
    (atomically); ``resume_from`` (such a file, read by rank 0) continues from its step.
    """
    if images is None and not config.generator:
        raise ValueError("the engine needs a fixed synthetic set, a generator, or both")
    start = time.perf_counter()
    world = dist.world_size() if parallel else 1
    main = world == 1 or dist.is_main()
    own_seed = dist.rank_seed(config.seed) if world > 1 else config.seed
    torch.manual_seed(own_seed)
    gen = torch.Generator().manual_seed(own_seed)
    dev = model_device(teacher)
    for p in teacher.parameters():
        p.requires_grad_(False)
    teacher.eval()
    # images: the student, the generator and every batch are channels-last (oneDNN's fast layout: max-pooling over 60
    # Fashion-MNIST steps of the default fell from 2.3 s to 0.6 s, a step about 13 % shorter on 2 CPU threads); the
    # student goes back to the usual layout at the end
    layout = torch.channels_last if len(input_shape) == 3 else torch.contiguous_format
    _training(student.to(dev, memory_format=layout), config)
    net = dist.wrap(student) if world > 1 else student
    opt_s = torch.optim.Adam(student.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_s, config.steps)
    average = (AveragedModel(student, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
               if config.ema else None)
    if average is not None:
        average.module.eval()
    judged = average.module if average is not None else student  # what the checkpoints measure and keep
    G = opt_g = sched_g = None
    if config.generator:
        G = (Generator(tuple(input_shape), config.noise_dim, width=config.generator_width, blank=config.generator_blank)
             if len(input_shape) == 3 else TableGenerator(input_shape[0], config.noise_dim, 0)).to(dev, memory_format=layout).train()
        opt_g = torch.optim.Adam(G.parameters(), lr=config.generator_lr, betas=(0.5, 0.999))
        # the generator's rate decays with the student's (DFAD's code decays both): with a constant rate the
        # adversary overwhelms a student whose rate has annealed (a Fashion cnn_s fell from 54 % to 30 %)
        sched_g = torch.optim.lr_scheduler.CosineAnnealingLR(opt_g, -(-config.steps // config.student_per_generator))
    # one generator for all ranks, data-parallel like the student: rank 0's weights to start, each rank its own
    # noise and share of the batch, the gradients all-reduced (a generator per rank made 2 processes slower than 1
    # and their Fashion student 13 points worse)
    G_net = dist.wrap(G) if G is not None and world > 1 else G
    bank = MemoryBank(config.bank, config.seed) if config.bank else None
    pool = images
    if pool is not None and world > 1:  # this rank's DistributedSampler share of the fixed set
        pool = pool[dist.sampler_indices(len(pool), config.seed)]
    if holdout is not None and not len(holdout):
        holdout = None
    hold_x = holdout
    hold_t = predict_logits(teacher, holdout).argmax(1) if holdout is not None else None
    mixed = mixed_pairs(holdout, config.seed) if holdout is not None and config.select == "mixed" else None
    mixed_t = predict_logits(teacher, mixed) if mixed is not None else None
    history: list[tuple[int, float]] = []
    best = (-float("inf"), None, 0)  # (rank: the agreement, or minus the divergence on the mixed pairs; weights; step)
    # online without a hold-out: every checkpoint's fresh batch (never trained on) and the student of that moment;
    # at the end the student that agrees most with the teacher on all of them is kept
    stages: dict = {"images": [], "students": []}
    stats = {"generator_steps": 0, "discrepancy": [], "images_seen": 0}
    every = max(1, config.steps // max(1, config.checkpoints))
    bs = max(2, config.batch_size // world)
    first = 1
    state = None
    if resume_from is not None:  # rank 0's file, sent to every rank
        here = main and Path(resume_from).exists()
        state = torch.load(resume_from, map_location="cpu", weights_only=True) if here else None
        state = dist.broadcast(state) if world > 1 else state
    if state is not None:
        first = _restore(state, student, opt_s, sched, G, opt_g, sched_g, bank, average) + 1
        history, best, stats = state["history"], state["best"], state["stats"]
        stages = state.get("stages") or stages
        stats["resumed_at"] = first - 1
        gen.manual_seed(dist.item_seed(own_seed, first))  # a fresh stream from here on
    shift = config.shift if config.shift is not None else (input_shape[-2] // 14 if len(input_shape) == 3 else 0)
    pairs = attention_pairs(teacher, student, input_shape) if config.attention else []
    matched = feature_pairs(teacher, student, input_shape) if config.features else []
    t_layers = list(dict.fromkeys([t for t, _ in pairs] + matched))
    s_layers = list(dict.fromkeys([s for _, s in pairs] + matched))

    def fresh(n: int) -> torch.Tensor:
        with torch.no_grad():
            return G(torch.randn(n, config.noise_dim, device=dev))

    for step in range(first, config.steps + 1):
        if world == 1:
            stopping = bool(cancelled and cancelled())
        else:  # a collective every 10 steps, so that every rank stops at the same step
            stopping = (step == first or step % 10 == 0) and dist.any_true(bool(cancelled and cancelled()))
        if stopping:
            raise Cancelled()
        if G is not None and (step - 1) % config.student_per_generator == 0:
            x = generator_step(G_net, opt_g, teacher, student, config, batch_size=bs)
            sched_g.step()
            stats["generator_steps"] += 1
            if bank is not None:
                bank.add(x)
        parts = []
        n_replay = bs if G is None else int(round(bs * config.replay)) if (bank and len(bank)) or pool is not None else 0
        if G is not None:
            parts.append(fresh(bs - n_replay))
        if n_replay:
            sources = [src for src in (pool, bank.images[:len(bank)] if bank and len(bank) else None) if src is not None]
            picks = []
            for i, src in enumerate(sources):
                m = n_replay // len(sources) + (1 if i < n_replay % len(sources) else 0)
                picks.append(src[torch.randint(len(src), (m,), generator=gen)].to(dev))
            parts += picks
        x = torch.cat(parts)
        if x.dim() == 4:  # images; feature rows (tables) are only mixed
            x = shift_images(x, shift, gen)
            if config.brightness:
                x = brighten(x, gen)
        x = mix_images(x, config.mix if x.dim() == 4 else config.mix.replace("both", "mixup").replace("cutmix", "none"),
                       config.mix_share, gen)
        x = fast_layout(x)
        with dist.autocast(x.device), capture(teacher, t_layers) as t_maps, capture(student, s_layers) as s_maps:
            with torch.no_grad():
                t = teacher(x)
            loss = discrepancy(net(x).float(), t.float(), config.loss, config.temperature)
            if pairs:
                loss = loss + config.attention * attention_loss([t_maps[t] for t, _ in pairs],
                                                                [s_maps[s] for _, s in pairs])
            if matched:
                loss = loss + config.features * feature_loss([t_maps[n] for n in matched], [s_maps[n] for n in matched])
        opt_s.zero_grad(set_to_none=True)
        loss.backward()
        opt_s.step()
        sched.step()
        if average is not None:
            average.update_parameters(student)
        stats["images_seen"] += len(x)
        if step % every == 0 or step == config.steps:
            if holdout is None and G is not None:  # the generator's fresh images of this moment, never trained on
                hold_x = fresh(bs).cpu()
                hold_t = predict_logits(teacher, hold_x).argmax(1)
            elif hold_x is None:  # a set too small to hold any out: agreement on (some of) its own images
                hold_x = pool[:512].cpu()
                hold_t = predict_logits(teacher, hold_x).argmax(1)
            student.eval()
            score = agreement(judged, hold_x, hold_t)
            rank = score if mixed is None else -divergence(judged, mixed, mixed_t)
            _training(student, config)
            history.append((step, score))
            stats["discrepancy"].append(round(float(loss.detach()), 4))
            if holdout is None and G is not None:  # ranked at the end, on every stage's images (_best_stage)
                stages["images"].append(hold_x)
                stages["students"].append((step, copy.deepcopy(judged.state_dict())))
            elif holdout is None or rank >= best[0]:  # a fixed set without a hold-out: the scores are not comparable
                best = (rank, copy.deepcopy(judged.state_dict()), step)
            if save_to is not None and main:
                _save(save_to, step, student, opt_s, sched, G, opt_g, sched_g, bank, history, best, stats, stages,
                      average)
            if on_checkpoint:
                on_checkpoint(step, score)
        if progress and (step % 10 == 0 or step == config.steps):
            progress(step / config.steps, f"step {step}/{config.steps}, loss {float(loss.detach()):.4f}"
                     + (f", hold-out agreement {history[-1][1]:.3f}" if history else ""))
    if stages["students"]:
        best = _best_stage(student, teacher, stages)
    student.load_state_dict(best[1])
    student.to(memory_format=torch.contiguous_format).eval()
    if bank is not None:
        stats["bank"] = len(bank)
    return EngineResult(model=student, history=history, generator=G, bank=bank.images[:len(bank)] if bank else None,
                        selection={"score": best[0] if mixed is None else dict(history)[best[2]], "step": best[2],
                                   **({"divergence": -best[0]} if mixed is not None else {}),
                                   "history": [h[1] for h in history],
                                   "holdout": sum(map(len, stages["images"])) or len(hold_x)},
                        stats=stats, seconds=time.perf_counter() - start)
