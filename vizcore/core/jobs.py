"""Long work in the background: progress, cancel, and results that outlive the page and the process.

A job is a folder ``$VIZCORE_HOME/jobs/<id>/`` holding ``job.json`` (kind, title, config, state, progress,
result) written atomically on every change. The work runs in a thread of the current process and writes its
artifacts through :meth:`JobContext.path` + :func:`vizcore.core.workspace.atomic_write`, so a killed job leaves no
half-written file. A job found ``running`` whose process is gone is reported as ``interrupted``.

:func:`start_process_job` runs a job in other processes instead (the app's torchrun runs): the record is made
here, queued, and the command takes it up by id (:func:`start_job` with ``job_id``); progress, result and the
cancel flag travel through the job's folder as for any job.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from vizcore.core.progress import Cancelled
from vizcore.core.workspace import read_json, workspace, write_json

_ACTIVE = ("queued", "running")
_PROCESS_TOKEN = uuid.uuid4().hex
_EVENTS: dict[str, threading.Event] = {}
_THREADS: dict[str, threading.Thread] = {}


@dataclass
class JobInfo:
    id: str
    kind: str
    title: str
    config: dict
    state: str = "queued"  # queued, running, done, failed, cancelled, interrupted
    progress: float = 0.0
    message: str = ""
    result: dict = field(default_factory=dict)
    error: str = ""
    created: str = ""
    updated: str = ""
    pid: int = 0
    token: str = ""

    @property
    def active(self) -> bool:
        return self.state in _ACTIVE

    @property
    def dir(self) -> Path:
        return jobs_dir() / self.id


def jobs_dir() -> Path:
    d = workspace() / "jobs"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _save(info: JobInfo, folder: Path | None = None) -> None:
    """Write ``info`` to its folder (``folder``: that one, fixed when the job started, not the workspace of now)."""
    info.updated = _now()
    write_json((folder or info.dir) / "job.json", asdict(info))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def get_job(job_id: str) -> JobInfo:
    """The job's current state, read from disk (``interrupted`` if its process is gone)."""
    info = JobInfo(**read_json(jobs_dir() / job_id / "job.json"))
    if info.active:
        ours = info.token == _PROCESS_TOKEN
        dead = (ours and not (_THREADS.get(job_id) and _THREADS[job_id].is_alive())) or (not ours and not _alive(info.pid)) \
            or (not ours and info.pid == os.getpid())
        if dead:
            info.state, info.message = "interrupted", "stopped when the process running it ended; start it again"
    return info


def list_jobs(kind: str | None = None) -> list[JobInfo]:
    """All jobs (of one kind), newest first; unreadable job folders are skipped."""
    out = []
    for d in jobs_dir().iterdir():
        if (d / "job.json").exists():
            try:
                info = get_job(d.name)
            except (ValueError, TypeError, OSError):
                continue
            if kind is None or info.kind == kind:
                out.append(info)
    return sorted(out, key=lambda j: j.created, reverse=True)


class JobContext:
    """What a job function gets: its folder, a progress reporter and a cancellation check."""

    def __init__(self, info: JobInfo, event: threading.Event):
        self.info, self._event, self._last = info, event, 0.0

    @property
    def dir(self) -> Path:
        return self.info.dir

    def path(self, name: str) -> Path:
        """Where to write an artifact of this job (write it with ``atomic_write``)."""
        return self.info.dir / name

    def cancelled(self) -> bool:
        return self._event.is_set() or (self.info.dir / "cancel").exists()

    def progress(self, fraction: float, message: str = "") -> None:
        """Record progress; written to disk at most twice a second."""
        self.info.progress, self.info.message = max(0.0, min(1.0, float(fraction))), message
        now = time.monotonic()
        if now - self._last >= 0.5 or fraction >= 1.0:
            self._last = now
            _save(self.info)


def _run(info: JobInfo, fn: Callable[[JobContext], dict | None], event: threading.Event) -> None:
    ctx = JobContext(info, event)
    info.state = "running"
    _save(info)
    try:
        result = fn(ctx)
        info.result, info.state, info.progress, info.message = result or {}, "done", 1.0, "finished"
    except Cancelled:
        info.state, info.message = "cancelled", "cancelled by the user"
    except Exception as e:  # a failed job records why instead of killing the server
        info.state, info.error = "failed", f"{type(e).__name__}: {e}"
        info.message = traceback.format_exc(limit=3)[-2000:]
    finally:
        _save(info)
        _EVENTS.pop(info.id, None)


