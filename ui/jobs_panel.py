"""A panel listing the background jobs of one kind: progress bars, a Cancel button, results.

It is a fragment that reruns itself every second while a job is active, so only the panel refreshes.
Job state lives in the workspace, so the panel shows the same thing after a page reload or an app restart.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from vizcore.core import jobs

ICONS = {"queued": ":material/schedule:", "running": ":material/autorenew:", "done": ":material/check_circle:",
         "failed": ":material/error:", "cancelled": ":material/cancel:", "interrupted": ":material/warning:"}


def _poll_interval(kind: str) -> float | None:
    return 1.0 if any(j.active for j in jobs.list_jobs(kind)[:10]) else None


def progress_row(job: jobs.JobInfo) -> None:
    """An active job's progress bar with a Cancel button beside it."""
    bar, button = st.columns([5, 1])
    bar.progress(job.progress, text=job.message or "starting…")
    if button.button("Cancel", key=f"cancel-{job.id}"):
        jobs.cancel_job(job.id)
        st.rerun(scope="fragment")


def job_panel(kind: str, show_result: Callable[[jobs.JobInfo], None] | None = None, limit: int = 5,
              show_active: Callable[[jobs.JobInfo], None] | None = None) -> None:
    """Show the newest ``limit`` jobs of ``kind``; ``show_result`` renders a finished job's result and
    ``show_active`` what a running job has produced so far (refreshed with its progress bar)."""

    interval = _poll_interval(kind)  # fixed for this run of the page: compared below to see a job finish

    @st.fragment(run_every=interval)
    def panel() -> None:
        items = jobs.list_jobs(kind)[:limit]
        if not items:
            st.caption("No jobs yet.")
            return
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
        if any(j.active for j in items) != (interval is not None):
            st.rerun()

    panel()
