"""ui.lookahead: one keyed background computation whose result goes to the run that asks for its key."""

from __future__ import annotations

import threading

from ui.lookahead import LookAhead


def test_a_result_goes_once_to_the_run_that_asks_for_its_key():
    ahead = LookAhead()
    release = threading.Event()
    assert ahead.start(("img", 2), lambda: release.wait(5) and "flow of 2")
    assert not ahead.start(("img", 3), lambda: "flow of 3")  # one at a time
    assert ahead.take(("img", 3)) is None  # another key: nothing to hand over, no waiting
    release.set()
    assert ahead.take(("img", 2)) == "flow of 2"  # waits for the running computation
    assert ahead.take(("img", 2)) is None  # handed over once
    assert ahead.start(("img", 3), lambda: "flow of 3") and ahead.take(("img", 3)) == "flow of 3"


def test_a_failed_computation_hands_over_nothing():
    ahead = LookAhead()

    def fail():
        raise RuntimeError("model busy")

    ahead.start("k", fail)
    assert ahead.take("k") is None
