"""Class and filter visualizations by activation maximization in pixel space, output-weight images and
class averages (seed 003 sections 5.2, 7 and 9; seed 000 section 3.3).

Every sample of every class is optimized in ONE batch; each sample stops on its own as soon as its target
class's softmax exceeds its threshold T and is the largest (seed 000 eq. 2). Samples that hit the step cap
without reaching T are returned and flagged, never dropped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizcore.core.config import Config
from vizcore.core.hooks import capture, fast_layout, frozen_copy, guarded
from vizcore.core.layers import model_device
from vizcore.core.progress import Progress, check_cancelled, progress_span
from vizcore.core.workspace import atomic_write
from vizcore.explain.objectives import (AscentState, Objective, Param, blur_, channel_mean, class_logit, class_logprob,
                                        fft_param, l2, logit_mix, pixel_param, random_view, total_variation)
from vizcore.metrics import predict_logits

STARTS = ("blank", "grey", "noise", "mean", "average")
OBJECTIVES = ("logit", "logprob")
PIXELS = ("clamp", "sigmoid", "free")
PARAMS = ("pixel", "fft")
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
Stop = Callable[[torch.Tensor, torch.Tensor, int, torch.Tensor], torch.Tensor]
CHUNK = 128  # samples per forward/backward inside one ascent step


@dataclass(frozen=True)
class VisualizeConfig(Config):
    """Options of a class (or filter) visualization run; stored as JSON next to every result.

    ``threshold`` T stops a sample once its target softmax exceeds T and is the argmax (seed 000 eq. 2);
    ``threshold_range`` draws T per sample uniformly from ``(lo, hi)`` instead (seed 000 appendix A); with
    neither, every sample runs ``steps`` steps. ``attract_repel`` runs seed 000's pre-AM movement: for a
    random number of steps (1..``pre_steps``) each sample raises or lowers the logits of a random subset of
    classes before the ascent. ``precision='bfloat16'`` runs the ascent's arithmetic in bf16 (2-3x faster
    on processors with bf16 units); stopping decisions and the returned scores are still made in float32.

    Image priors (Olah et al. 2017, "Feature Visualization"; lucent): ``param='fft'`` optimizes a
    decorrelated Fourier parameterization behind a sigmoid instead of the pixels (needs ``pixel='sigmoid'``);
    ``jitter``, ``scale`` and ``rotate`` show the model each sample through its own random shift (pixels),
    zoom (fraction) and rotation (degrees) at every step, so only features that survive them grow.
    :data:`PRESETS` names the two ends: what the seeds did and what a person can recognize.
    """

    start: str = "blank"          # 'blank' (zeros, seed 003), 'grey' (0.5), 'noise' (uniform), 'mean' (class average),
                                  # 'average' (the mean of all class averages: one picture for every class)
    objective: str = "logit"      # 'logit' (pre-softmax, seed 003) or 'logprob'
    steps: int = 300              # step cap
    lr: float = 0.05
    optimizer: str = "adam"       # 'adam' or 'sgd' (plain gradient ascent)
    pixel: str = "clamp"          # keep pixels in [0, 1]: 'clamp' or 'sigmoid'; 'free': unbounded (seed 003)
    l2: float = 0.0               # weight of the L2 penalty (Simonyan et al.)
    tv: float = 0.0               # weight of the total-variation penalty
    jitter: int = 0               # random shift of up to this many pixels per step
    blur: float = 0.0             # mix with a 3x3 Gaussian blur after each step (0..1)
    threshold: float | None = 0.99
    threshold_range: tuple[float, float] | None = None
    attract_repel: bool = False
    pre_steps: int = 30
    seed: int = 0
    precision: str = "float32"    # arithmetic of the ascent: 'float32' or 'bfloat16'
    param: str = "pixel"          # 'pixel' (the pixels themselves) or 'fft' (decorrelated Fourier image)
    scale: float = 0.0            # random zoom of up to this fraction per step
    rotate: float = 0.0           # random rotation of up to this many degrees per step

    def __post_init__(self):
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, not '{self.start}'")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {OBJECTIVES}, not '{self.objective}'")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', not '{self.optimizer}'")
        if self.pixel not in PIXELS:
            raise ValueError(f"pixel must be one of {PIXELS}, not '{self.pixel}'")
        if self.param not in PARAMS:
            raise ValueError(f"param must be one of {PARAMS}, not '{self.param}'")
        if self.param == "fft" and self.pixel != "sigmoid":
            raise ValueError("the fft parameterization keeps pixels in range with a sigmoid: use pixel='sigmoid'")
        if not 0 <= self.scale < 1 or not 0 <= self.rotate <= 180:
            raise ValueError("scale must lie in [0, 1) and rotate in [0, 180] degrees")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {tuple(PRECISIONS)}, not '{self.precision}'")
        if self.steps < 0 or self.pre_steps < 1:
            raise ValueError("steps must be >= 0 and pre_steps >= 1")
        if self.lr <= 0 or min(self.l2, self.tv, self.jitter, self.blur) < 0 or self.blur > 1:
            raise ValueError("lr must be > 0; l2, tv, jitter >= 0; blur in [0, 1]")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"threshold T must lie in (0, 1), got {self.threshold}")
        if self.threshold_range is not None:
            lo, hi = self.threshold_range
            if not 0 < lo <= hi < 1:
                raise ValueError(f"threshold range must satisfy 0 < low <= high < 1, got {self.threshold_range}")
            object.__setattr__(self, "threshold_range", (float(lo), float(hi)))


PRESETS = ("recognizable", "seed")
DEFAULT_PRESET = "recognizable"  # where the Visualize page and ``python -m vizcore visualize`` start
PRESET_PER_CLASS = {"recognizable": 10, "seed": 1}  # distinct samples to look at; the seeds' one picture per class
PRESET_LABELS = {"recognizable": "Recognizable (image priors)",
                 "seed": "What the seeds did (blank start, pixel ascent, T = 0.99)"}


def preset(name: str, input_shape: Sequence[int], seed: int = 0) -> VisualizeConfig:
    """A named starting point for any model whose input is ``input_shape`` (C, H, W).

    ``recognizable``: lucent-style priors (Olah et al. 2017): a decorrelated Fourier parameterization
    behind a sigmoid, every step seen through a random shift of about 1/14 of the image side, a zoom of up
    to 10 % and a rotation of up to 10 degrees; 100 Adam steps at rate 0.1 on the class logit, no early stop
    (stopping at T = 0.99 leaves the pictures half-formed). A larger rate saturates the sigmoid into black and
    white (at 0.3: 70 % / 90 % of the pixels within 0.03 of either end on Fashion-MNIST / digits, against 43 % /
    68 %) and judges recognize no more (Fashion 92.8 % either way, digits 95.5 against 99.2 %); a smaller one
    leaves them unformed (0.03: Fashion 84.4 %; bench/logs/interpretability_recognizability.json). It starts
    from the average training picture of all classes together (``start='average'``: dark where the data's background is dark, mid-grey where
    objects lie, no hint of any one class; needs ``class_means``), plus each sample's own random
    spectrum, so samples differ. ``seed``: what seeds 003 / 000 did, pixel ascent from a blank image until
    the softmax passes T = 0.99 (every sample of a class is the same picture).
    """
    if name == "seed":
        return VisualizeConfig(seed=seed)
    if name != "recognizable":
        raise ValueError(f"unknown preset '{name}'; choose one of {PRESETS}")
    if len(input_shape) != 3:
        raise ValueError("the recognizable preset makes pictures: it needs an image model (C, H, W); "
                         "table rows have TABLE_VISUALIZE")
    side = min(int(input_shape[-1]), int(input_shape[-2]))
    return VisualizeConfig(start="average", objective="logit", steps=100, lr=0.1, pixel="sigmoid", param="fft",
                           jitter=max(1, round(side / 14)), scale=0.1, rotate=10.0, threshold=None, seed=seed)


@dataclass
class Visualizations:
    """Class visualizations with the teacher's logits and softmax (the soft targets) and how they ended."""

    images: torch.Tensor      # (N, C, H, W) in [0, 1] (unbounded with pixel='free')
    labels: torch.Tensor      # (N,) target class
    logits: torch.Tensor      # (N, K) teacher logits of the returned images
    probs: torch.Tensor       # (N, K) teacher softmax
    reached: torch.Tensor     # (N,) target prob > threshold and argmax
    thresholds: torch.Tensor  # (N,) threshold of each sample (0 when none was set)
    steps: torch.Tensor       # (N,) ascent steps each sample took
    config: VisualizeConfig

    def to_npz_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf, images=self.images.numpy(), labels=self.labels.numpy(), logits=self.logits.numpy(),
            probs=self.probs.numpy(), reached=self.reached.numpy(), thresholds=self.thresholds.numpy(),
            steps=self.steps.numpy(), config=np.array(json.dumps(self.config.to_dict())))
        return buf.getvalue()

    def to_npz(self, path: str | Path) -> Path:
        """Write the download format: arrays ``images labels logits probs reached thresholds steps`` and
        ``config`` (a JSON string)."""
        return atomic_write(path, self.to_npz_bytes())

    @classmethod
    def from_npz(cls, path: str | Path | io.BytesIO) -> Visualizations:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: torch.from_numpy(z[k].copy()) for k in
                      ("images", "labels", "logits", "probs", "reached", "thresholds", "steps")}
            config = VisualizeConfig.from_dict(json.loads(str(z["config"])))
        return cls(**arrays, config=config)


