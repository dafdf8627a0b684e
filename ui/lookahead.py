"""Work for the input a person will probably ask for next (the next image of a class), done in the background
while they look at the current one; the Knockout page does the same for the next slider step
(:meth:`vizcore.explain.knockout.KnockoutEvaluator.prefetch`)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LookAhead:
    """At most one background computation, keyed; :meth:`take` hands its result to the run that asks for that key.

    ``keep``: how many results already shown (:meth:`remember`) :meth:`take` also hands back, the newest first kept,
    for a person who steps back to an input they just saw (the computation ahead went the other way)."""

    def __init__(self, keep: int = 0):
        self._keep, self._recent = keep, OrderedDict()
        self._key: Hashable | None = None
        self._thread: threading.Thread | None = None
        self._value: Any = None
        self._go, self._began, self._dropped = threading.Event(), threading.Event(), threading.Event()

    def start(self, key: Hashable, compute: Callable[[], Any], after: float = 0.0) -> bool:
        """Compute ``compute()`` for ``key`` in a thread, unless one is computing or ``key`` is already held. ``after``:
        seconds the thread waits first, so that it does not compete with the end of the rerun that starts it (the
        GIL, the two cores) and the browser's drawing; a :meth:`take` of ``key`` cuts the wait short, and a start
        for another key during the wait replaces it."""
        if key == self._key:
            return False
        if self._thread is not None and self._thread.is_alive():
            if self._began.is_set():
                return False
            self._dropped.set()  # still waiting: the key it would compute is not the one asked for any more
            self._go.set()
            self._thread.join()
        self._key, self._value = key, None
        self._go, self._began, self._dropped = go, began, dropped = threading.Event(), threading.Event(), threading.Event()

        def run() -> None:
            go.wait(after)
            if dropped.is_set():
                return
            began.set()
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
        """The result for ``key`` (waiting for its computation to end, or one of the results remembered), or None
        when neither holds it."""
        if key != self._key or self._thread is None:
            if key in self._recent:
                self._recent.move_to_end(key)
                return self._recent[key]
            return None
        self._go.set()
        self._thread.join()
        value, self._key, self._value = self._value, None, None
        return value

    def remember(self, key: Hashable, value: Any) -> None:
        """Keep ``value``, the result shown for ``key``, among the ``keep`` most recent."""
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > self._keep:
            self._recent.popitem(last=False)
