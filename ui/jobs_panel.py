"""Background jobs on a page: progress bars, a Cancel button, results. The one place that polls jobs.

A panel is a fragment that reruns itself every second while one of its jobs is active, so only the panel
refreshes. Job state lives in the workspace, so the panel shows the same thing after a page reload or an app
restart.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui import state
from vizcore.core import jobs

ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:", "done": ":material/check_circle:",
         "failed": ":material/error:", "cancelled": ":material/cancel:", "interrupted": ":material/warning:"}

Match = Callable[[jobs.JobInfo], bool]
Show = Callable[[jobs.JobInfo], None]


def estimate_button(key: str, settings, seconds: Callable[[], float | dict[str, float]], describe: Callable,
                    button_at, info_at, disabled: bool = False) -> None:
    """An *Estimate time* button before a job is started: ``seconds()`` (a short probe) is run on a click, and
    ``describe(estimate)`` stays shown in ``info_at`` while the page's ``settings`` are the ones it was made for."""
    if button_at.button("Estimate time", key=key, disabled=disabled):
        with st.spinner("Timing a short probe…"):
            st.session_state[f"{key}_value"] = (settings, seconds())
    known = st.session_state.get(f"{key}_value")
    if known and known[0] == settings:
        info_at.info(describe(known[1]))


def progress_row(job: jobs.JobInfo) -> None:
    """An active job's progress bar with a Cancel button beside it."""
    bar, button = st.columns([5, 1])
    bar.progress(job.progress, text=job.message or "starting…")
    if button.button("Cancel", key=f"cancel-{job.id}"):
        jobs.cancel_job(job.id)
        st.rerun(scope="fragment")


def _polled(kind: str, match: Match | None, limit: int, body: Callable[[list[jobs.JobInfo]], None]) -> None:
    """Run ``body(newest jobs of kind that match)`` in a fragment that polls while one of them is active."""

    def mine() -> list[jobs.JobInfo]:
        return [j for j in jobs.list_jobs(kind) if match is None or match(j)][:limit]

    interval = 1.0 if any(j.active for j in mine()) else None  # fixed for this run: compared below

    @state.fragment(run_every=interval)
    def panel() -> None:
        items = mine()
        body(items)
        if any(j.active for j in items) != (interval is not None):  # a job started or ended: switch polling
            st.rerun()

    panel()


def job_panel(kind: str, show_result: Show | None = None, limit: int = 5, match: Match | None = None,
              show_active: Show | None = None) -> None:
    """The newest ``limit`` jobs of ``kind`` (those ``match`` accepts), each in a box; ``show_result`` renders a
    finished job's result and ``show_active`` what a running job has produced so far (refreshed with its
    progress bar)."""

    def body(items: list[jobs.JobInfo]) -> None:
        if not items:
            st.caption("No jobs yet.")
        for j in items:
            with st.container(border=True):
                st.markdown(f"{ICONS.get(j.state, '')} **{j.title}** · {j.state} · started {j.created[11:19]} UTC")
                if j.active:
                    progress_row(j)
                    if show_active:
                        show_active(j)
                elif j.state == "failed":
                    st.error(j.error)
                elif j.state in ("cancelled", "interrupted"):
                    st.warning(j.message)
                elif j.state == "done" and show_result:
                    show_result(j)

    _polled(kind, match, limit, body)


def latest_job(kind: str, show_result: Show, match: Match | None = None, empty: str = "No results yet.") -> None:
    """The state of the newest job of ``kind`` that ``match`` accepts, then the newest finished result."""

    def body(items: list[jobs.JobInfo]) -> None:
        if not items:
            st.caption(empty)
            return
        j = items[0]
        if j.active:
            progress_row(j)
        elif j.state == "failed":
            st.error(j.error)
        elif j.state != "done":
            st.warning(f"The last run was {j.state}: {j.error or j.message}")
        done = next((d for d in items if d.state == "done"), None)
        if done is not None:
            show_result(done)

    _polled(kind, match, 20, body)
