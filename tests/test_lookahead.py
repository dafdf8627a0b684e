"""ui.lookahead: keyed background computations, one after another, whose results go to the run that asks for their key."""

from __future__ import annotations

import threading

from ui.lookahead import LookAhead


def test_a_result_goes_to_the_run_that_asks_for_its_key():
    ahead = LookAhead()
    began, release = threading.Event(), threading.Event()
    ahead.start([(("img", 2), lambda: began.set() or release.wait(5) and "flow of 2")])
    assert began.wait(5)
    assert ahead.take(("img", 3)) is None  # another key: nothing to hand over, no waiting
    release.set()
    assert ahead.take(("img", 2)) == "flow of 2"  # waits for the running computation
    assert ahead.take(("img", 2)) == "flow of 2"  # still held until a start plans without it
    ahead.start([(("img", 3), lambda: "flow of 3")])
    assert ahead.take(("img", 3)) == "flow of 3" and ahead.take(("img", 2)) is None
    assert ahead.planned == [("img", 3)]


def test_jobs_run_in_order_and_a_take_drops_those_not_begun():
    """The next image first, then the image's other classes; a run that asks for one key stops the others (they
    would compete with it), and the next start plans them again without computing twice what was done."""
    ahead = LookAhead()
    order, began, release = [], threading.Event(), threading.Event()

    def job(name, gate=False):
        def run():
            if gate:
                began.set()
                release.wait(5)
            order.append(name)
            return f"flow {name}"
        return run

    ahead.start([("next", job("next", True)), ("class 1", job("class 1")), ("class 2", job("class 2"))])
    assert began.wait(5)
    threading.Timer(0.2, release.set).start()
    assert ahead.take("class 1") == "flow class 1"  # waits for "next" (begun), then gets its own turn at once
    assert ahead.idle(5) and order == ["next", "class 1"]  # "class 2" was dropped
    assert ahead.take("class 2") is None
    ahead.start([("next", job("next again")), ("class 1", job("class 1 again")), ("class 2", job("class 2"))])
    assert ahead.idle(5) and order == ["next", "class 1", "class 2"]  # only what was missing
    assert [ahead.take(k) for k in ("next", "class 1", "class 2")] == ["flow next", "flow class 1", "flow class 2"]


def test_a_failed_computation_hands_over_nothing():
    ahead = LookAhead()

    def fail():
        raise RuntimeError("model busy")

    ahead.start([("k", fail), ("j", lambda: "fine")])
    assert ahead.idle(5) and ahead.take("k") is None and ahead.take("j") == "fine"


def test_a_delayed_computation_waits_unless_its_key_is_asked_for():
    """``after``: the thread waits before computing (it leaves the rerun that starts it alone); a run that asks for
    that key does not wait out the delay (an hour here: without the cut this test would hang)."""
    ahead = LookAhead()
    began = threading.Event()
    ahead.start([("next", lambda: began.set() or "flow")], after=3600)
    assert not began.wait(0.3)  # still waiting
    assert ahead.take("next") == "flow" and began.is_set()
    # new keys while the last ones still wait (the person picked another class): the new ones replace them
    first = threading.Event()
    ahead.start([("old", lambda: first.set() or "old flow")], after=3600)
    ahead.start([("new", lambda: "new flow")], after=3600)
    assert ahead.take("new") == "new flow" and ahead.take("old") is None and not first.is_set()
    assert ahead.idle(5)


def test_the_results_shown_last_are_handed_back_for_a_step_back():
    """``keep``: a person who steps back to the image they just saw gets its result again (the computation ahead
    went the other way); only the ``keep`` newest are kept, and the one ahead still goes to its own key."""
    ahead = LookAhead(keep=2)
    for i in (1, 2, 3):
        ahead.remember(("img", i), f"diagram of {i}")
    ahead.start([(("img", 4), lambda: "diagram of 4")])
    assert ahead.take(("img", 2)) == "diagram of 2" and ahead.take(("img", 2)) == "diagram of 2"  # not used up
    assert ahead.take(("img", 1)) is None  # the oldest went when the third came
    ahead.remember(("img", 5), "diagram of 5")  # 2 was taken last, so 3 is now the oldest and goes
    assert ahead.take(("img", 3)) is None and ahead.take(("img", 2)) == "diagram of 2"
    assert LookAhead().take(("img", 5)) is None  # keep=0: nothing remembered
    nothing = LookAhead()
    nothing.remember("k", "v")
    assert nothing.take("k") is None


def test_a_running_job_learns_when_its_result_is_no_longer_wanted():
    """A take for another key, or a start that does not plan the running key again, tells the running job (through
    ``unwanted``) that it may stop; asking for its own key or planning it again does not. A job that stops by
    raising leaves the thread free for the next one."""
    ahead = LookAhead()
    began, release, seen = threading.Event(), threading.Event(), []

    def job(name):
        def run():
            began.set()
            release.wait(5)
            seen.append((name, ahead.unwanted()))
            if ahead.unwanted():
                raise RuntimeError("stopped early")
            return name
        return run

    ahead.start([("a", job("a"))])
    assert began.wait(5) and not ahead.unwanted()
    ahead.start([("a", job("a")), ("b", job("b"))])  # planned again: still wanted
    assert not ahead.unwanted()
    assert ahead.take("c") is None and ahead.unwanted()  # the person asked for another key
    ahead.start([("a", job("a"))])  # planned again before it ended: wanted again
    assert not ahead.unwanted()
    ahead.start([("b", job("b"))])  # not planned: unwanted
    release.set()
    assert ahead.take("b") == "b" and seen == [("a", True), ("b", False)]
    assert ahead.take("a") is None and ahead.idle(5)
