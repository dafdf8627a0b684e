"""Context managers that attach hooks to a model for one call and always take them off again.

Models are shared (the app caches one instance for every browser session), so every operation that attaches
hooks or switches modes holds the model's lock for its duration and restores ``training`` and
``requires_grad`` in ``finally`` (the pattern of torch-cam's ``_CAM`` and captum's layer attribution).
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
from torch import nn

_LOCKS: "weakref.WeakKeyDictionary[nn.Module, threading.RLock]" = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def model_lock(model: nn.Module) -> threading.RLock:
    """The re-entrant lock that serializes hook-using operations on ``model``."""
    with _LOCKS_GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.RLock()
        return lock


@contextmanager
def guarded(model: nn.Module, eval_mode: bool = True) -> Iterator[nn.Module]:
    """Hold the model's lock; put it in eval mode; restore every module's mode (a student training with its dropout
    off stays so) and ``requires_grad`` afterwards."""
    with model_lock(model):
        modes = [(m, m.training) for m in model.modules()]
        flags = [(p, p.requires_grad) for p in model.parameters()]
        if eval_mode:
            model.eval()
        try:
            yield model
        finally:
            for m, mode in modes:
                m.training = mode
            for p, flag in flags:
                p.requires_grad_(flag)


def trainable_copy(model: nn.Module) -> nn.Module:
    """A private float32 CPU copy of ``model``, taken under its lock, whose every parameter takes gradients (a
    compressed model to fine-tune, or to time a training step on): :func:`frozen_copy`'s opposite."""
    with model_lock(model):
        twin = copy.deepcopy(model)
    return twin.float().cpu().requires_grad_(True)


def frozen_copy(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A private eval-mode copy of a (possibly shared) model with gradients off, taken under its lock.

    Long ascents and syntheses work on the copy: the shared model stays free for other pages and its weights,
    mode and hooks cannot change. Conv models are copied channels-last (oneDNN's fast layout on CPU);
    ``dtype=torch.bfloat16`` halves the arithmetic where the processor has bf16 units.
    """
    with model_lock(model):
        twin = copy.deepcopy(model)
    twin.eval().requires_grad_(False)
    if any(isinstance(m, nn.Conv2d) for m in twin.modules()):
        twin = twin.to(memory_format=torch.channels_last)
    return twin.to(dtype)


def fast_layout(x: torch.Tensor) -> torch.Tensor:
    """A batch of images channels-last (oneDNN's fast layout on CPU: max-pooling a 256 x 64 x 14 x 14 batch takes
    3 ms instead of 33 ms on one thread); anything else as it is."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def hook_count(model: nn.Module) -> int:
    """Total number of forward, forward-pre and backward hooks on ``model`` and its submodules."""
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        + len(getattr(m, "_backward_pre_hooks", {}))
        for m in model.modules()
    )


@contextmanager
def capture(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of the named layers on every forward pass inside the block.

    Yields a dict filled with ``layer name -> output`` (the last forward pass's, not detached).
    """
    store: dict[str, torch.Tensor] = {}
    handles = []
    with model_lock(model):
        try:
            for name in layers:
                mod = model.get_submodule(name)
                handles.append(mod.register_forward_hook(lambda m, i, o, name=name: store.__setitem__(name, o)))
            yield store
        finally:
            for h in handles:
                h.remove()


def _mask_hook(index: torch.Tensor):
    def hook(module, inputs, output):
        out = output.clone()
        out[:, index.to(out.device)] = 0
        return out
    return hook


@contextmanager
def channel_mask(model: nn.Module, masks: Mapping[str, Sequence[int]]) -> Iterator[nn.Module]:
    """Zero the given channels (conv layers) or units (dense layers) of each named layer's output.

    The weights are never touched: the mask lives in a forward hook for the duration of the block only
    (seed 002 section 4.2.2 knocks filters out this way).
    """
    handles = []
    with model_lock(model):
        try:
            for name, idx in masks.items():
                if len(idx) == 0:
                    continue
                mod = model.get_submodule(name)
                handles.append(mod.register_forward_hook(_mask_hook(torch.as_tensor(list(idx), dtype=torch.long))))
            yield model
        finally:
            for h in handles:
                h.remove()
