"""Work for the input a person will probably ask for next (the next image of a class), done in the background
while they look at the current one; the Knockout page does the same for the next slider step
(:meth:`vizcore.explain.knockout.KnockoutEvaluator.prefetch`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class LookAhead:
    """At most one background computation, keyed; :meth:`take` hands its result to the run that asks for that key."""

    def __init__(self):
        self._key: Hashable | None = None
        self._thread: threading.Thread | None = None
        self._value: Any = None

    def start(self, key: Hashable, compute: Callable[[], Any]) -> bool:
        """Compute ``compute()`` for ``key`` in a thread, unless one is running or ``key`` is already held."""
        if key == self._key or (self._thread is not None and self._thread.is_alive()):
            return False
        self._key, self._value = key, None

        def run() -> None:
            try:
                self._value = compute()
            except Exception:  # noqa: BLE001 - the run that asks computes it again and reports the error
                self._value = None

        # not a daemon: a process that exits while PyTorch runs in a daemon thread can abort ("terminate called
        # without an active exception"); one computation is short, so exiting waits for it
        self._thread = threading.Thread(target=run, daemon=False, name="vizcore-look-ahead")
        self._thread.start()
        return True

    def take(self, key: Hashable) -> Any:
        """The result for ``key`` (waiting for its computation to end), or None when another key is held."""
        if key != self._key or self._thread is None:
            return None
        self._thread.join()
        value, self._key, self._value = self._value, None, None
        return value
