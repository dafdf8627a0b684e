"""The classroom quiz library: codes, idempotent answers, no answer lost under concurrency, the tally."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vizcore import classroom as C


def _quiz(n: int = 4, **kw) -> C.Quiz:
    rng = np.random.default_rng(0)
    return C.create_quiz(rng.random((n, 1, 8, 8)), [0, 1, 2, 0][:n], ["a", "b", "c"], model_answers=[0, 1, 1, 2][:n],
                         others={"cnn_s": [0, 1, 2, 2][:n]}, dataset="toy", model_id="zoo:toy", **kw)


def test_create_and_reload_from_the_workspace():
    q = _quiz(title="Warm-up")
    assert len(q.code) == 4 and set(q.code) <= set(C.ALPHABET)
    again = C.get_quiz(q.code.lower())
    assert again == q and again.image_path(3).stat().st_size > 100
    assert [z.code for z in C.list_quizzes()] == [q.code]
    with pytest.raises(C.QuizError, match="no quiz"):
        C.get_quiz("ZZZZ" if q.code != "ZZZZ" else "YYYY")
    with pytest.raises(C.QuizError, match="not a quiz code"):
        C.get_quiz("hello")
    with pytest.raises(C.QuizError, match="model answers"):
        C.create_quiz(np.zeros((2, 1, 4, 4)), [0, 1], ["a", "b"], model_answers=[0, 5])


def test_answers_are_idempotent_and_validated():
    q = _quiz()
    p = C.join(q.code, "Ada")
    C.record_answer(q.code, p, 0, 2)
    C.record_answer(q.code, p, 0, 0)  # changed her mind: one answer per person and question
    C.record_answer(q.code, p, 0, 0)
    got = C.answers(q.code)
    assert {k: {i: a["answer"] for i, a in v.items()} for k, v in got.items()} == {p: {0: 0}}
    assert C.participants(q.code)[p]["name"] == "Ada"
    for bad, msg in (((p, 9, 0), "question"), ((p, 0, 3), "answer"), (("0" * 12, 0, 0), "unknown participant"),
                     (("../../x", 0, 0), "unknown participant")):
        with pytest.raises(C.QuizError, match=msg):
            C.record_answer(q.code, *bad)
    C.close_quiz(q.code)
    with pytest.raises(C.QuizError, match="closed"):
        C.record_answer(q.code, p, 1, 1)


def test_thirty_threads_lose_no_answer():
    q = _quiz()
    people = [C.join(q.code) for _ in range(30)]
    start = threading.Barrier(30)

    def answer_all(i: int, p: str) -> None:
        start.wait()
        for round_ in range(3):  # every answer given three times, the last one counts
            for question in range(q.n):
                C.record_answer(q.code, p, question, (i + question + round_) % 3)

    threads = [threading.Thread(target=answer_all, args=(i, p)) for i, p in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = C.answers(q.code)
    assert len(got) == 30 and all(len(v) == q.n for v in got.values())
    for i, p in enumerate(people):
        assert [got[p][question]["answer"] for question in range(q.n)] == [(i + question + 2) % 3 for question in range(q.n)]
    t = C.tally(q)
    assert t["participants"] == 30 and t["answers"] == 30 * q.n and t["answered"] == [30] * q.n


def test_tally_compares_the_room_with_the_model_and_other_classifiers():
    q = _quiz()  # labels 0 1 2 0, model 0 1 1 2, cnn_s 0 1 2 2
    given = {"p1": {0: 0, 1: 1, 2: 2}, "p2": {0: 0, 1: 2, 2: 2, 3: 0}, "p3": {0: 1, 1: 1, 3: 0}}
    given = {p: {k: {"answer": v, "t": 0.0} for k, v in a.items()} for p, a in given.items()}
    t = C.tally(q, given)
    assert t["counts"] == [[2, 1, 0], [0, 2, 1], [0, 0, 2], [2, 0, 0]]
    assert t["majority"] == [0, 1, 2, 0]
    assert t["matrix"].tolist() == [[0, 0, 1], [1, 2, 1], [2, 2, -1], [-1, 0, 0]]
    rows = {r["who"]: r for r in t["table"]}
    assert rows["the room (majority)"]["accuracy"] == 1.0 and rows["the room (majority)"]["agrees_with_model"] == 0.5
    assert rows["the model (zoo:toy)"]["accuracy"] == 0.5
    assert rows["cnn_s"] == {"who": "cnn_s", "accuracy": 0.75, "agrees_with_model": 0.75}
    # a person (mean): p1 3/3, p2 3/4, p3 2/3 right
    assert rows["a person (mean)"]["accuracy"] == pytest.approx(np.mean([1, 0.75, 2 / 3]))
    empty = C.tally(q, {})
    assert empty["participants"] == 0 and empty["table"][0]["accuracy"] is None
