"""The workspace: where user models, uploaded datasets and job results live (``$VIZCORE_HOME``, default
``~/.vizcore``), and the one way to write a file there atomically."""

from __future__ import annotations

import fcntl
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def workspace() -> Path:
    """The workspace root, created on first use."""
    root = Path(os.environ.get("VIZCORE_HOME") or Path.home() / ".vizcore").expanduser()
    root.mkdir(parents=True, exist_ok=True)
    return root


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None] | bytes | str) -> Path:
    """Write ``path`` so that readers see either the old file or the complete new one, never a part.

    ``write`` is the content, or a function that writes to the temporary path it is given. The file is
    written next to its destination, flushed to disk, then renamed over it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        if callable(write):
            write(tmp_path)
        else:
            tmp_path.write_bytes(write.encode() if isinstance(write, str) else write)
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual mode
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj) -> Path:
    return atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: str | os.PathLike):
    return json.loads(Path(path).read_text())


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")


def check_name(name: str, error: type[ValueError] = ValueError) -> str:
    """``name`` if it is safe as a file name (``re.fullmatch``: no ``/``, no newline, at most 80 characters)."""
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        shown = repr(name)[:100]
        raise error(f"name {shown} must start with a letter or digit and hold only letters, digits, '_', '-' or "
                    "'.' (at most 80 characters)")
    return name


def name_from(text: str, fallback: str = "data", limit: int = 60) -> str:
    """A valid name made from ``text`` (a dataset label, a file name): runs of other characters become ``-``,
    at most ``limit`` characters; ``fallback`` when nothing is left."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:limit].strip("-.")
    return name if NAME_PATTERN.fullmatch(name) else fallback


@contextmanager
def name_lock(kind: str, name: str, shared: bool = False) -> Iterator[None]:
    """Hold the per-name file lock of ``kind/name`` (``fcntl.flock``; exclusive for writers, shared for readers),
    so that a model's files are replaced and read as one unit even across processes."""
    folder = workspace() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{kind}-{check_name(name)}.lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
