"""Model compression by Tucker decomposition, and its repair without data (seed 004, "Evaluation").

A trained model is shrunk layer by layer: a convolution by Tucker-2 over its two channel modes (Kim et al. 2016,
as KegNet does; computed with tensorly), a dense layer by its truncated SVD (the two-mode Tucker of a matrix, its
diagonal core on the first factor or split evenly between the two). Ranks come from a target compression ratio
(parameters before / after) or are given per layer. The result is a normal zoo model: its card names the model it
came from, the ranks and the ratio, and :func:`vizcore.zoo.model_from_card` rebuilds its layers from that JSON alone.

The compressed model loses accuracy; seed 004 repairs it by fine-tuning on data made without the training set:
uniform noise (T+Uniform), Gaussian noise (T+Gaussian), KegNet's generators (T+KegNet), and here also vizcore's
best data-free set. The student learns the teacher's soft labels and is selected on a synthetic hold-out; the
real test set is read once, by the caller, for the report.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
from torch import nn

from vizcore.core import distributed as dist
from vizcore.core.progress import Progress, progress_span
from vizcore.distill.engine import EngineConfig, agreement, distill, divergence, feature_matching, mixed_pairs
from vizcore.distill.methods import DEFAULT_METHOD, default_engine, engine_for, is_online, needs_engine
from vizcore.distill.students import StudentConfig, fit_student, holdout_split
from vizcore.distill.synthesis import KEGNET_METHODS
from vizcore.metrics import predict_logits
from vizcore.models import (
    LowRankLinear,
    Tucker2Conv,
    count_parameters,
    factorized_skeleton,
)

REPAIRS = ("none", "uniform", "gaussian", "kegnet", "best")
SELECTIONS = ("synthetic", "real")  # RepairConfig.select
FACTOR_SPLITS = ("balanced", "first")  # compress_model's split, RepairConfig.split
REPAIR_LABELS = {"none": "T", "uniform": "T+Uniform", "gaussian": "T+Gaussian", "kegnet": "T+KegNet"}


class CompressionError(ValueError):
    """The model cannot be compressed as asked; the message says why."""


# ---------------------------------------------------------------------------------------------- ranks


def _layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Top-level dense and conv layers, the ones that can be factorized."""
    return [(n, m) for n, m in model.named_children() if isinstance(m, (nn.Linear, nn.Conv2d))]


def _factorized_size(layer: nn.Module, ranks: list[int]) -> int:
    bias = layer.bias.numel() if layer.bias is not None else 0
    if isinstance(layer, nn.Linear):
        return ranks[0] * (layer.in_features + layer.out_features) + bias
    k = layer.weight[0, 0].numel()
    return layer.in_channels * ranks[0] + ranks[0] * ranks[1] * k + ranks[1] * layer.out_channels + bias


def _max_ranks(layer: nn.Module) -> list[int]:
    if isinstance(layer, nn.Linear):
        return [min(layer.in_features, layer.out_features)]
    return [layer.in_channels, layer.out_channels]


def _ranks_at(layers, cap: int) -> dict[str, list[int]]:
    """Every rank capped at ``cap`` (as KegNet gives all layers one rank); layers whose factors would not be
    smaller than the layer stay as they are."""
    out = {}
    for name, layer in layers:
        r = [min(cap, m) for m in _max_ranks(layer)]
        if _factorized_size(layer, r) < sum(p.numel() for p in layer.parameters()):
            out[name] = r
    return out


def _size_with(model: nn.Module, layers, ranks: dict[str, list[int]]) -> int:
    by_name = dict(layers)
    saved = sum(sum(p.numel() for p in by_name[n].parameters()) - _factorized_size(by_name[n], r) for n, r in ranks.items())
    return count_parameters(model) - saved


def choose_ranks(model: nn.Module, ratio: float) -> dict[str, list[int]]:
    """Per-layer ranks so that parameters before / after is at least ``ratio`` and as close to it as ranks allow.

    The largest common rank cap that meets the ratio is found first (every layer keeps the same number of
    components, as KegNet's compressed networks do); then single ranks are raised again, largest layer first,
    while the ratio still holds.
    """
    layers = _layers(model)
    total = count_parameters(model)
    if ratio <= 1:
        raise CompressionError("the compression ratio must be above 1")
    budget = total / ratio
    smallest = _size_with(model, layers, _ranks_at(layers, 1))
    if smallest > budget:
        raise CompressionError(f"this model can be compressed at most {total / smallest:.2f}x by factorizing its layers")
    top = max(max(_max_ranks(m)) for _, m in layers)
    cap = max(c for c in range(1, top + 1) if _size_with(model, layers, _ranks_at(layers, c)) <= budget)
    ranks = _ranks_at(layers, cap)
    by_size = sorted(ranks, key=lambda n: -sum(p.numel() for p in dict(layers)[n].parameters()))
    grew = True
    while grew:
        grew = False
        for name in by_size:
            for i, most in enumerate(_max_ranks(dict(layers)[name])):
                trial = {**ranks, name: [r + (j == i) for j, r in enumerate(ranks[name])]}
                if trial[name][i] <= most and _size_with(model, layers, trial) <= budget:
                    ranks, grew = trial, True
    return ranks