def job_call(fn: Callable[..., object], *args, **kwargs) -> Callable[[JobContext], dict]:
    """A job function for :func:`start_job` that runs one operation of the common call shape.

    ``fn(*args, **kwargs, progress=ctx.progress, cancelled=ctx.cancelled)`` runs in the job; its result becomes the
    job's result: ``to_dict()`` of a result object, or the dict itself.
    """

    def run(ctx: JobContext) -> dict:
        out = fn(*args, **kwargs, progress=ctx.progress, cancelled=ctx.cancelled)
        return out.to_dict() if hasattr(out, "to_dict") else dict(out or {})

    return run


def _new_job(kind: str, title: str, config: dict) -> JobInfo:
    job_id = datetime.now().strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
    info = JobInfo(id=job_id, kind=kind, title=title, config=config, created=_now(), pid=os.getpid(),
                   token=_PROCESS_TOKEN)
    info.dir.mkdir(parents=True)
    _save(info)
    return info


def queued_job(job_id: str, kind: str) -> JobInfo:
    """The queued job ``job_id`` of ``kind`` (made by :func:`start_process_job`), or a message."""
    path = jobs_dir() / job_id / "job.json"
    info = JobInfo(**read_json(path)) if path.exists() else None
    if info is None or info.kind != kind or info.state != "queued":
        raise ValueError(f"there is no queued {kind} job '{job_id}' in {jobs_dir()}")
    return info


def _take_up(job_id: str, kind: str, title: str) -> JobInfo:
    """The queued job ``job_id``, now run by this process."""
    info = queued_job(job_id, kind)
    info.title, info.pid, info.token = title, os.getpid(), _PROCESS_TOKEN
    _save(info)
    return info


def start_job(kind: str, title: str, fn: Callable[[JobContext], dict | None], config: dict,
              wait: bool = False, job_id: str | None = None) -> JobInfo:
    """Run ``fn(ctx)`` in a background thread as a new job; its return value (JSON-able) is the result.

    ``fn`` should call ``ctx.progress`` and stop with :class:`vizcore.core.progress.Cancelled` when
    ``ctx.cancelled()``. With ``wait=True`` it runs in the calling thread (the CLI does this). ``job_id``: take up
    that queued job instead of making one (the command :func:`start_process_job` started).
    """
    info = _new_job(kind, title, config) if job_id is None else _take_up(job_id, kind, title)
    event = _EVENTS[info.id] = threading.Event()
    if wait:
        _THREADS[info.id] = threading.current_thread()
        _run(info, fn, event)
    else:
        t = threading.Thread(target=_run, args=(info, fn, event), name=f"vizcore-job-{info.id}", daemon=True)
        _THREADS[info.id] = t
        t.start()
    return info


def start_process_job(kind: str, title: str, config: dict, argv: list[str], env: dict | None = None) -> JobInfo:
    """Queue a job and start ``argv + ["--job", ID]`` in its own process group to run it (it calls
    :func:`start_job` with ``job_id=ID``). The command's output goes to ``process.log`` in the job's folder; a
    command that ends without finishing the job fails it with the log's last lines."""
    info = _new_job(kind, title, config)
    info.token = ""  # not this process's thread: alive while the command's process is
    info.message = "starting its processes (each loads torch and joins the group)…"
    with open(info.dir / "process.log", "wb") as log:
        proc = subprocess.Popen([*argv, "--job", info.id], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, **(env or {})}, start_new_session=True)
    info.pid = proc.pid
    _save(info)
    threading.Thread(target=_reap, args=(info.dir, proc), name=f"vizcore-reap-{info.id}", daemon=True).start()
    return info


def _reap(folder: Path, proc: subprocess.Popen) -> None:
    """Wait for a job's command; if it left the job (in ``folder``) unfinished, record it as failed."""
    code = proc.wait()
    if not (folder / "job.json").exists():  # the job was deleted meanwhile
        return
    info = JobInfo(**read_json(folder / "job.json"))
    if info.active:
        tail = (folder / "process.log").read_text(errors="replace").strip().splitlines()[-5:]
        info.state, info.message = "failed", "\n".join(tail)[-2000:]
        info.error = f"the job's process ended (exit {code}) before it finished" + (f": {tail[-1][-300:]}" if tail else "")
        _save(info, folder)


def cancel_job(job_id: str) -> None:
    """Ask a job to stop (works across processes: a flag file is left in its folder)."""
    (jobs_dir() / job_id / "cancel").touch()
    if job_id in _EVENTS:
        _EVENTS[job_id].set()


def wait_job(job_id: str, timeout: float | None = None) -> JobInfo:
    """Block until a job of this process has finished; returns its final state."""
    t = _THREADS.get(job_id)
    if t:
        t.join(timeout)
    return get_job(job_id)
