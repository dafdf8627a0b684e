"""Work for the inputs a person will probably ask for next (the next image of a class, the image's other classes),
or the next slider step on the Knockout page, done in the background while they look at the current one."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any

Job = tuple[Hashable, Callable[[], Any]]

# how long the pages' look-ahead waits after a rerun: started at once, it competed with the rerun's end and the
# browser's drawing (bench/latency.py, Chromium, 2 cores: a PG image change's median 194-236 ms at once, 123-167 ms
# after 0.15 s; Knockout's first slider steps after the page opened 229 / 207 ms at once, 113 / 110 ms after it)
AFTER_RERUN = 0.15


class LookAhead:
    """Keyed computations run one after another in a background thread; :meth:`take` hands a result to the run that
    asks for its key.

    ``keep``: how many results already shown (:meth:`remember`) :meth:`take` also hands back, the newest first kept,
    for a person who steps back to an input they just saw (the computations ahead went the other way)."""

    def __init__(self, keep: int = 0):
        self._keep, self._recent = keep, OrderedDict()
        self._cond = threading.Condition()
        self._queue: list[Job] = []  # not begun, in order
        self._current: Hashable | None = None  # being computed
        self._unwanted = False  # the current job's result will not be asked for
        self._done: dict[Hashable, Any] = {}
        self._planned: list[Hashable] = []
        self._not_before = 0.0
        self._worker: threading.Thread | None = None

    @property
    def planned(self) -> list[Hashable]:
        """The keys of the last :meth:`start`, in order."""
        return list(self._planned)

    def start(self, jobs: Sequence[Job], after: float = 0.0) -> None:
        """Compute ``jobs`` ((key, compute) pairs) in order in a background thread, skipping keys already computed.
        They replace the jobs of an earlier start not yet begun; results of keys not in ``jobs`` are dropped.
        ``after``: seconds the thread waits before its next job, so that it does not compete with the end of the
        rerun that starts it (the GIL, the two cores) and the browser's drawing; a :meth:`take` of a waiting key
        cuts the wait short."""
        with self._cond:
            self._planned = [k for k, _ in jobs]
            self._done = {k: v for k, v in self._done.items() if k in self._planned}
            self._queue = [(k, c) for k, c in jobs if k not in self._done and k != self._current]
            self._unwanted = self._current is not None and self._current not in self._planned
            self._not_before = time.monotonic() + after
            if self._queue and self._worker is None:
                # not a daemon: a process that exits while PyTorch runs in a daemon thread can abort ("terminate
                # called without an active exception"); the jobs are short, so exiting waits for them
                self._worker = threading.Thread(target=self._work, daemon=False, name="vizcore-look-ahead")
                self._worker.start()
            self._cond.notify_all()

    def _work(self) -> None:
        while True:
            with self._cond:
                while self._queue and (wait := self._not_before - time.monotonic()) > 0:
                    self._cond.wait(wait)
                if not self._queue:
                    self._worker = None
                    self._cond.notify_all()
                    return
                key, compute = self._queue.pop(0)
                self._current, self._unwanted = key, False
            try:
                value, ok = compute(), True
            except Exception:  # noqa: BLE001 - the run that asks computes it again and reports the error
                value, ok = None, False
            with self._cond:
                if ok:
                    self._done[key] = value
                self._current = None
                self._cond.notify_all()

    def take(self, key: Hashable) -> Any:
        """The result for ``key``: computed ahead (waiting for it when it is being computed or still waits its turn),
        or one of the results remembered; None when none of these holds it. The jobs not begun are dropped (the run
        that asks should not compete with them); the next :meth:`start` plans again."""
        with self._cond:
            self._queue = [(k, c) for k, c in self._queue if k == key]
            self._unwanted = self._unwanted or (self._current is not None and self._current != key)
            if self._queue:
                self._not_before = 0.0
                self._cond.notify_all()
            while self._current == key or self._queue:
                self._cond.wait()
            if key in self._done:
                return self._done[key]
        if key in self._recent:
            self._recent.move_to_end(key)
            return self._recent[key]
        return None

    def unwanted(self) -> bool:
        """For the running job to ask between its steps: True once its result will not be asked for (a take asked
        for another key, or a start did not plan it again), so it may stop early (raise) and free what it holds."""
        return self._unwanted

    def idle(self, timeout: float | None = None) -> bool:
        """Wait until no job is waiting or running; False if ``timeout`` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._worker is None, timeout)

    def remember(self, key: Hashable, value: Any) -> None:
        """Keep ``value``, the result shown for ``key``, among the ``keep`` most recent."""
        self._recent[key] = value
        self._recent.move_to_end(key)
        while len(self._recent) > self._keep:
            self._recent.popitem(last=False)
