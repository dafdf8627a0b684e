"""Synthesis sharded across the ranks of a torchrun job, the same set whatever the number of processes.

A per-image method (generator AM, pixel AM, mixed AM, uniform noise) makes its ``n`` images in chunks of
``config.shard_images``; chunk ``j`` is made and labelled with its own seed ``item_seed(seed, j)`` (derived from the
global seed and the chunk's index, never the rank), each rank makes a contiguous block of chunks, and every
rank gathers all of them in chunk order. The chunking does not depend on the world size, so one process and N
processes make byte-identical sets (same device, same threads per process). Methods that train one model for
the whole set (KegNet) or fix the images per class, are made whole by every rank (same seed, same set).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, replace

import torch
from torch import nn

from vizcore.core import distributed as dist
from vizcore.core.progress import Progress, progress_span
from vizcore.distill.synthesis import SynthesisConfig, SyntheticSet, synthesize

PER_IMAGE = ("generator-am", "pixel-am", "mixed-am", "uniform-noise")


def shardable(config: SynthesisConfig) -> bool:
    return config.method in PER_IMAGE and config.per_class is None


def chunk_config(config: SynthesisConfig, j: int, size: int) -> SynthesisConfig:
    """Chunk ``j``'s settings: ``size`` images and its own seed (pixel AM's visualization seed too)."""
    seed = dist.item_seed(config.seed, j)
    vis = replace(config.visualize, seed=seed) if config.visualize is not None else None
    return replace(config, n=size, seed=seed, visualize=vis)


def _merge_stats(parts: list[tuple[int, dict]]) -> dict:
    """Chunk statistics: the reached fraction weighted by chunk size, counts summed."""
    total = sum(n for n, _ in parts)
    out = {"chunks": len(parts)}
    if all("reached_fraction" in s for _, s in parts):
        out["reached_fraction"] = sum(n * s["reached_fraction"] for n, s in parts) / max(total, 1)
    for key in ("generators", "class_counts"):
        if all(key in s for _, s in parts):
            vals = [s[key] for _, s in parts]
            out[key] = sum(vals) if isinstance(vals[0], int) else [sum(v) for v in zip(*vals)]
    return out


def synthesize_sharded(teacher: nn.Module, config: SynthesisConfig, *, input_shape, class_names: list[str],
                       dataset: str = "", teacher_id: str = "", real=None, progress: Progress | None = None,
                       cancelled: Callable[[], bool] | None = None) -> SyntheticSet:
    """:func:`~vizcore.distill.synthesis.synthesize`, this rank's share of it; every rank returns the whole set."""
    kw = {"input_shape": input_shape, "class_names": class_names, "dataset": dataset, "teacher_id": teacher_id,
          "real": real, "cancelled": cancelled}
    if not shardable(config):
        return synthesize(teacher, config, progress=progress, **kw)
    step = config.shard_images
    sizes = [min(step, config.n - s) for s in range(0, config.n, step)]
    mine = dist.shard(len(sizes))
    made = []
    for i, j in enumerate(mine):
        span = progress_span(progress, i / len(mine), (i + 1) / len(mine))
        s = synthesize(teacher, chunk_config(config, j, sizes[j]), progress=span, **kw)
        made.append((j, s.images, s.labels, s.logits, s.probs, s.stats))
    chunks = sorted((c for part in dist.gather(made) for c in part), key=lambda c: c[0])
    images, labels, logits, probs = (torch.cat([c[k] for c in chunks]) for k in range(1, 5))
    return SyntheticSet(images=images, labels=labels, logits=logits, probs=probs, class_names=list(class_names),
                        config={**asdict(config), "dataset": dataset}, teacher_id=teacher_id,
                        stats=_merge_stats([(len(c[1]), c[5]) for c in chunks]))


def synthetic_sha256(synth: SyntheticSet) -> str:
    """SHA-256 of a synthetic set's images and the teacher's logits on them."""
    return dist.sha256_tensors(synth.images, synth.logits)
