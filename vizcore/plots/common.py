"""Figures every page uses: image grids, confusion matrices, per-class metric bars."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots


def fast_figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain trace and layout dicts, skipping Plotly's per-property validation (the slow part of
    building a figure with hundreds of shapes or annotations); the dicts must already be valid Plotly JSON."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def to_display(img: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, H, W) in [0, 1] -> (H, W) grey or (H, W, 3) uint8 RGB for Plotly."""
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    a = np.clip(a, 0, 1)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    elif a.ndim == 3:
        a = a.transpose(1, 2, 0)
    return (a * 255).round().astype(np.uint8)


def stretch_contrast(images: torch.Tensor) -> torch.Tensor:
    """Each image rescaled to span [0, 1], for display only: faint visualizations become readable."""
    flat = images.flatten(1)
    lo, hi = flat.min(1).values, flat.max(1).values
    scale = torch.where(hi > lo, hi - lo, torch.ones_like(hi))
    return ((flat - lo[:, None]) / scale[:, None]).view_as(images)


def image_grid(images, titles: list[str] | None = None, cols: int = 10, size: int = 110,
               highlight: list[bool] | None = None) -> go.Figure:
    """A grid of images (grey or RGB) with optional titles; ``highlight`` draws a red frame."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.01,
                        vertical_spacing=0.12 / max(rows, 1) if titles else 0.01)
    for i in range(n):
        a = to_display(images[i])
        r, c = i // cols + 1, i % cols + 1
        if a.ndim == 2:
            fig.add_trace(go.Heatmap(z=a[::-1], colorscale="gray", zmin=0, zmax=255, showscale=False,
                                     hovertemplate="x %{x}, y %{y}: %{z}<extra></extra>"), r, c)
        else:
            fig.add_trace(go.Image(z=a), r, c)
        if highlight and highlight[i]:
            fig.add_shape(type="rect", xref=f"x{i + 1 if i else ''} domain", yref=f"y{i + 1 if i else ''} domain",
                          x0=0, y0=0, x1=1, y1=1, line=dict(color="crimson", width=4))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, scaleanchor="x")
    for k in range(2, n + 1):
        fig.update_yaxes(scaleanchor=f"x{k}", row=(k - 1) // cols + 1, col=(k - 1) % cols + 1)
    fig.update_layout(height=rows * size + (30 * rows if titles else 0) + 20, margin=dict(l=5, r=5, t=30, b=5),
                      plot_bgcolor="white")
    fig.update_annotations(font_size=11)
    return fig


def confusion_heatmap(confusion, class_names: list[str], title: str = "Confusion matrix",
                      diverging: bool = False) -> go.Figure:
    """Rows: true class, columns: predicted class. ``diverging`` for a change (red/blue around 0)."""
    z = np.asarray(confusion)
    kw = dict(colorscale="RdBu", zmid=0) if diverging else dict(colorscale="Blues")
    heat = dict(type="heatmap", z=z, x=list(class_names), y=list(class_names), text=z, texttemplate="%{text}", **kw,
                hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
    return fast_figure([heat], dict(title=dict(text=title), xaxis=dict(title=dict(text="predicted")),
                                    yaxis=dict(title=dict(text="true"), autorange="reversed"),
                                    height=max(350, 32 * len(class_names) + 120), margin=dict(l=10, r=10, t=40, b=10)))


def per_class_bars(per_class: list[dict], title: str = "Per-class precision, recall and F1") -> go.Figure:
    """Grouped bars of precision, recall and F1 for each class (rows of ``classification_report``)."""
    names = [r["class"] for r in per_class]
    fig = go.Figure([
        go.Bar(name=m, x=names, y=[r[m] for r in per_class], hovertemplate=f"%{{x}} {m}: %{{y:.3f}}<extra></extra>")
        for m in ("precision", "recall", "f1")
    ])
    fig.update_layout(barmode="group", title=title, yaxis_range=[0, 1.02], height=380,
                      margin=dict(l=10, r=10, t=40, b=10), legend_orientation="h", legend_y=-0.2)
    return fig
