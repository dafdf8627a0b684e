"""Figures of the student lab: per-class F1 curves, accuracy against synthetic-set size, synthetic galleries."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vizcore.plots.common import image_grid

ROLE_STYLE = {"teacher": dict(color="black", dash="dash"), "baseline": dict(dash="dot"), "student": dict()}


def f1_curves(series: list[tuple[str, str, list[dict]]], title: str = "F1 per class") -> go.Figure:
    """One line per model over the classes (seed 003 Figures 4, 6, 8, 10, 13, 17).

    ``series``: (label, role, per_class rows of ``classification_report``); role is teacher, student or
    baseline and sets the line style.
    """
    fig = go.Figure()
    for label, role, rows in series:
        fig.add_trace(go.Scatter(
            x=[r["class"] for r in rows], y=[r["f1"] for r in rows], name=label, mode="lines+markers",
            line=ROLE_STYLE.get(role, {}), hovertemplate=f"{label}<br>%{{x}}: F1 %{{y:.3f}}<extra></extra>"))
    fig.update_layout(title=title, yaxis_title="F1", xaxis_title="class", yaxis_range=[0, 1.02], height=420,
                      margin=dict(l=10, r=10, t=40, b=10), legend_orientation="h", legend_y=-0.25)
    return fig


def accuracy_vs_size(sweep: list[dict], teacher_accuracy: float | None = None,
                     title: str = "Test accuracy against training-set size") -> go.Figure:
    """Synthetic-set students and real-subset baselines of the same size on one axis (seed 000 Table 2)."""
    sizes = [r["size"] for r in sweep]
    fig = go.Figure(go.Scatter(x=sizes, y=[r["synthetic"] for r in sweep], name="synthetic images",
                               mode="lines+markers"))
    if any(r.get("real") is not None for r in sweep):
        fig.add_trace(go.Scatter(x=sizes, y=[r.get("real") for r in sweep], name="real images (baseline)",
                                 mode="lines+markers", line=dict(dash="dot")))
    if teacher_accuracy is not None:
        fig.add_hline(y=teacher_accuracy, line_dash="dash", line_color="black", annotation_text="teacher")
    fig.update_layout(title=title, xaxis_type="log", xaxis_title="images", yaxis_title="accuracy",
                      yaxis_range=[0, 1.02], height=380, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def synthetic_gallery(images, probs, class_names: list[str], per_class: int = 4, size: int = 95):
    """The first ``per_class`` images of each teacher label, titled with the label and its soft probability.
    Unbounded images (seed 003's free-pixel visualizations) are min-max scaled together to [0, 1] for display."""
    probs = np.asarray(probs)
    lo, hi = float(images.min()), float(images.max())
    if lo < 0 or hi > 1:
        images = (images - lo) / max(hi - lo, 1e-12)
    labels = probs.argmax(1)
    pick = [i for k in range(len(class_names)) for i in np.flatnonzero(labels == k)[:per_class]]
    titles = [f"{class_names[labels[i]][:10]} {probs[i, labels[i]]:.2f}" for i in pick]
    return image_grid([images[i] for i in pick], titles, cols=max(per_class, min(10, 2 * per_class)), size=size)


def agreement_curves(live: list[dict], title: str = "Agreement with the teacher on a synthetic hold-out") -> go.Figure:
    """The engine's live curves: one line per student, (step, share of hold-out images where it agrees)."""
    fig = go.Figure()
    for curve in live:
        pts = curve["points"]
        fig.add_trace(go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], name=curve["student"],
                                 mode="lines+markers"))
    fig.update_layout(title=title, xaxis_title="engine step", yaxis_title="agreement", yaxis_range=[0, 1.02],
                      height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig
