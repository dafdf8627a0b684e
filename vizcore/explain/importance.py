"""Is PG a good measure of filter importance? Rankings compared against the measured oracle.

Each ranking scores every filter of the chosen layers for one class (higher = more important):

* ``pg``: class-averaged prediction-gradient norm (seed 002 section 4.2.2, from :mod:`vizcore.explain.gradients`);
* ``weight_l1``: L1 norm of the filter's weights (the classic pruning criterion);
* ``taylor``: first-order Taylor estimate of the loss change, mean over images of
  |mean over positions of activation x d loss / d activation| (Molchanov et al. 2017);
* ``oracle``: the class-accuracy drop measured when the filter alone is knocked out.

:func:`compare_rankings` reports each ranking's Spearman correlation with the oracle and the area under its
knockout curves; a random order (mean and spread over seeds) is the baseline. This goes beyond seed 002.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from torch import nn

from vizcore.core.hooks import capture, guarded
from vizcore.explain.gradients import rank_filters
from vizcore.explain.knockout import Curve, KnockoutEvaluator, knockout_curve, random_curve
from vizcore.core.layers import default_layers, model_device
from vizcore.core.config import Config
from vizcore.core.progress import check_cancelled

Scores = dict[str, torch.Tensor]  # layer -> (C,) score per filter
RANKINGS = ("pg", "weight_l1", "taylor", "oracle")


def pg_scores(model: nn.Module, x: torch.Tensor, target: int, layers: Sequence[str], norm: str = "fro") -> Scores:
    """Class-averaged PG score per filter (issue 4's :func:`vizcore.explain.gradients.class_filter_scores`)."""
    from vizcore.explain.gradients import class_filter_scores

    scores = class_filter_scores(model, x, target, layers=list(layers), norm=norm)
    return {n: scores[n].detach().float().cpu() for n in layers}


def weight_l1_scores(model: nn.Module, layers: Sequence[str]) -> Scores:
    """L1 norm of each filter's (or unit's) incoming weights."""
    return {n: model.get_submodule(n).weight.detach().abs().flatten(1).sum(1).float().cpu() for n in layers}


def taylor_scores(model: nn.Module, x: torch.Tensor, y: torch.Tensor, layers: Sequence[str],
                  batch_size: int = 256) -> Scores:
    """Molchanov et al.'s first-order Taylor score of the cross-entropy loss, averaged over ``x``."""
    device = model_device(model)
    totals = {n: None for n in layers}
    with guarded(model), capture(model, layers) as acts, torch.enable_grad():
        for b in range(0, len(x), batch_size):
            xb = x[b:b + batch_size].to(device).requires_grad_(True)
            loss = F.cross_entropy(model(xb), y[b:b + batch_size].to(device), reduction="sum")
            grads = torch.autograd.grad(loss, [acts[n] for n in layers])
            for n, g in zip(layers, grads):
                a = acts[n]
                s = (a * g).reshape(len(a), a.shape[1], -1).mean(2).abs().sum(0).detach().float().cpu()
                totals[n] = s if totals[n] is None else totals[n] + s
    return {n: totals[n] / max(len(x), 1) for n in layers}


def oracle_scores(evaluator: KnockoutEvaluator, target: int, layers: Sequence[str], *,
                  progress: Callable[[float, str], None] | None = None,
                  cancelled: Callable[[], bool] | None = None) -> Scores:
    """Accuracy drop on class ``target`` when each filter is knocked out alone (the ground truth)."""
    base = float(evaluator.evaluate({}).class_accuracy[target])
    total = sum(evaluator.widths[n] for n in layers)
    done, out = 0, {}
    for n in layers:
        drops = []
        for i in range(evaluator.widths[n]):
            check_cancelled(cancelled)
            drops.append(base - float(evaluator.evaluate({n: [i]}).class_accuracy[target]))
            done += 1
            if progress:
                progress(done / total, f"oracle: knocked {n}:{i} alone")
        out[n] = torch.tensor(drops)
    return out


def spearman(a: Scores, b: Scores) -> float:
    """Spearman rank correlation between two score sets over the same filters (nan if one is constant)."""
    va = torch.cat([a[n] for n in a]).numpy()
    vb = torch.cat([b[n] for n in a]).numpy()
    if np.ptp(va) == 0 or np.ptp(vb) == 0:
        return float("nan")
    return float(spearmanr(va, vb).statistic)


@dataclass(frozen=True)
class StudyConfig(Config):
    """One knockout study: curves for a class and the ranking comparison (serialized next to its results)."""

    target: int
    max_k: int = 20
    layers: tuple[str, ...] = ()  # empty: all conv layers
    random_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    n_rank_images: int = 500  # training images of the class used to compute PG and Taylor scores
    pg_norm: str = "fro"


def compare_rankings(model: nn.Module, evaluator: KnockoutEvaluator, rank_x: torch.Tensor, rank_y: torch.Tensor,
                     config: StudyConfig, *, progress: Callable[[float, str], None] | None = None,
                     cancelled: Callable[[], bool] | None = None) -> dict:
    """Knockout curves (highest- and lowest-first for each ranking, random baseline) and the comparison table.

    Args:
        model: the classifier the evaluator evaluates.
        evaluator: evaluation set (the error curves are measured on it).
        rank_x, rank_y: images of class ``config.target`` (and their labels) used to score the filters.
    Returns:
        ``{"scores": {ranking: {layer: [...]}}, "curves": [Curve.to_dict()...], "table": [row...]}``.
    """
    report = progress or (lambda f, m: None)
    layers = list(config.layers) or default_layers(model)
    t = config.target
    report(0.0, "scoring filters")
    scores: dict[str, Scores] = {
        "pg": pg_scores(model, rank_x, t, layers, config.pg_norm),
        "weight_l1": weight_l1_scores(model, layers),
        "taylor": taylor_scores(model, rank_x, rank_y, layers),
    }
    scores["oracle"] = oracle_scores(evaluator, t, layers, progress=lambda f, m: report(0.05 + 0.35 * f, m),
                                     cancelled=cancelled)
    filters = [(n, i) for n in layers for i in range(evaluator.widths[n])]
    max_k = min(config.max_k, len(filters))
    curves: list[Curve] = []
    table = []
    steps = 2 * len(RANKINGS) + 1
    for s, name in enumerate(RANKINGS):
        order = [(n, i) for n, i, _ in rank_filters(scores[name])]
        hi = knockout_curve(evaluator, order, t, max_k, f"{name} highest-first", cancelled=cancelled)
        report(0.4 + 0.6 * (2 * s + 1) / steps, f"{name}: highest-first curve")
        lo = knockout_curve(evaluator, order[::-1], t, max_k, f"{name} lowest-first", cancelled=cancelled)
        report(0.4 + 0.6 * (2 * s + 2) / steps, f"{name}: lowest-first curve")
        curves += [hi, lo]
        table.append({"ranking": name, "spearman_vs_oracle": 1.0 if name == "oracle" else spearman(scores[name], scores["oracle"]),
                      "class_auc_highest_first": hi.class_auc, "class_auc_lowest_first": lo.class_auc,
                      "overall_auc_highest_first": hi.overall_auc, "overall_auc_lowest_first": lo.overall_auc})
    rnd = random_curve(evaluator, filters, t, max_k, config.random_seeds, cancelled=cancelled)
    curves.append(rnd)
    rand_rho = [spearman({n: torch.rand(evaluator.widths[n], generator=torch.Generator().manual_seed(1000 * s + j))
                          for j, n in enumerate(layers)}, scores["oracle"]) for s in config.random_seeds]
    table.append({"ranking": "random", "spearman_vs_oracle": float(torch.tensor(rand_rho).nanmean()),
                  "class_auc_highest_first": rnd.class_auc, "class_auc_lowest_first": rnd.class_auc,
                  "overall_auc_highest_first": rnd.overall_auc, "overall_auc_lowest_first": rnd.overall_auc})
    report(1.0, "done")
    return {"layers": layers, "scores": {k: {n: v.tolist() for n, v in sc.items()} for k, sc in scores.items()},
            "curves": [c.to_dict() for c in curves], "table": table}