# ---------------------------------------------------------------------------------------------- decomposition


@torch.no_grad()
def _fill_linear(src: nn.Linear, dst: LowRankLinear, split: str) -> None:
    """Truncated SVD (seed 004's Tucker of a dense layer), W ~ U_r S_r V_r^T, with the singular values on the
    first factor (``split="first"``: S V^T then U) or shared evenly (``"balanced"``: S^1/2 V^T then U S^1/2, both
    factors with the Gram matrix S); the bias stays on the last factor. The function is the same; the repair's
    steps are not (see :data:`TABLE_REPAIR`)."""
    r = dst.first.out_features
    u, s, vh = torch.linalg.svd(src.weight.double(), full_matrices=False)
    left, right = (s[:r], torch.ones_like(s[:r])) if split == "first" else (s[:r].sqrt(), s[:r].sqrt())
    dst.first.weight.copy_((left[:, None] * vh[:r]).float())
    dst.last.weight.copy_((u[:, :r] * right).float())
    if src.bias is not None:
        dst.last.bias.copy_(src.bias)


@torch.no_grad()
def _fill_conv(src: nn.Conv2d, dst: Tucker2Conv) -> None:
    """Tucker-2 of the kernel over its output and input channel modes (tensorly's partial_tucker, SVD start)."""
    import tensorly as tl
    from tensorly.decomposition import partial_tucker

    in_rank, out_rank = dst.first.out_channels, dst.core.out_channels
    w = src.weight.detach().double().cpu().numpy()
    with tl.backend_context("numpy"):
        (core, (u_out, u_in)), _ = partial_tucker(w, rank=[out_rank, in_rank], modes=[0, 1], init="svd")
    dst.first.weight.copy_(torch.from_numpy(u_in.T.copy()).float()[:, :, None, None])
    dst.core.weight.copy_(torch.from_numpy(core.copy()).float())
    dst.last.weight.copy_(torch.from_numpy(u_out.copy()).float()[:, :, None, None])
    if src.bias is not None:
        dst.last.bias.copy_(src.bias)


def compress_model(model: nn.Module, *, ratio: float | None = None, ranks: dict[str, list[int]] | None = None,
                   split: str = "balanced") -> tuple[nn.Sequential, dict]:
    """A compressed copy of ``model`` (the original is untouched) and what was done:
    ``{"ranks", "params_before", "params_after", "ratio", "split"}``. Give ``ratio`` or per-layer ``ranks``;
    ``split``: where a dense layer's singular values go (:data:`FACTOR_SPLITS`, see :func:`_fill_linear`)."""
    if (ratio is None) == (ranks is None):
        raise CompressionError("give either a target ratio or per-layer ranks")
    if split not in FACTOR_SPLITS:
        raise CompressionError(f"unknown factor split '{split}'; choose one of {', '.join(FACTOR_SPLITS)}")
    if not isinstance(model, nn.Sequential):
        raise CompressionError("only models built from the zoo's architectures (nn.Sequential) can be compressed")
    ranks = choose_ranks(model, ratio) if ranks is None else {k: [int(r) for r in v] for k, v in ranks.items()}
    layers = dict(_layers(model))
    for name, r in ranks.items():
        if name not in layers:
            raise CompressionError(f"no dense or conv layer '{name}'; layers: {', '.join(layers)}")
        if any(x < 1 or x > top for x, top in zip(r, _max_ranks(layers[name]))):
            raise CompressionError(f"ranks of '{name}' must lie in 1..{_max_ranks(layers[name])}, got {r}")
    src = copy.deepcopy(model).cpu().float().eval()
    try:
        out = factorized_skeleton(src, ranks)
    except ValueError as e:
        raise CompressionError(str(e)) from e
    for name in ranks:
        if isinstance(layers[name], nn.Linear):
            _fill_linear(getattr(src, name), getattr(out, name), split)
        else:
            _fill_conv(getattr(src, name), getattr(out, name))
    before, after = count_parameters(model), count_parameters(out)
    for p in out.parameters():
        p.requires_grad_(False)
    return out.eval(), {"ranks": ranks, "params_before": before, "params_after": after,
                        "ratio": round(before / after, 4), "split": split}


# ---------------------------------------------------------------------------------------------- repair


