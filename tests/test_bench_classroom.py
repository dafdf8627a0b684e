"""bench/classroom.py's websocket participants on the real server, no browser: each joins by the quiz link, answers
every picture and sees the next one; every answer is stored as clicked."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

from app_server import running_app

from vizcore import classroom as C
from vizcore.data import load_digits

_spec = importlib.util.spec_from_file_location("bench_classroom", Path(__file__).parents[1] / "bench" / "classroom.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_websocket_participants_answer_every_picture(workspace):
    ds = load_digits()
    n = 3
    quiz = C.create_quiz(ds.test_x[:n].numpy(), ds.test_y[:n].tolist(), ds.class_names, kind="test",
                         model_answers=ds.test_y[:n].tolist(), dataset="digits", model_id="zoo:digits-cnn")
    with running_app(workspace) as url:
        clicks, pids, _ = asyncio.run(bench.ws_people(url, quiz, 2))
    got = C.answers(quiz.code)
    assert len(clicks) == 2 * n and sorted(got) == sorted(pids) and len(set(pids)) == 2
    for (pid, q), clicked in clicks.items():
        assert got[pid][q]["answer"] == bench.choice(pids.index(pid), q, len(quiz.class_names))
        assert got[pid][q]["t"] > clicked  # written by the rerun the click asked for
