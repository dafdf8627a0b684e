"""The presenter's tally of a classroom quiz: how many people named each class for each picture, with the model's
answer and the intended class marked once revealed (seed 000 section 4.2, Table 4)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from vizcore.classroom import Quiz


def tally_figure(quiz: Quiz, tally: dict, reveal: bool = False) -> go.Figure:
    """Rows: pictures; columns: classes; cell: people who chose that class. ``reveal`` adds the model's answer
    (black ring) and the intended class (crimson square) around the cells."""
    counts = np.asarray(tally["counts"], dtype=float)
    rows = [f"#{q + 1}" for q in range(quiz.n)]
    text = np.where(counts > 0, counts.astype(int).astype(str), "")
    fig = go.Figure(go.Heatmap(z=counts, x=quiz.class_names, y=rows, colorscale="Blues", zmin=0,
                               zmax=max(1.0, float(counts.max())), text=text, texttemplate="%{text}",
                               textfont=dict(size=15), showscale=False,
                               hovertemplate="picture %{y}: %{z} people said %{x}<extra></extra>"))
    if reveal:  # open marks around the cells, so the room's counts stay readable
        names = quiz.class_names
        fig.add_trace(go.Scatter(x=[names[c] for c in quiz.model_answers], y=rows, mode="markers", name="the model",
                                 marker=dict(symbol="circle-open", size=24, color="black",
                                             line=dict(width=2.5, color="black"))))
        fig.add_trace(go.Scatter(x=[names[c] for c in quiz.labels], y=rows, mode="markers", name="intended class",
                                 marker=dict(symbol="square-open", size=31, color="crimson",
                                             line=dict(width=2.5, color="crimson"))))
    # categories, each labelled: Plotly reads "#7" as the number 7 and digits' class names as numbers, and a number
    # axis labels only every fifth picture or second class
    fig.update_yaxes(type="category", autorange="reversed", tickfont=dict(size=14), title="picture", dtick=1)
    fig.update_xaxes(type="category", side="top", tickfont=dict(size=14), dtick=1)
    fig.update_layout(height=max(320, 34 * quiz.n + 120), margin=dict(l=10, r=10, t=60, b=10),
                      legend=dict(orientation="h", y=-0.02, yanchor="top"), plot_bgcolor="white")
    return fig