@dataclass(frozen=True)
class RepairConfig:
    """Fine-tuning a compressed student on synthetic inputs labelled by the teacher (seed 004 "Baseline
    Approaches"). ``n``: synthetic inputs (a tenth is the selection hold-out); ``kegnet_n``: KegNet's inputs, shared
    evenly by its generators (T+KegNet trains on all of them; a table's best repair takes ``n // 2`` of them, drawn
    from every generator); ``kegnet_steps``: training steps of
    each of KegNet's ``generators``; ``best``: the data-free method of an image model's best repair (tables use
    KegNet's generators and Gaussian noise together): by default the Student lab's default method, trained by the
    engine for ``engine_steps`` steps from the compressed model (a method that trains a generator against the
    student runs there; a fixed-set method is fine-tuned on like noise). ``select``: which checkpoint is kept, the
    compressed model's start included: ``synthetic`` (the synthetic hold-out: agreement with the teacher, or, for
    an image's best repair, the closeness to its softmax on the hold-out mixed in pairs; data-free) or
    ``real`` (accuracy on a real validation split, as KegNet's code picks its epoch for the seed's tables: NOT
    data-free). ``features``: the weight of feature matching in the best repair (FitNets' hints, Romero et al. 2015;
    :func:`~vizcore.distill.engine.feature_pairs`): the compressed model keeps the teacher's layers, so each of its
    hidden layers learns the teacher's output there, not only the teacher's softmax (0: off). ``split``: how the
    repaired student's dense factors share the singular values (:func:`compress_model`; made so by
    :func:`compression_table`). ``epochs``: fine-tuning epochs on noise and on the best method's inputs;
    ``kegnet_epochs``: on KegNet's rows alone (KegNet's code, too, gives each kind of input its own epoch budget).
    ``kegnet_lr``: the generators' learning rate (None: the Student lab's KegNet's). ``n``, ``kegnet_n``,
    ``epochs``, ``kegnet_epochs``, ``lr``, ``kegnet_steps``, ``kegnet_lr``, ``engine_steps`` and ``split`` left at
    None take the measured default of the model's input (:data:`TABLE_REPAIR`, :data:`IMAGE_REPAIR`;
    :meth:`for_input`), the one default of the page, the CLI and the bench."""

    n: int | None = None
    kegnet_n: int | None = None
    epochs: int | None = None
    kegnet_epochs: int | None = None
    lr: float | None = None
    batch_size: int = 64
    seed: int = 0
    generators: int = 5
    kegnet_steps: int | None = None
    kegnet_lr: float | None = None
    best: str = DEFAULT_METHOD
    engine_steps: int | None = None
    select: str = "synthetic"
    features: float = 1.0
    split: str | None = None

    def __post_init__(self):
        if self.generators < 1:  # said before the model is compressed, not when the repair reaches KegNet
            raise ValueError("KegNet needs at least one generator")

    def for_input(self, input_shape) -> RepairConfig:
        """This config with the default of ``input_shape``'s kind (a table's row or an image) where it has none."""
        defaults = TABLE_REPAIR if len(input_shape) == 1 else IMAGE_REPAIR
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})

    def epochs_for(self, method: str) -> int:
        """The fine-tuning epochs of one repair method (a config completed by :meth:`for_input`)."""
        return self.kegnet_epochs if method == "kegnet" else self.epochs

    def n_for(self, method: str) -> int:
        """The inputs one repair method fine-tunes on (a config completed by :meth:`for_input`)."""
        return self.kegnet_n if method == "kegnet" else self.n


# The repair defaults by input kind (bench/compression.py; data-free selection, one run each). Tables: KegNet's
# generators as its code trains them for tables (20,000 steps at 1e-4, batch 256, the classifier's dropout on; see
# kegnet.py): T+KegNet on Shuttle / PenDigits / Letter 90.1 / 83.1 / 83.3 %, against 93.0 / 77.6 / 83.5 % with
# 3,000 steps at 1e-3 and 75.6 % on PenDigits with 20,000 steps and the teacher in eval mode. The fine-tuning rate
# is KegNet code's for tables, 1e-4: at 1e-3 Letter (4.1x) fell below T, to 71.6 %. Epochs (20 -> 100): noise and
# the best repair keep learning from the teacher's soft answers on noise (T+Gaussian 98.3 / 78.5 / 85.3 -> 99.6 /
# 88.3 / 85.2, best 97.5 / 87.4 / 86.3 -> 99.6 / 90.2 / 86.0), while KegNet's rows, which the teacher is sure of,
# pull the student away (93.0 / 77.6 / 83.5 -> 89.1 / 73.3 / 80.6), so they keep 20. KegNet's rows: 32,000, 6,400
# per generator as KegNet's code samples them for its student. T+KegNet's spread over seeds is in the set (PenDigits'
# five generators may all place one class alike and miss its real rows); more rows per generator cover more:
# PenDigits at 8x over seeds 0-4 79.43 +- 3.73 % with 10,000 rows, 81.39 +- 2.92 % with 32,000
# (bench/logs/compression_pendigits_seeds.json). Images: the Student lab's
# KegNet (SynthesisConfig's steps), 5,000 images, 10 epochs at 1e-3 (Fashion-MNIST at 16x: 83.3 %; 1e-4: 83.6 %).
# The images' best repair: the default method's engine for 3,000 steps on KegNet's 5,000 images (T+KegNet's own
# set) from the compressed model. Against fine-tuning on mixed AM's set: digits at 16x 82.4 -> 89.1 %, at 8x
# 96.0 -> 97.6 %, Fashion-MNIST at 12x 85.2 -> 89.4 %, at 16x 82.9 -> 83.7 % (one thread each, 10,000 KegNet images);
# bench/compression.py: digits 8x / 16x 97.3 / 88.2 %, Fashion-MNIST 14.5x / 15.5x 85.2 / 85.2 % (T+KegNet 95.1 /
# 85.3 / 80.6 / 86.3 %); with the best repair's hints (RepairConfig.features) 96.9 / 88.4 / 86.1 / 87.5 %, and the
# tables' best 99.6 / 92.6 / 86.2 % (PenDigits 90.3 % without); its checkpoint ranked on the hold-out mixed in pairs
# (EngineConfig.select="mixed") instead of the hold-out's agreement: 96.9 / 87.8 / 86.3 / 89.2 % (bench/compression.py).
# The split of a dense layer's singular values (compress_model): Adam moves each weight by about its rate whatever
# the weight's size, so at the tables' 1e-4 a first factor holding all of S barely moved; shared evenly, PenDigits
# 8x T+KegNet over ten seeds 81.69 -> 83.72 % (every seed up), at 12x over five +1.9, Letter +0.3 (T+Gaussian at
# 8x +2.8), Shuttle unchanged. At the images' 1e-3 the even split moves too far: on the same KegNet sets
# Fashion-MNIST 14.5x / 15.5x T+KegNet 80.56 / 86.26 -> 77.07 / 83.81 %, T+Uniform -3.3 / -1.9, digits +0.2 / +1.6
# (bench/logs/compression_factor_split.json), so images keep S on the first factor.
TABLE_REPAIR = {"n": 10_000, "kegnet_n": 32_000, "epochs": 100, "kegnet_epochs": 20, "lr": 1e-4, "kegnet_steps": 20_000,
                "kegnet_lr": 1e-4, "split": "balanced"}
