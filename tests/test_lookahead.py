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


def test_a_delayed_computation_waits_unless_its_key_is_asked_for():
    """``after``: the thread waits before computing (it leaves the rerun that starts it alone); a run that asks for
    that key does not wait out the delay (an hour here: without the cut this test would hang)."""
    ahead = LookAhead()
    began = threading.Event()
    assert ahead.start("next", lambda: began.set() or "flow", after=3600)
    assert not began.wait(0.3)  # still waiting
    assert ahead.take("next") == "flow" and began.is_set()
    # a new key while the last one still waits (the person picked another class): the new one replaces it
    first = threading.Event()
    assert ahead.start("old", lambda: first.set() or "old flow", after=3600)
    assert ahead.start("new", lambda: "new flow", after=3600)
    assert ahead.take("old") is None and ahead.take("new") == "new flow" and not first.is_set()


def test_the_results_shown_last_are_handed_back_for_a_step_back():
    """``keep``: a person who steps back to the image they just saw gets its result again (the computation ahead
    went the other way); only the ``keep`` newest are kept, and the one ahead still goes to its own key."""
    ahead = LookAhead(keep=2)
    for i in (1, 2, 3):
        ahead.remember(("img", i), f"diagram of {i}")
    assert ahead.start(("img", 4), lambda: "diagram of 4")
    assert ahead.take(("img", 2)) == "diagram of 2" and ahead.take(("img", 2)) == "diagram of 2"  # not used up
    assert ahead.take(("img", 1)) is None  # the oldest went when the third came
    ahead.remember(("img", 5), "diagram of 5")  # 2 was taken last, so 3 is now the oldest and goes
    assert ahead.take(("img", 3)) is None and ahead.take(("img", 2)) == "diagram of 2"
    assert ahead.take(("img", 4)) == "diagram of 4"
    assert LookAhead().take(("img", 5)) is None  # keep=0: nothing remembered
    nothing = LookAhead()
    nothing.remember("k", "v")
    assert nothing.take("k") is None
