"""The Overview's first view, drawn without PyTorch while a fresh server is still importing it (issue 13: the first
page in under 5 s; importing torch alone takes about 4 s on a 2-core machine).

The live Overview draws its top half (numbers, charts, test images) through :func:`draw` from a plain record, and
saves that record to the workspace cache when it shows the selection a new session opens with. A server's first
sessions draw the saved record, widgets disabled and charts as server-made pictures (:mod:`ui.static_chart`), until
the warm-up has imported PyTorch, then rerun into the live page. A record is used only while the weights it was
drawn from are still the file on disk. Nothing here imports torch or vizcore's numerical modules.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import streamlit as st

from ui import static_chart
from vizcore.core.workspace import atomic_write, workspace

STRIP_DEFAULT = 20  # test images shown before the user asks for more
PRELOAD_AFTER_S = 1.0  # from sending the saved page to sending :func:`preload_plotly`


def path() -> Path:
    return workspace() / "cache" / "first_page.json"


def save(record: dict) -> None:
    """Keep ``record`` for the next server start (written only when it changed)."""
    text = json.dumps(record, sort_keys=True)
    p = path()
    try:
        if p.read_text() == text:
            return
    except OSError:
        pass
    atomic_write(p, text)


def load() -> dict | None:
    """The saved record, or None when there is none or its model's weights file has changed since."""
    try:
        rec = json.loads(path().read_text())
        weights = rec["weights"]
        return rec if os.stat(weights["path"]).st_mtime == weights["mtime"] else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def draw(rec: dict, live: bool = True) -> tuple[bool, int]:
    """The Overview's top half from ``rec``: caption, metrics, per-class bars, confusion matrix, and the
    strip's two controls. Returns (only misclassified, how many) as the controls say; without ``live`` they are
    disabled at their defaults and the saved strip is drawn under them."""
    st.caption(f"Model **{rec['model']}** on the test split of **{rec['dataset']}**")
    cols = st.columns(4)
    for c, (label, value, help_) in zip(cols, rec["metrics"]):
        c.metric(label, value, help=help_)
    if rec.get("warning"):
        st.warning(rec["warning"])
    left, right = st.columns([3, 2])
    if live:
        left.plotly_chart(rec["per_class"], key="prf")
        right.plotly_chart(rec["confusion"], key="confusion")
    else:  # pictures: a fresh browser would first fetch and compile Plotly's 4.7 MB script (ui/static_chart.py)
        left.image(static_chart.svg(rec["per_class"], 720), width="stretch")
        right.image(static_chart.svg(rec["confusion"], 480), width="stretch")
    st.subheader("Test rows" if rec["tabular"] else "Test images")
    only_wrong = st.toggle("Only misclassified", key="overview_only_wrong" if live else None, disabled=not live)
    n_show = st.slider("How many", 10, 60, STRIP_DEFAULT, step=10, key="overview_n" if live else None, disabled=not live)
    if live:
        return only_wrong, n_show
    if rec.get("strip"):
        st.image(static_chart.svg(rec["strip"], 1200), width="stretch")
    st.caption("Starting PyTorch: the page becomes interactive in a few seconds.")
    return False, STRIP_DEFAULT


def preload_plotly() -> None:
    """An invisible chart: the browser fetches and compiles Plotly's script while the server imports PyTorch, so
    the live page's charts draw without waiting for it. Sent once the saved page is on screen
    (:data:`PRELOAD_AFTER_S`), since fetching it with that page's own scripts delayed their drawing."""
    st.plotly_chart({"data": [{"type": "scatter", "x": [0], "y": [0], "marker": {"opacity": 0}}],
                     "layout": {"height": 10, "margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "xaxis": {"visible": False},
                                "yaxis": {"visible": False}}}, config={"staticPlot": True})


def show_saved(rec: dict, title: str) -> None:
    """The sidebar and the Overview as the record has them, every widget disabled."""
    st.sidebar.title("vizcore")
    st.sidebar.selectbox("Dataset", [rec["dataset"]], disabled=True)
    st.sidebar.selectbox("Model", [rec["model_label"]], disabled=True)
    st.sidebar.caption(rec["sidebar_caption"])
    st.title(title)
    draw(rec, live=False)