@dataclass
class FilterVisualizations:
    """Images that maximize the mean activation of chosen channels / units of one layer."""

    images: torch.Tensor       # (N, C, H, W) in [0, 1]
    layer: str
    channels: torch.Tensor     # (N,)
    activation: torch.Tensor   # (N,) mean activation reached by each image
    config: VisualizeConfig


@dataclass
class WeightImages:
    """One signed image per class: the output neuron's weight row (``linear``) or an effective weight."""

    images: torch.Tensor  # (K, C, H, W), not rescaled
    kind: str             # 'weights', 'gradient at blank' or 'mean gradient over data'
    label: str            # how to caption them


# --- the ascent loop ---------------------------------------------------------------------------------------

# Tables: feature rows start at the training mean (zeros after standardization) and stay unbounded.
TABLE_VISUALIZE = VisualizeConfig(start="blank", pixel="free", lr=0.05, steps=300, threshold=0.99)


def _optimizer(param: torch.Tensor, config: VisualizeConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD([param], lr=config.lr)
    return torch.optim.Adam([param], lr=config.lr)


def _ascend(model: nn.Module, objective: Objective, start: torch.Tensor, config: VisualizeConfig,
            gen: torch.Generator, steps: int, stop: Stop | None = None, progress: Progress | None = None,
            cancelled: Callable[[], bool] | None = None, what: str = "ascent",
            param: Param | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximize ``objective`` from ``start`` for at most ``steps`` steps, all samples in one batch.

    ``model`` is a :func:`~vizcore.core.hooks.frozen_copy` in ``config.precision``; the pixels stay float32.
    ``stop(logits, rows, step, images)`` marks samples that are finished (checked on the image before each
    step); finished samples leave the batch. ``param(start) -> (tensor, image_fn)`` replaces the
    parameterization ``config.param`` / ``config.pixel`` (then nothing is clamped or blurred: the image function
    keeps its own range).
    Returns the final images and the step each sample stopped at.
    """
    n, dtype = start.shape[0], PRECISIONS[config.precision]
    pixels = param is None and config.param == "pixel"  # vizcore's own pixel parameterization: clamp and blur
    if param is not None:
        param, image_fn = param(start)
    elif config.param == "fft":
        param, image_fn = fft_param(start, gen)
    else:
        param, image_fn = pixel_param(start, config.pixel)
    opt = _optimizer(param, config)
    final = torch.empty_like(start)
    taken = torch.full((n,), steps, dtype=torch.long)
    active = torch.arange(n, device=start.device)
    with capture(model, objective.layers) as acts:
        for step in range(steps + 1):
            check_cancelled(cancelled)
            opt.zero_grad(set_to_none=True)
            still = []
            for rows in active.split(CHUNK):  # chunks keep activations in cache; gradients add up per sample
                images = image_fn()[rows]
                shown = random_view(images, gen, config.jitter, config.scale, config.rotate)
                logits = model(_as_input(shown, dtype)).float()
                if stop is not None:
                    check = logits if shown is images else model(_as_input(images.detach(), dtype)).float()
                    hit = stop(check.detach(), rows, step, images.detach())
                    if hit.any():
                        final[rows[hit]], taken[rows[hit].cpu()] = images[hit].detach(), step
                        keep = ~hit
                        rows, shown, logits = rows[keep], shown[keep], logits[keep]
                        for k in list(acts):
                            acts[k] = acts[k][keep]
                still.append(rows)
                if step < steps and len(rows):
                    (-objective(AscentState(shown, logits, rows, acts)).sum()).backward()
            active = torch.cat(still)
            if step == steps or len(active) == 0:
                break
            opt.step()
            with torch.no_grad():
                if pixels and config.pixel == "clamp":
                    param.clamp_(0, 1)
                if pixels:
                    blur_(param, config.blur)
            if progress:
                progress((step + 1) / max(steps, 1), f"{what}: step {step + 1}/{steps}, {n - len(active)} of {n} stopped")
        if len(active):
            final[active] = image_fn()[active].detach()
    return final, taken


def bf16_is_fast(device: torch.device | str = "cpu") -> bool:
    """Whether ``precision='bfloat16'`` pays off on ``device``: a GPU with bf16 units, or a CPU oneDNN runs
    bf16 natively on (AVX512-BF16 / AMX)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def _as_input(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Images in the working copy's dtype and (for image batches) its channels-last layout."""
    return fast_layout(x.to(dtype))


def _working_copies(model: nn.Module, config: VisualizeConfig) -> tuple[nn.Module, nn.Module]:
    """(float32 copy for decisions and scores, copy in ``config.precision`` for the ascent)."""
    exact = frozen_copy(model)
    return exact, exact if config.precision == "float32" else frozen_copy(exact, PRECISIONS[config.precision])


def _reached(logits: torch.Tensor, targets: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Seed 000 eq. 2: the target softmax exceeds the threshold and is the largest."""
    p = logits.softmax(1)
    return (p.gather(1, targets[:, None])[:, 0] > thresholds) & (p.argmax(1) == targets)


# --- class visualizations ----------------------------------------------------------------------------------

def _starts(config: VisualizeConfig, labels: torch.Tensor, input_shape: Sequence[int],
            class_means: torch.Tensor | None, gen: torch.Generator) -> torch.Tensor:
    shape = (len(labels), *input_shape)
    if config.start == "blank":
        return torch.zeros(shape)
    if config.start == "grey":  # mid-grey: a clamped ascent can darken pixels as well as brighten them
        return torch.full(shape, 0.5)
    if config.start == "noise":
        return torch.rand(shape, generator=gen)
    if class_means is None:
        raise ValueError(f"start='{config.start}' needs class_means (class_averages of the training set)")
    if tuple(class_means.shape[1:]) != tuple(input_shape):
        raise ValueError(f"class_means have shape {tuple(class_means.shape[1:])}, the model takes {tuple(input_shape)}")
    if config.start == "average":  # no class information: the same picture starts every class
        return class_means.float().mean(0, keepdim=True).expand(shape).clone()
    return class_means[labels].float().clone()


def _thresholds(config: VisualizeConfig, n: int, gen: torch.Generator) -> torch.Tensor:
    if config.threshold_range is not None:
        lo, hi = config.threshold_range
        return lo + (hi - lo) * torch.rand(n, generator=gen)
    return torch.full((n,), config.threshold if config.threshold is not None else 0.0)


def _attract_repel_weights(n: int, k: int, gen: torch.Generator) -> torch.Tensor:
    """Per sample, one of seed 000's three movements: attract one random class, repel a random subset,
    or attract a random subset (+1 / -1 weights on the logits)."""
    mode = torch.randint(0, 3, (n,), generator=gen)
    subset = torch.rand(n, k, generator=gen) < 0.5
    subset[torch.arange(n), torch.randint(0, k, (n,), generator=gen)] = True  # never empty
    one = torch.zeros(n, k, dtype=torch.bool)
    one[torch.arange(n), torch.randint(0, k, (n,), generator=gen)] = True
    w = torch.where((mode == 0)[:, None], one.float(), subset.float())
    return torch.where((mode == 1)[:, None], -w, w)


def class_visualizations(model: nn.Module, classes: Sequence[int], per_class: int, config: VisualizeConfig, *,
                         input_shape: Sequence[int], class_means: torch.Tensor | None = None,
                         progress: Progress | None = None,
                         cancelled: Callable[[], bool] | None = None) -> Visualizations:
    """``per_class`` visualizations of each class in ``classes`` by gradient ascent in pixel space.

    Args:
        model: the teacher; the ascent runs on a private copy, so the model itself is never touched.
        classes: class indices to visualize.
        per_class: samples per class (different random starts / thresholds / pre-movements).
        config: the options (see :class:`VisualizeConfig`).
        input_shape: (C, H, W) of the model's input.
        class_means: (K, C, H, W) class averages, only for ``start='mean'``.
    Returns:
        :class:`Visualizations` ordered class by class, with the teacher's logits and softmax.
    """
    classes = [int(c) for c in classes]
    if not classes or per_class < 1:
        raise ValueError("choose at least one class and at least one sample per class")
    device = model_device(model)
    gen = torch.Generator().manual_seed(config.seed)
    labels = torch.tensor(classes, dtype=torch.long).repeat_interleave(per_class)
    start = _starts(config, labels, input_shape, class_means, gen)
    thresholds = _thresholds(config, len(labels), gen)
    exact, work = _working_copies(model, config)
    with torch.no_grad():
        k = exact(torch.zeros(1, *input_shape, device=device)).shape[1]
    if max(classes) >= k or min(classes) < 0:
        raise ValueError(f"classes must lie in 0..{k - 1}, got {classes}")
    lab, thr = labels.to(device), thresholds.to(device)
    start = start.to(device)
    pre = 0.3 if config.attract_repel else 0.0
    if config.attract_repel:
        weights = _attract_repel_weights(len(labels), k, gen).to(device)
        moves = torch.randint(1, config.pre_steps + 1, (len(labels),), generator=gen).to(device)
        start, _ = _ascend(work, logit_mix(weights), start, config, gen, config.pre_steps,
                           stop=lambda logits, rows, step, images: moves[rows] <= step,
                           progress=progress_span(progress, 0.0, pre), cancelled=cancelled, what="attraction-repulsion")
    target = class_logit(lab) if config.objective == "logit" else class_logprob(lab)
    objective = target - config.l2 * l2()
    if config.tv:  # an image penalty; feature rows (tables) have no neighbours
        objective = objective - config.tv * total_variation()

    def reached(logits: torch.Tensor, rows: torch.Tensor, step: int, images: torch.Tensor) -> torch.Tensor:
        hit = _reached(logits, lab[rows], thr[rows])
        if work is not exact and hit.any():  # low-precision candidates are confirmed in float32
            with torch.no_grad():
                hit[hit.clone()] = _reached(exact(images[hit]), lab[rows][hit], thr[rows][hit])
        return hit

    stop = reached if (config.threshold is not None or config.threshold_range is not None) else None
    images, taken = _ascend(work, objective, start, config, gen, config.steps, stop=stop,
                            progress=progress_span(progress, pre, 1.0), cancelled=cancelled, what="class ascent")
    images = images.cpu()
    logits = predict_logits(exact, images)
    probs = logits.softmax(1)
    return Visualizations(images=images, labels=labels, logits=logits, probs=probs,
                          reached=_reached(logits, labels, thresholds),
                          thresholds=thresholds, steps=taken, config=config)


# --- filter / unit visualizations --------------------------------------------------------------------------

def filter_visualization(model: nn.Module, layer: str, channels: Sequence[int], config: VisualizeConfig, *,
                         input_shape: Sequence[int], progress: Progress | None = None,
                         cancelled: Callable[[], bool] | None = None) -> FilterVisualizations:
    """Images maximizing the mean activation of each chosen channel (conv layer) or unit (dense layer).

    All channels are optimized in one batch for ``config.steps`` steps; thresholds do not apply. Start
    'mean' is not available here.
    """
    if config.start in ("mean", "average"):
        raise ValueError(f"filter visualizations start from 'blank', 'grey' or 'noise', not '{config.start}'")
    names = dict(model.named_modules())
    if layer not in names or layer == "":
        raise ValueError(f"unknown layer '{layer}'; the model has {[n for n in names if n]}")
    ch = torch.tensor([int(c) for c in channels], dtype=torch.long)
    if len(ch) == 0:
        raise ValueError("choose at least one channel")
    device = model_device(model)
    gen = torch.Generator().manual_seed(config.seed)
    start = _starts(config, ch, input_shape, None, gen).to(device)
    exact, work = _working_copies(model, config)
    with capture(exact, [layer]) as acts, torch.no_grad():
        exact(torch.zeros(1, *input_shape, device=device))
        width = acts[layer].shape[1]
    if ch.max() >= width or ch.min() < 0:
        raise ValueError(f"layer '{layer}' has {width} channels/units; choose indices in 0..{width - 1}")
    objective = (channel_mean(layer, ch.to(device)) - config.l2 * l2() - config.tv * total_variation())
    images, _ = _ascend(work, objective, start, config, gen, config.steps, progress=progress,
                        cancelled=cancelled, what=f"{layer} ascent")
    with capture(exact, [layer]) as acts, torch.no_grad():
        exact(images)
        a = acts[layer]
        a = a.flatten(2).mean(2) if a.dim() > 2 else a
        activation = a.gather(1, ch.to(device)[:, None])[:, 0].cpu()
    return FilterVisualizations(images=images.cpu(), layer=layer, channels=ch, activation=activation, config=config)


# --- output-weight images, class averages, comparisons -----------------------------------------------------

def linear_weights(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor | None:
    """The weight matrix reshaped to (K, C, H, W) if the model is one Linear layer on the pixels, else None."""
    mods = [m for m in model.modules() if not list(m.children())]
    lin = [m for m in mods if isinstance(m, nn.Linear)]
    others = [m for m in mods if not isinstance(m, (nn.Linear, nn.Flatten, nn.Dropout, nn.Identity))]
    if len(lin) != 1 or others or lin[0].in_features != int(np.prod(input_shape)):
        return None
    return lin[0].weight.detach().cpu().reshape(-1, *input_shape).clone()


def input_gradients(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """(K, C, H, W): gradient of each class logit with respect to the input, summed over the rows of ``x``."""
    device = model_device(model)
    total = None
    with guarded(model):
        model.requires_grad_(False)
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device).requires_grad_(True)
            logits = model(xb)
            grads = torch.stack([torch.autograd.grad(logits[:, k].sum(), xb, retain_graph=True)[0].sum(0)
                                 for k in range(logits.shape[1])])
            total = grads if total is None else total + grads
    return total.cpu()


def weight_images(model: nn.Module, data, *, at: str = "blank", max_samples: int | None = 2000) -> WeightImages:
    """Output-weight images (seed 003 section 9).

    For a model that is a single Linear layer on the pixels (``linear``) these are its weight rows, exactly.
    Otherwise they are *effective weights*: the gradient of each class logit with respect to the input,
    at the blank image (``at='blank'``) or averaged over ``data`` (``at='data'``, the test images).

    Args:
        data: a :class:`vizcore.data.Dataset` (its test split is used) or a tensor (N, C, H, W).
        max_samples: at most this many images are averaged (None: all).
    """
    x = data.test_x if hasattr(data, "test_x") else torch.as_tensor(data)
    shape = tuple(x.shape[1:])
    w = linear_weights(model, shape)
    if w is not None:
        return WeightImages(w, "weights", "output-neuron weights (exact)")
    if at == "blank":
        return WeightImages(input_gradients(model, torch.zeros(1, *shape)), "gradient at blank",
                            "effective weights: d logit / d input at the blank image")
    if at == "data":
        x = x[:max_samples] if max_samples else x
        if len(x) == 0:
            raise ValueError("averaging effective weights needs at least one image")
        return WeightImages(input_gradients(model, x) / len(x), "mean gradient over data",
                            f"effective weights: d logit / d input averaged over {len(x)} test images")
    raise ValueError(f"at must be 'blank' or 'data', not '{at}'")


def class_averages(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(K, C, H, W): the mean image of each class (seed 003 section 7, algorithm 1); zeros for a class
    without samples."""
    sums = torch.zeros(num_classes, *x.shape[1:], dtype=torch.float64)
    sums.index_add_(0, y.long(), x.double())
    counts = torch.bincount(y.long(), minlength=num_classes).clamp(min=1).double()
    return (sums / counts.view(-1, *[1] * (x.dim() - 1))).float()


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two stacks of images, flattened: (N, ...) x (N, ...) -> (N,)."""
    return F.cosine_similarity(a.flatten(1).double(), b.flatten(1).double(), dim=1, eps=1e-12).float()


def per_class_mean(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """(len(classes), C, H, W): the mean of the samples of each class (one image per class for comparisons)."""
    return torch.stack([images[labels == c].mean(0) for c in classes])


def diversity(images: torch.Tensor, labels: torch.Tensor, classes: Sequence[int]) -> list[float | None]:
    """Per class, the mean pairwise distance between its samples (RMS per pixel, so 0..1); None for a class
    with a single sample. Near 0 means the set collapsed to one picture."""
    out: list[float | None] = []
    for c in classes:
        z = images[labels == c].flatten(1).double()
        if len(z) < 2:
            out.append(None)
            continue
        d = torch.cdist(z, z) / z.shape[1] ** 0.5
        out.append(float(d.sum() / (len(z) * (len(z) - 1))))
    return out


def summary(vis: Visualizations, class_names: Sequence[str] | None = None) -> list[dict]:
    """Per class: samples, fraction that reached T, mean target probability, mean steps, diversity."""
    classes = sorted(set(vis.labels.tolist()), key=vis.labels.tolist().index)
    div = diversity(vis.images, vis.labels, classes)
    rows = []
    for c, d in zip(classes, div):
        m = vis.labels == c
        rows.append({
            "class": class_names[c] if class_names else str(c), "index": c, "n": int(m.sum()),
            "reached_fraction": float(vis.reached[m].float().mean()),
            "mean_target_prob": float(vis.probs[m, c].mean()),
            "mean_steps": float(vis.steps[m].float().mean()),
            "diversity": d,
        })
    return rows


def visualization_job(model: nn.Module, classes: Sequence[int], per_class: int, config: VisualizeConfig, *,
                      input_shape: Sequence[int], class_names: Sequence[str],
                      class_means: torch.Tensor | None = None,
                      judges: Callable[..., tuple[dict[str, nn.Module], str]] | None = None) -> Callable:
    """A :func:`vizcore.core.jobs.start_job` function: run :func:`class_visualizations`, write
    ``visualizations.npz`` into the job folder and return the per-class :func:`summary`. With ``judges``
    (called in the job as ``judges(progress=, cancelled=)``, returning {name: model} and a line saying
    what they are) it also returns how recognizable the set is to them
    (:func:`~vizcore.explain.interpretability.recognizability`)."""
    from vizcore.explain.interpretability import predictions, recognizability

    def run(ctx) -> dict:
        vis = class_visualizations(model, classes, per_class, config, input_shape=input_shape,
                                   class_means=class_means, progress=progress_span(ctx.progress, 0, 0.8 if judges else 1),
                                   cancelled=ctx.cancelled)
        vis.to_npz(ctx.path(NPZ_NAME))
        out = {"file": NPZ_NAME, "n": len(vis.labels), "reached": int(vis.reached.sum()),
               "per_class": summary(vis, class_names)}
        if judges is not None:
            ctx.progress(0.8, "asking the independent judges")
            models, line = judges(progress=progress_span(ctx.progress, 0.8, 1.0), cancelled=ctx.cancelled)
            if models:
                out["recognizability"] = {**recognizability(vis.labels, predictions(models, vis.images)), "judges": line}
            else:
                out["recognizability"] = {"per_judge": {}, "mean": None, "min": None, "judges": line}
        return out

    return run


NPZ_NAME = "visualizations.npz"


def similarities(visualizations: torch.Tensor, weights: torch.Tensor, averages: torch.Tensor) -> dict[str, list[float]]:
    """Per class, the cosine similarity of each pair among visualization, weight image and class average
    (each stack (K, C, H, W), row k for class k)."""
    return {
        "visualization ~ weights": cosine_similarity(visualizations, weights).tolist(),
        "visualization ~ average": cosine_similarity(visualizations, averages).tolist(),
        "weights ~ average": cosine_similarity(weights, averages).tolist(),
    }
