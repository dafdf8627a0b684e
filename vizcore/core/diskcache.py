"""A small on-disk cache in the workspace (``cache/``) for what is costly to recompute at every start: decoded
datasets and a model's evaluation on a test split. Entries are keyed by fingerprints of their inputs (the
weights' SHA-256, the source files' sizes and times), written atomically, and simply recomputed when missing
or unreadable, so deleting ``cache/`` is always safe.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from vizcore.core.workspace import atomic_write, workspace

_DIGESTS: dict[tuple[str, int, int], str] = {}


def cache_dir(kind: str) -> Path:
    return workspace() / "cache" / kind


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for the life of the process."""
    st = os.stat(path)
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def files_fingerprint(paths: Iterable[str | os.PathLike]) -> str:
    """A short digest of the names, sizes and modification times of ``paths`` (cheap: no file is read)."""
    h = hashlib.sha256()
    for p in sorted(str(p) for p in paths):
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def key_name(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


def cached_json(kind: str, key: str, compute: Callable[[], dict]) -> dict:
    """``compute()``'s JSON-able result, stored under ``cache/kind/key.json`` and read back next time."""
    path = cache_dir(kind) / f"{key}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        pass
    value = compute()
    atomic_write(path, json.dumps(value))
    return value


def cached_arrays(kind: str, key: str, compute: Callable[[], tuple[dict[str, np.ndarray], dict]]
                  ) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, JSON metadata) stored as one uncompressed ``.npz`` (fast to read) under ``cache/kind/key.npz``."""
    path = cache_dir(kind) / f"{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if k != "_meta"}, json.loads(str(z["_meta"]))
    except (OSError, ValueError, KeyError):
        pass
    arrays, meta = compute()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, _meta=json.dumps(meta), **arrays)

    atomic_write(path, write)
    return arrays, meta