IMAGE_REPAIR = {"n": 5000, "kegnet_n": 5000, "epochs": 10, "kegnet_epochs": 10, "lr": 1e-3, "kegnet_steps": 300,
                "engine_steps": 3000, "split": "first"}


def noise_inputs(kind: str, n: int, input_shape, seed: int) -> torch.Tensor:
    """T+Uniform / T+Gaussian inputs. Tables (standardized features): U(-1, 1) and N(0, 1) as KegNet's code;
    images in [0, 1]: U(0, 1) and N(0.5, 0.5) clipped to [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    shape = (n, *input_shape)
    table = len(input_shape) == 1
    if kind == "uniform":
        x = torch.rand(shape, generator=g)
        return x * 2 - 1 if table else x
    x = torch.randn(shape, generator=g)
    return x if table else (0.5 + 0.5 * x).clamp(0, 1)


def set_key(method: str, input_shape, best: str = DEFAULT_METHOD) -> str | None:
    """The synthetic set a repair method trains on, by the key a job's cache keeps it under: None for noise and for
    an image's best repair by an online method (its images are made in the engine), ``kegnet`` for KegNet's rows or
    images, for a table's best repair (half of them, with Gaussian rows) and for an image's best repair by a method
    that starts from KegNet's set (``best``, the default's), ``best`` for an image's best repair by another set."""
    if method in ("uniform", "gaussian"):
        return None
    if method == "kegnet" or len(input_shape) == 1:
        return "kegnet"
    if is_online(best):
        return None
    return "kegnet" if best in KEGNET_METHODS else "best"


def uses_engine(method: str, input_shape, config: RepairConfig) -> bool:
    """Whether a repair trains in the distillation engine: an image's best repair by a method that needs it."""
    return method == "best" and len(input_shape) == 3 and needs_engine(config.best)


def _synthesis(method: str, config: RepairConfig, input_shape):
    """The synthesis of :func:`set_key`'s set for a repair method (None for noise)."""
    from vizcore.distill.synthesis import SynthesisConfig

    key = set_key(method, input_shape, config.best)
    if key is None:
        return None
    if key == "kegnet":
        table = len(input_shape) == 1
        return SynthesisConfig(method="kegnet", n=config.kegnet_n, seed=config.seed, generators=config.generators,
                               train_steps=config.kegnet_steps, lr=config.kegnet_lr, batch_size=256 if table else 64)
    return SynthesisConfig(method=config.best, n=config.n, seed=config.seed)


def synthetic_inputs(method: str, teacher: nn.Module, config: RepairConfig, *, input_shape, class_names: list[str],
                     dataset: str = "", cache: dict | None = None, progress: Progress | None = None,
                     cancelled: Callable[[], bool] | None = None) -> tuple[torch.Tensor, dict]:
    """The inputs of one repair method, made from the teacher alone. ``cache`` (a dict the caller keeps for one
    teacher and config) keeps the KegNet and best sets, so a table's best repair (tables) or another ratio of the
    same teacher reuses them instead of training the generators again."""
    from vizcore.distill.sharded import synthesize_sharded as synthesize  # this rank's share under torchrun

    key = set_key(method, input_shape, config.best)
    if key is None:
        return (None if uses_engine(method, input_shape, config) else
                noise_inputs(method, config.n, input_shape, config.seed)), {}
    cache = {} if cache is None else cache
    if key not in cache:
        synth = synthesize(teacher, _synthesis(method, config, input_shape), input_shape=input_shape,
                           class_names=class_names, dataset=dataset, progress=progress, cancelled=cancelled)
        cache[key] = synth.images, synth.stats
    images, stats = cache[key]
    if method == "best" and len(input_shape) == 1:  # tables' best: half KegNet rows (of every generator), half Gaussian
        half = min(config.n // 2, len(images))
        pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))[:half]
        gauss = noise_inputs("gaussian", config.n - half, input_shape, config.seed + 1)
        return torch.cat([images[pick.sort().values], gauss]), {**stats, "mix": "KegNet + Gaussian"}
    return images, stats


