"""Background jobs: results persist, cancel stops without half-written artifacts, restarts are noticed."""

import dataclasses
import json
import threading

import pytest

from vizcore.core import jobs
from vizcore.core.progress import Cancelled
from vizcore.core.workspace import atomic_write, read_json, write_json


def test_job_runs_and_persists(workspace):
    def work(ctx):
        for i in range(5):
            ctx.progress((i + 1) / 5, f"step {i}")
        write_json(ctx.path("out.json"), {"answer": 42})
        return {"answer": 42}

    info = jobs.start_job("demo", "a demo", work, {"n": 5})
    done = jobs.wait_job(info.id, timeout=60)
    assert done.state == "done" and done.result == {"answer": 42} and done.progress == 1.0
    on_disk = read_json(workspace / "jobs" / info.id / "job.json")
    assert on_disk["state"] == "done" and on_disk["config"] == {"n": 5}
    assert [j.id for j in jobs.list_jobs("demo")] == [info.id] and jobs.list_jobs("other") == []


def test_cancel_mid_run_leaves_no_artifact():
    started, release = threading.Event(), threading.Event()

    def work(ctx):
        started.set()
        partial = []
        while True:
            partial.append(len(partial))
            if ctx.cancelled():
                raise Cancelled()
            release.wait(0.01)
            if len(partial) > 100000:  # never reached when cancel works
                write_json(ctx.path("result.json"), partial)
                return {}

    info = jobs.start_job("demo", "slow", work, {})
    assert started.wait(30)
    jobs.cancel_job(info.id)
    final = jobs.wait_job(info.id, timeout=60)
    assert final.state == "cancelled"
    assert sorted(p.name for p in final.dir.iterdir()) == ["cancel", "job.json"]


def test_failure_is_recorded_not_raised():
    def work(ctx):
        raise ValueError("bad config: epochs must be positive")

    final = jobs.wait_job(jobs.start_job("demo", "broken", work, {}).id, timeout=30)
    assert final.state == "failed" and "epochs must be positive" in final.error


def test_cancel_flag_from_another_process_is_seen():
    seen = []

    def work(ctx):
        (ctx.dir / "cancel").touch()  # what cancel_job in another process leaves
        seen.append(ctx.cancelled())
        raise Cancelled()

    jobs.start_job("demo", "x", work, {}, wait=True)
    assert seen == [True]


def test_job_of_a_dead_process_reads_as_interrupted(workspace, monkeypatch):
    info = jobs.JobInfo(id="old", kind="demo", title="from before a restart", config={}, state="running",
                        created="2026-01-01T00:00:00+00:00", pid=2**22 + 12345, token="previous-process")
    write_json(workspace / "jobs" / "old" / "job.json", dataclasses.asdict(info))
    got = jobs.get_job("old")
    assert got.state == "interrupted" and not got.active
    # same pid as ours but another process token (the app restarted and got the pid back)
    write_json(workspace / "jobs" / "old" / "job.json", {**dataclasses.asdict(info), "pid": __import__("os").getpid()})
    assert jobs.get_job("old").state == "interrupted"


def test_finished_job_survives_a_restart(workspace, monkeypatch):
    info = jobs.start_job("demo", "done before restart", lambda ctx: {"v": 1}, {}, wait=True)
    monkeypatch.setattr(jobs, "_PROCESS_TOKEN", "new-process")
    monkeypatch.setattr(jobs, "_THREADS", {})
    again = jobs.get_job(info.id)
    assert again.state == "done" and again.result == {"v": 1}


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "weights.bin"
    atomic_write(target, b"old")

    def boom(path):
        path.write_bytes(b"half")
        raise KeyboardInterrupt  # a kill in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, boom)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]
    write_json(tmp_path / "x.json", {"a": [1, 2]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2]}
