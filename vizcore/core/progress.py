"""Progress reporting and cancellation, shared by every long computation.

A long function takes ``progress(fraction, message)`` and ``cancelled() -> bool`` callbacks, so the same
code runs in the CLI, in a background job of the app and in tests, and prints nothing itself.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


class Cancelled(Exception):
    """Raised inside a long computation when its caller asked it to stop."""


def progress_span(progress: Progress | None, lo: float, hi: float) -> Progress | None:
    """``progress`` for one stage of a longer job: the stage's fraction 0..1 is reported as ``lo..hi``."""
    return (lambda f, msg="": progress(lo + (hi - lo) * f, msg)) if progress else None


def check_cancelled(cancelled: Callable[[], bool] | None) -> None:
    """Raise :class:`Cancelled` when the caller asked to stop."""
    if cancelled and cancelled():
        raise Cancelled()