def selection_probe(teacher: nn.Module, held: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, input_shape,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The synthetic inputs a data-free repair is selected on, with the teacher's labels and softmax: the set's own
    hold-out (``held`` with the teacher's ``labels`` and ``probs``) and, for a table, as many Gaussian and as many
    uniform rows, labelled here. KegNet's rows are ones the teacher is sure of, and every fine-tuning epoch agrees
    with it on them above 99 %; noise over the standardized features' range tells the epochs apart (Letter at 4x:
    81.3 -> 83.5 %, Shuttle at 8x: 89.0 -> 93.0 %, PenDigits 78.4 -> 77.6 %). Ranking T+KegNet's epochs by the
    cross-entropy on its hold-out blended in pairs instead (as the engine ranks an image's best repair) moved
    PenDigits at 8x 81.96 -> 82.68 % but lost elsewhere: PenDigits 12x -4.4, Letter 8x -1.4, digits 20x / 24x -3.1 /
    -2.0 points, +1.1 at digits 12x and Fashion-MNIST 12x (bench/logs/compression_uci_kegnet_mixed_selection.json);
    not kept."""
    from vizcore.distill.synthesis import label_with_teacher

    if len(input_shape) != 1:
        return held, labels, probs
    noise = torch.cat([noise_inputs("gaussian", len(held), input_shape, seed + 2),
                       noise_inputs("uniform", len(held), input_shape, seed + 3)])
    noise_labels, _, noise_probs = label_with_teacher(teacher, noise)
    return torch.cat([held, noise]), torch.cat([labels, noise_labels]), torch.cat([probs, noise_probs])


# T+KegNet fine-tunes on the inputs the teacher labels with at least this confidence. A KegNet generator is trained
# to make inputs of its class; one the teacher is unsure of is a failed sample. Shuttle's teacher never predicts two
# of its seven classes, whose generators cannot succeed, and labels 57 % of its KegNet rows below 0.9; fine-tuning on
# them took T+KegNet from the compressed start's 96.21 % to 90.07 % (with them dropped no epoch beats the start on the
# selection probe, and the start is kept: 96.21 %). PenDigits 81.96 % either way (every row is sure), Letter 83.25 ->
# 83.47 % (the same KegNet sets); 99 % and 97 % of digits' and Fashion-MNIST's KegNet images pass.
KEGNET_CONFIDENCE = 0.9


def sure_rows(rows, probs: torch.Tensor, batch_size: int):
    """The indices of ``rows`` whose teacher probability reaches :data:`KEGNET_CONFIDENCE` (all of them when fewer
    than two batches would be left)."""
    rows = torch.as_tensor(rows)
    sure = rows[probs[rows].max(1).values >= KEGNET_CONFIDENCE]
    return sure if len(sure) >= 2 * batch_size else rows


def repair_label(method: str, input_shape, config: RepairConfig) -> str:
    """The table row name of a repair: the seed's (``T+KegNet`` ...) or, for vizcore's best, ``T+<its set>``."""
    if method != "best":
        return REPAIR_LABELS[method]
    label = "T+KegNet+Gaussian" if len(input_shape) == 1 else f"T+{config.best}"
    return label + "+hints" if config.features else label


def repair(teacher: nn.Module, student: nn.Module, method: str, config: RepairConfig, *, input_shape,
           class_names: list[str], dataset: str = "", cache: dict | None = None, progress: Progress | None = None,
           cancelled: Callable[[], bool] | None = None,
           validation: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[nn.Module, dict]:
    """A fine-tuned copy of the compressed ``student`` and what it took (``seconds``, synthesis stats, selection).

    The student learns the teacher's softmax on ``method``'s inputs (KL, as KegNet's code) and the checkpoint
    kept (the start included) is the one that agrees most with the teacher on a synthetic hold-out: no real data
    is read. With ``config.select == "real"`` it is the most accurate on ``validation`` (real images and labels).
    """
    if method not in REPAIRS or method == "none":
        raise ValueError(f"unknown repair '{method}'; choose one of {', '.join(REPAIRS[1:])}")
    if config.select not in SELECTIONS:
        raise ValueError(f"unknown selection '{config.select}'; choose one of {', '.join(SELECTIONS)}")
    if config.select == "real" and validation is None:
        raise ValueError("selection on real data needs a validation split")
    from vizcore.core.hooks import frozen_copy, trainable_copy
    from vizcore.distill.synthesis import label_with_teacher

    config = config.for_input(input_shape)
    start, cpu = time.perf_counter(), time.process_time()
    reused = set_key(method, input_shape, config.best) in (cache or {})
    twin = frozen_copy(teacher)
    x, stats = synthetic_inputs(method, twin, config, input_shape=input_shape, class_names=class_names,
                                dataset=dataset, cache=cache, progress=progress_span(progress, 0.0, 0.6), cancelled=cancelled)
    model = trainable_copy(student)
    if uses_engine(method, input_shape, config):
        fitted, selection = _engine_repair(twin, model, x, config, input_shape=input_shape,
                                           num_classes=len(class_names), validation=validation,
                                           progress=progress_span(progress, 0.6, 1.0), cancelled=cancelled)
        budget = {"steps": config.engine_steps}
    else:
        labels, _, probs = label_with_teacher(twin, x)
        tr, ho = holdout_split(len(x), 0.1, config.seed)
        if method == "kegnet":
            tr = sure_rows(tr, probs, config.batch_size)
        epochs = config.epochs_for(method)
        sc = StudentConfig(arch="linear", epochs=epochs, lr=config.lr, batch_size=config.batch_size,
                           seed=config.seed, checkpoints=min(10, epochs), min_steps=0)
        select = validation if config.select == "real" else selection_probe(twin, x[ho], labels[ho], probs[ho],
                                                                              input_shape, config.seed)
        with feature_matching(twin, model, input_shape, config.features if method == "best" else 0.0) as hints:
            student_fit = fit_student(sc, x[tr], labels[tr], soft=probs[tr], select=select,
                                      num_classes=len(class_names), model=model, extra_loss=hints,
                                      progress=progress_span(progress, 0.6, 1.0), cancelled=cancelled)
        fitted, budget = student_fit.model, {"epochs": epochs, "trained_on": len(tr)}
        selection = {k: v for k, v in student_fit.selection.items() if k != "history"}
    fitted.requires_grad_(False)
    info = {"seconds": round(time.perf_counter() - start, 2), "cpu_seconds": round(time.process_time() - cpu, 2),
            "synthesis_reused": reused, "synthesis": stats, **budget, "selection": selection,
            "config": asdict(config), "method": method}
    return fitted.eval(), info


def repair_engine(config: RepairConfig, input_shape, n: int) -> EngineConfig:
    """The engine settings of an image's best repair: ``config.best``'s (:func:`~vizcore.distill.methods.engine_for`
    of the default engine) for ``config.engine_steps`` steps, its memory bank ``n`` images, with ``config.features``'
    feature matching, its checkpoints ranked on the hold-out's images mixed in pairs (see :data:`IMAGE_REPAIR`)."""
    return replace(engine_for(config.best, default_engine(input_shape), n), steps=config.engine_steps, seed=config.seed,
                   features=config.features, select="mixed")


def _engine_repair(teacher: nn.Module, model: nn.Module, x: torch.Tensor | None, config: RepairConfig, *, input_shape,
                   num_classes: int, validation=None, progress: Progress | None = None,
                   cancelled: Callable[[], bool] | None = None) -> tuple[nn.Module, dict]:
    """Train the compressed ``model`` in the distillation engine with ``config.best``'s settings, on ``x`` (a fixed
    set, a tenth held out to select the checkpoint; None for an online method) and its generator. The compressed
    start stays a candidate: it is kept when it is closer to the teacher on the hold-out's mixed pairs (or, with
    ``select="real"``, is more accurate on ``validation``) than the engine's checkpoint."""
    images = hold = None
    if x is not None:
        tr, ho = holdout_split(len(x), 0.1, config.seed)
        images, hold = x[tr], x[ho]
    untouched = copy.deepcopy(model)
    res = distill(teacher, model, repair_engine(config, input_shape, config.n), input_shape=input_shape,
                  num_classes=num_classes, images=images, holdout=hold, progress=progress, cancelled=cancelled)
    if config.select == "real":
        jx, jy = validation
        score, start = agreement(model, jx, jy), agreement(untouched, jx, jy)
    else:  # as the engine ranks its checkpoints: on the hold-out (an online method: the images it kept) mixed in pairs
        mixed = mixed_pairs(hold if hold is not None else res.bank, config.seed)
        logits = predict_logits(teacher, mixed)
        score, start = -divergence(model, mixed, logits), -divergence(untouched, mixed, logits)
    keep_start = start > score
    return untouched if keep_start else model, {"score": max(start, score),
                                                "step": 0 if keep_start else res.selection["step"],
                                                "start_score": start, "engine_score": score}


def estimate_repair_seconds(teacher: nn.Module, student: nn.Module, methods, config: RepairConfig, *, input_shape,
                            class_names: list[str], dataset: str = "") -> dict[str, float]:
    """Seconds each repair of ``methods`` will take here, in the order a job runs them (a set made for one repair
    is reused by the next, as :func:`compression_table` does): each synthesis timed on a short probe
    (:func:`vizcore.distill.methods.synthesis_seconds`) and the fine-tuning on a few batches, scaled to the run."""
    from vizcore.core.hooks import frozen_copy, trainable_copy
    from vizcore.distill.methods import step_seconds, synthesis_seconds

    config = config.for_input(input_shape)
    twin = frozen_copy(teacher)
    batches = 8
    x = noise_inputs("gaussian", batches * config.batch_size, input_shape, config.seed)
    probs = torch.softmax(twin(x), 1)

    def fine_tune(epochs: int, hints: float = 0.0) -> float:
        model = trainable_copy(student)
        sc = StudentConfig(arch="linear", epochs=epochs, lr=config.lr, batch_size=config.batch_size,
                           seed=config.seed, checkpoints=1, min_steps=0)
        start = time.perf_counter()
        with feature_matching(twin, model, input_shape, hints) as extra:
            fit_student(sc, x, probs.argmax(1), soft=probs, num_classes=len(class_names), model=model,
                        extra_loss=extra)
        return time.perf_counter() - start

    fine_tune(1)  # the first call in a process pays for imports (the optimizer's first use loads torch._dynamo)
    per_batch = fine_tune(2) / (2 * batches)
    # the best repair's hints cost a teacher pass per batch; timed only where the best repair fine-tunes (not in the engine)
    hinted = config.features and any(m == "best" and not uses_engine(m, input_shape, config) for m in methods)
    per_batch_hints = fine_tune(2, config.features) / (2 * batches) if hinted else per_batch
    made, out = {None}, {}
    for m in methods:
        if uses_engine(m, input_shape, config):
            out[m] = config.engine_steps * step_seconds(twin, student, repair_engine(config, input_shape, config.n),
                                                        input_shape=input_shape, num_classes=len(class_names))
        else:
            batches_per_epoch = -(-int(0.9 * config.n_for(m)) // config.batch_size)
            out[m] = (per_batch_hints if m == "best" else per_batch) * batches_per_epoch * config.epochs_for(m)
        if (key := set_key(m, input_shape, config.best)) not in made:
            out[m] += synthesis_seconds(twin, _synthesis(m, config, input_shape), input_shape=input_shape,
                                        class_names=class_names, dataset=dataset)
            made.add(key)
    return out


# ---------------------------------------------------------------------------------------------- the seed's table

JOB_KIND = "compression"
SEED_RATIOS = {"uci-shuttle": 8.17, "uci-pendigits": 8.07, "uci-letter": 4.13}  # seed 004's table, about 8x, 8x, 4x


def _report(model: nn.Module, test: tuple[torch.Tensor, torch.Tensor], class_names: list[str]) -> dict:
    from vizcore.metrics import evaluate_model

    rep = evaluate_model(model, test[0], test[1], class_names)
    return {"accuracy": rep["accuracy"], "per_class_recall": [c["recall"] for c in rep["per_class"]]}


def compression_table(teacher: nn.Module, *, ratio: float | None = None, ranks: dict | None = None,
                      methods: tuple[str, ...] = ("uniform", "gaussian", "kegnet", "best"),
                      config: RepairConfig = RepairConfig(), class_names: list[str], input_shape, dataset: str = "",
                      test: Callable[[], tuple[torch.Tensor, torch.Tensor]], cache: dict | None = None,
                      validation: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None,
                      progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> dict:
    """Seed 004's table for one model: Original, T (Tucker alone) and T + each repair in ``methods``.

    ``test`` returns the real test split; it is called once, after every model is final. ``validation`` returns
    a real validation split, read only for ``config.select == "real"`` (the seed's protocol). ``cache``: see
    :func:`synthetic_inputs` (pass one dict to several ratios of one teacher). Returns
    ``{"rows": [{"approach", "accuracy", "compression", "seconds", "cpu_seconds", "per_class_recall"}], "ranks",
    ...}`` (a repair's ``synthesis_reused`` says its set came from ``cache``, so its seconds exclude making it) and the
    models themselves under ``"models"`` (approach -> module) for a caller that keeps one.
    """
    config = config.for_input(input_shape)
    student, info = compress_model(teacher, ratio=ratio, ranks=ranks, split=config.split)
    models: dict[str, nn.Module] = {"Original": teacher, "T": student}
    seconds = {"Original": {}, "T": {}}
    cache = {} if cache is None else cache
    val = validation() if config.select == "real" and validation is not None and methods else None
    for i, method in enumerate(methods):
        label = repair_label(method, input_shape, config)
        span = progress_span(progress, i / len(methods), (i + 1) / len(methods))
        if span:
            span(0.0, f"{label}: synthesizing and fine-tuning")
        models[label], rep = repair(teacher, student, method, config, input_shape=input_shape,
                                    class_names=class_names, dataset=dataset, cache=cache, progress=span,
                                    cancelled=cancelled, validation=val)
        seconds[label] = {k: rep[k] for k in ("seconds", "cpu_seconds", "synthesis_reused")}
    if not dist.is_main():  # under torchrun rank 0 alone reads the test split and reports
        return {"models": models}
    real = test()  # read once, for the report only
    rows = [{"approach": label, **_report(m, real, class_names),
             "compression": 1.0 if label == "Original" else info["ratio"],
             **({"seconds": 0.0, "cpu_seconds": 0.0} | seconds[label])}
            for label, m in models.items()]
    return {"rows": rows, "ranks": info["ranks"], "params_before": info["params_before"],
            "params_after": info["params_after"], "class_names": list(class_names), "models": models}


def real_validation(ds, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A tenth of the real training split (seeded): the validation set of the seed's protocol (``select="real"``)."""
    _, ho = holdout_split(len(ds.train_x), 0.1, seed)
    return ds.train_x[ho], ds.train_y[ho]


def start_compression_job(teacher_id: str, *, dataset: str | None = None, ratio: float | None = None,
                          ranks: dict | None = None, methods: tuple[str, ...] = ("uniform", "gaussian", "kegnet", "best"),
                          config: RepairConfig = RepairConfig(), save_as: str | None = None, overwrite: bool = False,
                          wait: bool = False, data_root: str | None = None):
    """:func:`compression_table` as a background job (progress, Cancel, atomic result). With ``save_as`` the
    best-scoring repaired model (by its synthetic hold-out, never the test set: the last of ``methods``) is
    saved to the workspace with a card naming its source, ranks and ratio. ``data_root``: where the dataset's
    files are (see :func:`vizcore.data.load_dataset`)."""
    from vizcore import zoo
    from vizcore.core.jobs import start_job
    from vizcore.data import load_dataset

    entry = zoo.get_entry(teacher_id)
    ds_name = dataset or entry.card.dataset
    config = config.for_input(entry.card.input_shape)

    def work(ctx) -> dict | None:
        teacher = zoo.load_model(entry)
        ds = load_dataset(ds_name, root=data_root)
        out = compression_table(teacher, ratio=ratio, ranks=ranks, methods=methods, config=config,
                                class_names=list(ds.class_names), input_shape=ds.input_shape, dataset=ds_name,
                                test=lambda: (ds.test_x, ds.test_y), validation=lambda: real_validation(ds, config.seed),
                                progress=ctx.progress if ctx else None,
                                cancelled=ctx.cancelled if ctx else None)
        models = out.pop("models")
        if ctx is None:  # another rank of a torchrun job
            return None
        if save_as:
            last = out["rows"][-1]
            saved = save_compressed(models[last["approach"]], entry, out, last["approach"], save_as, ds, overwrite)
            out["saved"] = saved.id
        return out

    if not dist.is_main():  # under torchrun: the synthesis shared out, rank 0 runs the job and writes
        return work(None)
    title = f"compress {entry.id} {ratio or 'ranks'}x ({', '.join(methods) or 'no repair'})"
    return start_job(JOB_KIND, title, work, {"teacher": entry.id, "dataset": ds_name, "ratio": ratio, "ranks": ranks,
                                               "methods": list(methods), "repair": asdict(config)}, wait=wait)


def save_compressed(model: nn.Module, source, table: dict, approach: str, name: str, ds, overwrite: bool = False):
    """Save a compressed (and perhaps repaired) model to the workspace as a normal model: base architecture,
    ``compression`` (source, ranks, ratio, repair) on its card, the source's preprocessing, test metrics."""
    from vizcore.metrics import evaluate_model
    from vizcore.zoo import ModelCard, save_model

    row = next(r for r in table["rows"] if r["approach"] == approach)
    card = ModelCard(
        name=name, dataset=source.card.dataset, arch=source.card.arch, input_shape=list(source.card.input_shape),
        class_names=list(source.card.class_names), preprocessing=dict(source.card.preprocessing),
        metrics=evaluate_model(model, ds.test_x, ds.test_y, ds.class_names),
        compression={"from": source.id, "ranks": table["ranks"], "ratio": row["compression"],
                     "params_before": table["params_before"], "params_after": table["params_after"],
                     "repair": approach},
        notes=f"{approach} of {source.id}, {row['compression']:.2f}x fewer parameters (seed 004)",
    )
    return save_model(model, card, overwrite=overwrite)


def start_kegnet_pictures_job(teacher_id: str, *, walk: tuple[int, int] = (0, 5), steps: int = 400,
                              generators: int = 5, wait: bool = False):
    """Train KegNet's generators for a model in the background and keep seed 004's pictures as the result:
    each class at z = 0 and averaged over z, per generator, and the latent walk from class ``walk[0]`` to
    ``walk[1]`` (nested lists, so the result stays JSON)."""
    from vizcore import zoo
    from vizcore.core.hooks import frozen_copy
    from vizcore.core.jobs import start_job
    from vizcore.distill.kegnet import kegnet_pictures, train_kegnet_generators
    from vizcore.distill.synthesis import SynthesisConfig

    entry = zoo.get_entry(teacher_id)
    config = SynthesisConfig(method="kegnet", generators=generators, train_steps=steps,
                             batch_size=256 if len(entry.card.input_shape) == 1 else 64)

    def work(ctx) -> dict:
        teacher = frozen_copy(zoo.load_model(entry))
        gens, stats = train_kegnet_generators(teacher, config, input_shape=tuple(entry.card.input_shape),
                                              num_classes=entry.card.num_classes, dataset=entry.card.dataset,
                                              progress=ctx.progress, cancelled=ctx.cancelled)
        pics = kegnet_pictures(gens, entry.card.num_classes, config.noise(), walk=walk)
        return {"stats": stats, "walk_classes": list(walk), **{k: v.tolist() for k, v in pics.items()}}

    return start_job("kegnet-pictures", f"KegNet pictures of {entry.id} ({generators} generators x {steps} steps)",
                     work, {"teacher": entry.id, "walk": list(walk), "steps": steps, "generators": generators}, wait=wait)
