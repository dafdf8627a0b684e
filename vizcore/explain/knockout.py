"""Filter knockouts as masks, fast re-evaluation from cached activations, and knockout curves.

A knockout zeroes the output of some (layer, filter) pairs — (layer, unit) for dense layers — for one call;
the weights are never written (seed 002 section 4.2.2). :class:`KnockoutEvaluator` answers "what does the
network do on this evaluation set with these filters removed" quickly enough for a slider:

* for a flat ``nn.Sequential`` it caches, once, the input and output of every conv / linear layer that
  follows a knockable layer. A mask whose earliest layer is ``L`` only changes the next weighted layer ``N``'s
  output by the contribution of the knocked channels, so ``N``'s output is the cached one minus a small
  convolution (or matrix product) over the knocked channels alone; the rest of the network runs from there.
* any other model (a TorchScript upload, a nested module) falls back to a full forward pass with
  :func:`vizcore.core.hooks.channel_mask`.

Both paths hold the model's lock, so sessions sharing one cached model each get their own serial result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vizcore.core.hooks import channel_mask, fast_layout, guarded
from vizcore.core.progress import check_cancelled
from vizcore.core.layers import knockable_layers, model_device

Mask = Mapping[str, Sequence[int]]
# Modules that act on each channel separately, so a knocked channel stays a function of itself alone.
_CHANNELWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.MaxPool2d, nn.AvgPool2d,
                nn.Dropout, nn.Identity, nn.Flatten, nn.BatchNorm2d, nn.BatchNorm1d)


def _weighted(m: nn.Module) -> bool:
    return isinstance(m, (nn.Conv2d, nn.Linear))


def normalize_mask(model: nn.Module, mask: Mask) -> dict[str, tuple[int, ...]]:
    """Check a mask against the model and return it sorted, de-duplicated and without empty layers.

    Raises:
        ValueError: with the valid layer names or index range when a layer or filter does not exist.
    """
    widths = knockable_layers(model)
    out: dict[str, tuple[int, ...]] = {}
    for layer, idx in mask.items():
        if layer not in widths:
            raise ValueError(f"'{layer}' is not a knockable layer; choose one of {', '.join(widths)}")
        idx = sorted({int(i) for i in idx})
        bad = [i for i in idx if not 0 <= i < widths[layer]]
        if bad:
            raise ValueError(f"{layer} has filters 0..{widths[layer] - 1}; {bad} do not exist")
        if idx:
            out[layer] = tuple(idx)
    return {k: out[k] for k in widths if k in out}


def parse_filters(text: str) -> dict[str, list[int]]:
    """``"conv1:3,conv2:0,conv2:7"`` -> ``{"conv1": [3], "conv2": [0, 7]}`` (the CLI's ``--filters``)."""
    mask: dict[str, list[int]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        layer, sep, idx = part.rpartition(":")
        if not sep or not layer or not idx.strip().isdigit():
            raise ValueError(f"'{part}' is not LAYER:INDEX (for example conv2:5)")
        mask.setdefault(layer, []).append(int(idx))
    return mask


def format_filters(mask: Mask) -> str:
    """Inverse of :func:`parse_filters`."""
    return ",".join(f"{layer}:{i}" for layer, idx in mask.items() for i in idx)


def score_mask(scores: Mapping[str, Sequence[float]], top: Mapping[str, int], bottom: Mapping[str, int],
               extra: Mask | None = None) -> dict[str, list[int]]:
    """The filters chosen by score: each layer's ``top[layer]`` highest and ``bottom[layer]`` lowest scored ones
    (ties keep filter order), united with the hand-picked ``extra``; layers in the order of ``scores``."""
    mask: dict[str, set[int]] = {}
    for layer, s in scores.items():
        order = sorted(range(len(s)), key=lambda i: -s[i])
        k_top, k_bottom = top.get(layer, 0), bottom.get(layer, 0)
        chosen = set(order[:k_top]) | (set(order[-k_bottom:]) if k_bottom else set())
        if chosen:
            mask[layer] = chosen
    for layer, idx in (extra or {}).items():
        mask.setdefault(layer, set()).update(int(i) for i in idx)
    order = list(scores) + [layer for layer in mask if layer not in scores]
    return {layer: sorted(mask[layer]) for layer in order if layer in mask}


@dataclass(frozen=True)
class KnockoutResult:
    """What the network does on the evaluation set with a mask applied."""

    mask: dict[str, tuple[int, ...]]
    accuracy: float
    class_accuracy: np.ndarray  # (K,) recall of each class; nan for a class absent from the set
    confusion: np.ndarray  # (K, K) rows: true class, columns: predicted
    predictions: torch.Tensor  # (N,)

    def class_error(self, target: int) -> float:
        return 1.0 - float(self.class_accuracy[target])

    def to_dict(self, class_names: Sequence[str]) -> dict:
        return {
            "filters": {k: list(v) for k, v in self.mask.items()},
            "accuracy": self.accuracy,
            "class_accuracy": {c: (None if np.isnan(a) else float(a)) for c, a in zip(class_names, self.class_accuracy)},
            "confusion": self.confusion.tolist(),
        }


def _result(mask, pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> KnockoutResult:
    """Accuracy, per-class accuracy and confusion from one vector of predictions."""
    conf = torch.bincount(y * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes).numpy()
    support = conf.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class = np.where(support > 0, np.diag(conf) / np.maximum(support, 1), np.nan)
    return KnockoutResult(mask=dict(mask), accuracy=float((pred == y).float().mean()) if len(y) else 0.0,
                          class_accuracy=per_class, confusion=conf, predictions=pred)


def masked_logits(model: nn.Module, x: torch.Tensor, mask: Mask, batch_size: int = 1024,
                  cancelled: Callable[[], bool] | None = None) -> torch.Tensor:
    """Logits of a full forward pass with ``mask`` applied through hooks (the reference and the fallback);
    ``cancelled`` is asked before each batch."""
    mask = normalize_mask(model, mask)
    device = model_device(model)
    out = []
    with guarded(model), channel_mask(model, mask), torch.no_grad():
        for i in range(0, len(x), batch_size):
            check_cancelled(cancelled)
            out.append(model(x[i:i + batch_size].to(device)).float().cpu())
    return torch.cat(out) if out else torch.empty(0)


class KnockoutEvaluator:
    """Evaluate many masks on one model and one evaluation set, reusing cached activations.

    Args:
        model: the (shared) classifier; never modified.
        x, y: evaluation images (N, C, H, W) and labels (N,).
        num_classes: number of classes (default: the model's output width).

    The cache is rebuilt when the model's weights change (another tensor or an in-place update); build a new
    evaluator for another dataset or subset.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, num_classes: int | None = None,
                 batch_size: int = 1024, tail_batch: int = 256):
        self.model, self.x, self.y = model, x, y.long().cpu()
        self.batch_size, self.tail_batch = batch_size, tail_batch
        self.widths = knockable_layers(model)
        self._children = list(model.named_children()) if isinstance(model, nn.Sequential) else []
        self._pos = {n: i for i, (n, _) in enumerate(self._children)}
        self.fast = bool(self._children) and all(n in self._pos for n in self.widths)
        self._lock = threading.Lock()
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._logits: torch.Tensor | None = None
        self._version = None
        self._zero_out: dict[str, torch.Tensor] = {}
        self._results: dict[tuple, KnockoutResult] = {}
        self.num_classes = num_classes or self.base_logits().shape[1]

    # -- cache ---------------------------------------------------------------------------------------------
    def _weights_version(self):
        return tuple((p.data_ptr(), p._version) for p in self.model.parameters())

    def _next_weighted(self, layer: str) -> int | None:
        """Index of the weighted child after ``layer`` if only channel-wise modules lie between (else None)."""
        i = self._pos[layer]
        for j in range(i + 1, len(self._children)):
            m = self._children[j][1]
            if _weighted(m):
                if isinstance(m, nn.Conv2d) and (m.groups != 1 or m.padding_mode != "zeros"):
                    return None
                return j
            if not isinstance(m, _CHANNELWISE):
                return None
        return None

    def _ensure_cache(self) -> None:
        """One full pass that stores the input and output of each weighted layer that follows a knockable one."""
        version = self._weights_version()
        if self._version == version and self._logits is not None:
            return
        wanted = {j for layer in self.widths if (j := self._next_weighted(layer)) is not None} if self.fast else set()
        ins: dict[int, list] = {j: [] for j in wanted}
        outs: dict[int, list] = {j: [] for j in wanted}
        logits, zero_out = [], {}
        device = model_device(self.model)
        with guarded(self.model), torch.no_grad():
            for b in range(0, len(self.x), self.batch_size):
                h = self.x[b:b + self.batch_size].to(device)
                if not self.fast:
                    logits.append(self.model(h).float().cpu())
                    continue
                for j, (_, m) in enumerate(self._children):
                    if j in wanted:
                        ins[j].append(h)
                    h = m(h)
                    if j in wanted:
                        outs[j].append(h)
                logits.append(h.float().cpu())
            if self.fast:  # what a knocked channel looks like at the next weighted layer's input
                shapes = {}
                h = self.x[:1].to(device)
                for name, m in self._children:
                    h = m(h)
                    shapes[name] = h.shape[1:]
                for layer in self.widths:
                    j = self._next_weighted(layer)
                    if j is not None:
                        z = torch.zeros(1, *shapes[layer], device=device)
                        for _, m in self._children[self._pos[layer] + 1:j]:
                            z = m(z)
                        zero_out[layer] = z
        # channels-last (the shared model's weights are not, and a 1-channel input cannot say): the tail's
        # max-pooling runs about 10x faster
        self._cache = {j: (fast_layout(torch.cat(ins[j])), fast_layout(torch.cat(outs[j]))) for j in wanted}
        self._logits = torch.cat(logits) if logits else torch.empty(0, 0)
        self._zero_out, self._version = zero_out, version

    def base_logits(self) -> torch.Tensor:
        """Logits of the intact network on the evaluation set."""
        with self._lock:
            self._ensure_cache()
            return self._logits

    # -- evaluation ----------------------------------------------------------------------------------------
    def _delta(self, layer: str, idx: Sequence[int], j: int, rows: slice) -> torch.Tensor:
        """Change of child ``j``'s output on ``rows`` when channels ``idx`` of ``layer`` are zeroed (``j`` is linear)."""
        inp = self._cache[j][0][rows]
        c = self.widths[layer]
        k = torch.as_tensor(list(idx), device=inp.device)
        diff = inp.reshape(len(inp), c, -1)[:, k] - self._zero_out[layer].reshape(1, c, -1)[:, k]
        nxt = self._children[j][1]
        if isinstance(nxt, nn.Conv2d):  # channels-last like the cache: _tail's subtraction then reads both in order
            diff = fast_layout(diff.reshape(len(inp), len(k), *inp.shape[2:]))
            return F.conv2d(diff, nxt.weight[:, k], None, nxt.stride, nxt.padding, nxt.dilation)
        w = nxt.weight.reshape(nxt.out_features, c, -1)[:, k].reshape(nxt.out_features, -1)
        return F.linear(diff.reshape(len(inp), -1), w)

    def _tail(self, mask: dict[str, tuple[int, ...]], j: int, rows: slice) -> torch.Tensor:
        """Logits on ``rows``: child ``j``'s cached output corrected for the earliest knocked layer, then the rest."""
        first = next(iter(mask))  # normalize_mask orders layers as in the network
        out = self._cache[j][1][rows]
        h = torch.sub(out, self._delta(first, mask[first], j, rows), out=torch.empty_like(out))  # out's layout
        for pos, (name, m) in enumerate(self._children[j:]):
            if pos:
                h = m(h)
            if name in mask:
                h[:, list(mask[name])] = 0
        return h.float().cpu()

    def logits(self, mask: Mask, cancelled: Callable[[], bool] | None = None) -> torch.Tensor:
        """Logits on the evaluation set with ``mask`` applied (cached tail when possible). ``cancelled`` is asked
        before each batch, on either path (a look-ahead whose step the person did not take stops early and lets go
        of the evaluator)."""
        mask = normalize_mask(self.model, mask)
        if not mask:
            return self.base_logits()
        with self._lock:
            self._ensure_cache()
            j = self._next_weighted(next(iter(mask))) if self.fast else None
            if j is None:
                return masked_logits(self.model, self.x, mask, self.batch_size, cancelled)
            with guarded(self.model), torch.no_grad():
                step, parts = self.tail_batch, []
                for b in range(0, len(self.x), step):
                    check_cancelled(cancelled)
                    parts.append(self._tail(mask, j, slice(b, b + step)))
                return torch.cat(parts)

    def evaluate(self, mask: Mask, cancelled: Callable[[], bool] | None = None) -> KnockoutResult:
        """Accuracy, per-class accuracy and confusion matrix with ``mask`` applied, from one pass (``cancelled``:
        see :meth:`logits`).

        The last 64 results are remembered (a slider moved back and forth costs nothing the second time)."""
        norm = normalize_mask(self.model, mask)
        key = self._weights_version(), tuple(norm.items())
        if (hit := self._results.get(key)) is not None:
            return hit
        result = _result(norm, self.logits(norm, cancelled).argmax(1), self.y, self.num_classes)
        with self._lock:
            self._results[key] = result
            while len(self._results) > 64:
                self._results.pop(next(iter(self._results)))
        return result


# -- evaluation data ---------------------------------------------------------------------------------------
def eval_subset(x: torch.Tensor, y: torch.Tensor, n: int | None = 2000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of ``n`` test images (all when ``n`` is None or larger); app and CLI share it."""
    if n is None or n >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return x[idx], y[idx]



def class_images(x: torch.Tensor, y: torch.Tensor, target: int, n: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of class ``target`` (training images score the filters; the test set judges them)."""
    idx = (y == target).nonzero().flatten()[:n]
    if len(idx) == 0:
        raise ValueError(f"there are no images of class {target} to score the filters with")
    return x[idx], y[idx]


# -- knockout curves ---------------------------------------------------------------------------------------
Ranking = list[tuple[str, int, float]]  # (layer, filter, score), most important first


@dataclass(frozen=True)
class Curve:
    """Error after knocking out the first k filters of an order, k = 0..K (seed 002 Figures 4.1, 4.2)."""

    label: str
    k: list[int]
    class_error: list[float]
    overall_error: list[float]
    class_error_std: list[float] | None = None  # spread over seeds (random order)
    overall_error_std: list[float] | None = None

    @property
    def class_auc(self) -> float:
        """Mean class error over k = 0..K (area under the curve divided by K; lower = order hurts less)."""
        return float(np.trapezoid(self.class_error, self.k) / max(self.k[-1], 1))

    @property
    def overall_auc(self) -> float:
        return float(np.trapezoid(self.overall_error, self.k) / max(self.k[-1], 1))

    def to_dict(self) -> dict:
        d = {"label": self.label, "k": self.k, "class_error": self.class_error, "overall_error": self.overall_error,
             "class_auc": self.class_auc, "overall_auc": self.overall_auc}
        if self.class_error_std is not None:
            d |= {"class_error_std": self.class_error_std, "overall_error_std": self.overall_error_std}
        return d


def knockout_curve(evaluator: KnockoutEvaluator, order: Sequence[tuple[str, int]], target: int, max_k: int,
                   label: str = "", *, cancelled: Callable[[], bool] | None = None) -> Curve:
    """Knock out ``order[:k]`` cumulatively for k = 0..max_k; class error on ``target`` and overall error."""
    max_k = min(max_k, len(order))
    cls, overall = [], []
    for k in range(max_k + 1):
        check_cancelled(cancelled)
        mask: dict[str, list[int]] = {}
        for layer, i, *_ in order[:k]:
            mask.setdefault(layer, []).append(i)
        r = evaluator.evaluate(mask)
        cls.append(r.class_error(target))
        overall.append(1.0 - r.accuracy)
    return Curve(label, list(range(max_k + 1)), cls, overall)


def random_curve(evaluator: KnockoutEvaluator, filters: Sequence[tuple[str, int]], target: int, max_k: int,
                 seeds: Sequence[int] = (0, 1, 2, 3, 4), *, cancelled: Callable[[], bool] | None = None) -> Curve:
    """Mean and standard deviation of knockout curves over random orders (the baseline seed 002 lacks)."""
    curves = []
    for s in seeds:
        perm = torch.randperm(len(filters), generator=torch.Generator().manual_seed(s)).tolist()
        curves.append(knockout_curve(evaluator, [filters[p] for p in perm], target, max_k, cancelled=cancelled))
    c = np.array([cv.class_error for cv in curves])
    o = np.array([cv.overall_error for cv in curves])
    return Curve("random", curves[0].k, c.mean(0).tolist(), o.mean(0).tolist(), c.std(0).tolist(), o.std(0).tolist())
