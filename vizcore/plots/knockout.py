"""Figures of the knockout page: per-class accuracy before / after, filter scores with the knocked ones marked,
and knockout curves (seed 002 Figures 4.1, 4.2) with the random-order band."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from vizcore.plots.common import fast_figure

KNOCKED, KEPT = "crimson", "#8aa4c8"


def class_accuracy_bars(intact: Sequence[float], knocked: Sequence[float], class_names: Sequence[str],
                        target: int | None = None) -> go.Figure:
    """Per-class accuracy of the intact and the knocked-out network; the chosen class's label is bold."""
    names = [f"<b>{c}</b>" if i == target else c for i, c in enumerate(class_names)]
    bars = [dict(type="bar", name="intact", x=names, y=np.asarray(intact, dtype=float), marker=dict(color="#b0b0b0"),
                 hovertemplate="%{x}: %{y:.1%}<extra>intact</extra>"),
            dict(type="bar", name="knocked out", x=names, y=np.asarray(knocked, dtype=float),
                 marker=dict(color=KNOCKED), hovertemplate="%{x}: %{y:.1%}<extra>knocked out</extra>")]
    return fast_figure(bars, dict(barmode="group", title=dict(text="Accuracy per class"), xaxis=dict(type="category"),
                                  yaxis=dict(tickformat=".0%", range=[0, 1.02]), height=360,
                                  margin=dict(l=10, r=10, t=40, b=40), legend=dict(orientation="h", y=-0.15)))


def filter_score_bars(scores: Mapping[str, Sequence[float]], mask: Mapping[str, Sequence[int]],
                      title: str = "PG score of each filter (knocked-out filters in red)") -> go.Figure:
    """One bar per filter, grouped by layer, each layer scaled to its own maximum; knocked filters in red.

    The colours are spelled out bar by bar: a colour scale over 224 bars made Plotly.js take 90-130 ms per redraw in
    Chromium, the spelled-out colours 20-40 ms (the chart is redrawn at every slider step of the Knockout page)."""
    x, y, knocked_flag, raw = [], [], [], []
    for layer, vals in scores.items():
        v = np.asarray(vals, dtype=float)
        top = v.max() if len(v) and v.max() > 0 else 1.0
        knocked = set(mask.get(layer, ()))
        x += [f"{layer}:{i}" for i in range(len(v))]
        y.append(v / top)
        raw.append(v)
        knocked_flag += [1.0 if i in knocked else 0.0 for i in range(len(v))]
    y_all = np.concatenate(y) if y else np.zeros(0)
    flag = np.asarray(knocked_flag)
    bar = dict(type="bar", x=x, y=y_all, customdata=np.stack([np.concatenate(raw) if raw else y_all, flag], 1),
               marker=dict(color=np.where(flag > 0, KNOCKED, KEPT).tolist()),
               hovertemplate="%{x}<br>PG score %{customdata[0]:.3g}<extra></extra>")
    return fast_figure([bar], dict(title=dict(text=title), height=260, margin=dict(l=10, r=10, t=40, b=10), bargap=0.1,
                                   yaxis=dict(title=dict(text="score / layer max")),
                                   xaxis=dict(showticklabels=len(x) <= 60)))


def knockout_curves(curves: Sequence[dict], which: str = "class", title: str = "") -> go.Figure:
    """Error after knocking out k filters for each order; ``which`` is ``class`` or ``overall``.

    ``curves`` are :meth:`vizcore.explain.knockout.Curve.to_dict` dicts; a curve with a spread (the random order) is
    drawn as its mean with a band of one standard deviation.
    """
    fig = go.Figure()
    for c in curves:
        y = np.asarray(c[f"{which}_error"])
        dash = "dot" if "lowest" in c["label"] else None
        if f"{which}_error_std" in c:
            s = np.asarray(c[f"{which}_error_std"])
            fig.add_trace(go.Scatter(x=c["k"] + c["k"][::-1], y=np.r_[y + s, (y - s)[::-1]].clip(0, 1),
                                     fill="toself", fillcolor="rgba(120,120,120,0.2)", line_width=0,
                                     hoverinfo="skip", showlegend=False))
            fig.add_trace(go.Scatter(x=c["k"], y=y, name=f"{c['label']} (mean ± sd)", line=dict(color="gray", dash="dash")))
        else:
            fig.add_trace(go.Scatter(x=c["k"], y=y, name=c["label"], mode="lines+markers", line_dash=dash,
                                     marker_size=5))
    fig.update_layout(title=title or f"{'Class' if which == 'class' else 'Overall'} error after knocking out k filters",
                      xaxis_title="filters knocked out (k)", yaxis_title="error", yaxis_tickformat=".0%",
                      yaxis_range=[0, 1.02], height=420, margin=dict(l=10, r=10, t=40, b=10))
    return fig
