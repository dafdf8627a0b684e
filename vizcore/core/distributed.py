"""One job across processes, GPUs and machines with PyTorch's own distributed engine (``torch.distributed``).

``torchrun --nproc_per_node N -m vizcore ...`` starts N copies of the command and gives each the environment
variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init` joins the
process group they describe (gloo on CPU, nccl on CUDA). Without them every helper here answers as the one
process of a world of one, so the same code runs unchanged under ``python -m vizcore``.

What the long jobs do with it: :func:`shard` splits N items into contiguous blocks (rank order = item order, so
the gathered union is the single-process set), :func:`item_seed` derives each item's seed from the global seed
and the item's index (never the rank), :func:`gather` collects every rank's part, :func:`wrap` puts a model in
DistributedDataParallel (gradients all-reduced, Li et al. 2020, "PyTorch Distributed", VLDB), and only rank 0
writes artifacts (the jobs' ``atomic_write``; the other ranks get no job folder). A dead peer makes the survivors' next collective fail (gloo: at
once); a hung one, after ``VIZCORE_DIST_TIMEOUT`` seconds (default 1800, room for rank 0's pre-run estimate):
the job fails with a message instead of hanging.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as td
from torch import nn

from vizcore.core.layers import model_device


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init() -> bool:
    """Join the process group torchrun describes (idempotent); returns whether this is a distributed run."""
    if not launched() or not td.is_available():
        return False
    if td.is_initialized():
        return True
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank())
    timeout = timedelta(seconds=float(os.environ.get("VIZCORE_DIST_TIMEOUT", "1800")))
    td.init_process_group("nccl" if cuda else "gloo", timeout=timeout)
    return True


def teardown() -> None:
    """Leave the process group (after the last collective; safe to call when there is none)."""
    if active():
        td.destroy_process_group()


_ALONE = [0]  # depth of alone() blocks


def active() -> bool:
    return td.is_available() and td.is_initialized() and not _ALONE[0]


@contextlib.contextmanager
def alone():
    """Work one rank does by itself (rank 0's pre-run estimate): inside, every helper here answers as the one
    process of a world of one, so nothing in it waits on a collective the other ranks never join."""
    _ALONE[0] += 1
    try:
        yield
    finally:
        _ALONE[0] -= 1


def rank() -> int:
    return td.get_rank() if active() else 0


def world_size() -> int:
    return td.get_world_size() if active() else 1


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def device() -> torch.device:
    """This process's device: its local GPU when CUDA is present, else the CPU."""
    return torch.device("cuda", local_rank()) if torch.cuda.is_available() else torch.device("cpu")


def autocast(dev: torch.device):
    """Mixed precision (bfloat16) on CUDA; nothing on the CPU."""
    if dev.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def item_seed(seed: int, index: int) -> int:
    """The seed of item ``index`` of a job seeded ``seed``: item 0 keeps the global seed (a one-item job is the
    job it always was); the others draw theirs from a ``numpy`` SeedSequence of (seed, index)."""
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(index)]).generate_state(1)[0])


def rank_seed(seed: int) -> int:
    """A seed of this rank's own random stream (the global seed itself in a world of one)."""
    return int(seed) if world_size() == 1 else item_seed(seed, 1_000_003 + rank())


def shard(n: int, r: int | None = None, world: int | None = None) -> range:
    """This rank's contiguous block of ``range(n)``; the blocks of ranks 0..W-1, in order, are ``range(n)``."""
    r, world = rank() if r is None else r, world_size() if world is None else world
    base, extra = divmod(n, world)
    start = r * base + min(r, extra)
    return range(start, start + base + (1 if r < extra else 0))


def gather(obj) -> list:
    """Every rank's ``obj`` (picklable), in rank order, on every rank."""
    if world_size() == 1:
        return [obj]
    out: list = [None] * world_size()
    td.all_gather_object(out, obj)
    return out


def broadcast(obj):
    """Rank 0's ``obj`` on every rank."""
    if world_size() == 1:
        return obj
    box = [obj]
    td.broadcast_object_list(box, src=0)
    return box[0]


def any_true(flag: bool) -> bool:
    """Whether ``flag`` is true on any rank (a collective: every rank must call it at the same point)."""
    if world_size() == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0], device=device() if td.get_backend() == "nccl" else "cpu")
    td.all_reduce(t, op=td.ReduceOp.MAX)
    return bool(t.item() > 0)


def wrap(model: nn.Module) -> nn.Module:
    """``model`` in DistributedDataParallel when there are several ranks (rank 0's weights are broadcast and
    every backward all-reduces the gradients), else ``model`` itself."""
    if world_size() == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel

    dev = model_device(model)
    return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)


def sampler_indices(n: int, seed: int) -> torch.Tensor | None:
    """This rank's indices of a set of ``n`` items under a shuffled ``DistributedSampler`` (None: one rank)."""
    if world_size() == 1:
        return None
    from torch.utils.data import DistributedSampler

    return torch.tensor(list(DistributedSampler(range(n), num_replicas=world_size(), rank=rank(), shuffle=True,
                                                seed=seed)), dtype=torch.long)


def sha256_tensors(*tensors: torch.Tensor) -> str:
    """SHA-256 of the tensors' dtypes, shapes and bytes, in order."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
