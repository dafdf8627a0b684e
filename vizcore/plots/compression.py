"""Figures of the compression page: per-class accuracy of each approach (seed 004's table, class by class),
feature vectors as bars or heatmaps (the "image" of a table row), and KegNet's generator pictures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from vizcore.plots.common import image_grid

COLORS = {"Original": "#7f7f7f", "T": "crimson", "T+Uniform": "#c7a76c", "T+Gaussian": "#8aa4c8", "T+KegNet": "#4c72b0"}


def approach_bars(recalls: Mapping[str, Sequence[float]], class_names: Sequence[str],
                  title: str = "Accuracy per class (recall)") -> go.Figure:
    """One group of bars per class, one bar per approach (Original, T, T+Uniform, ...)."""
    fig = go.Figure([go.Bar(name=a, x=list(class_names), y=list(v), marker_color=COLORS.get(a, "#2ca02c"),
                            hovertemplate="%{x}: %{y:.1%}<extra>" + a + "</extra>") for a, v in recalls.items()])
    fig.update_layout(barmode="group", title=title, yaxis_tickformat=".0%", yaxis_range=[0, 1.02], height=380,
                      xaxis_type="category", margin=dict(l=10, r=10, t=40, b=40), legend_orientation="h", legend_y=-0.2)
    return fig


def feature_bars(values: torch.Tensor | np.ndarray, feature_names: Sequence[str], labels: Sequence[str],
                 title: str = "") -> go.Figure:
    """Rows of standardized features as grouped bars over the named features (a table's "image")."""
    v = np.asarray(values, dtype=float).reshape(len(labels), -1)
    fig = go.Figure([go.Bar(name=str(lab), x=list(feature_names), y=row,
                            hovertemplate="%{x}: %{y:.2f} sd<extra>" + str(lab) + "</extra>") for lab, row in zip(labels, v)])
    fig.update_layout(barmode="group", title=title, yaxis_title="standard deviations from the mean", height=360,
                      margin=dict(l=10, r=10, t=40, b=40), legend_orientation="h", legend_y=-0.25)
    return fig


def feature_heatmap(values: torch.Tensor | np.ndarray, feature_names: Sequence[str], row_names: Sequence[str],
                    title: str = "") -> go.Figure:
    """Rows of standardized features as a diverging heatmap (rows: classes or walk steps; columns: features)."""
    v = np.asarray(values, dtype=float).reshape(len(row_names), -1)
    top = float(np.abs(v).max()) or 1.0
    fig = go.Figure(go.Heatmap(z=v[::-1], x=list(feature_names), y=list(row_names)[::-1], colorscale="RdBu_r",
                               zmin=-top, zmax=top, hovertemplate="%{y} · %{x}: %{z:.2f}<extra></extra>"))
    fig.update_layout(title=title, height=max(220, 22 * len(row_names) + 90), margin=dict(l=10, r=10, t=40, b=40))
    return fig


def generator_figure(pictures: torch.Tensor, row_names: Sequence[str], feature_names: Sequence[str] | None,
                     title: str = "") -> go.Figure:
    """One generator's pictures (one per row name): an image grid, or a heatmap for a table's rows."""
    if feature_names is not None:
        return feature_heatmap(pictures, feature_names, row_names, title)
    fig = image_grid(pictures.clamp(0, 1), titles=list(row_names), cols=len(row_names), size=90)
    fig.update_layout(title=title, margin=dict(t=50))
    return fig
