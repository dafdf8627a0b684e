"""Figures every page uses: image grids, confusion matrices, per-class metric bars."""

from __future__ import annotations

import functools

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale
import torch


# Streamlit's light chart look, carried by the figure itself: a chart shown with ``theme=None`` skips the browser's
# theming pass, which took about 270 ms of every Knockout slider step in Chromium (bench/latency.py).
LIGHT_TEMPLATE = dict(layout=dict(
    font=dict(family='"Source Sans Pro", sans-serif', color="#31333F", size=13), paper_bgcolor="rgba(0,0,0,0)",
    plot_bgcolor="rgba(0,0,0,0)", colorway=["#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d", "#7defa1"],
    xaxis=dict(gridcolor="#e6eaf1", zeroline=False, linecolor="#e6eaf1", automargin=True),
    yaxis=dict(gridcolor="#e6eaf1", zeroline=False, linecolor="#e6eaf1", automargin=True)))


@functools.cache
def _light_layout_template() -> dict:
    """:data:`LIGHT_TEMPLATE` over Plotly's default template, as JSON: what ``update_layout(template=...)`` makes."""
    return go.Figure().update_layout(template=LIGHT_TEMPLATE).to_dict()["layout"]["template"]


def light(fig: go.Figure) -> go.Figure:
    """``fig`` in :data:`LIGHT_TEMPLATE`'s look, for ``st.plotly_chart(..., theme=None)``: the same figure as
    ``fig.update_layout(template=LIGHT_TEMPLATE)`` without validating the template again at every call (about 18 ms
    a chart, three charts at every Knockout slider step)."""
    spec = fig.to_dict()
    spec["layout"]["template"] = _light_layout_template()
    return go.Figure(spec, _validate=False)


def fast_figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain trace and layout dicts, skipping Plotly's per-property validation (the slow part of
    building a figure with hundreds of shapes or annotations); the dicts must already be valid Plotly JSON.

    Named colour scales are spelled out here, as validation would: Plotly.js knows neither Plotly's "gray" nor the
    "_r" reversals, and its own "Blues" runs the other way (unvalidated, grey pictures were drawn in false colours)."""
    for trace in data:
        for holder in (trace, trace.get("marker") or {}):
            if isinstance(holder.get("colorscale"), str):
                holder["colorscale"] = get_colorscale(holder["colorscale"])
    return go.Figure({"data": data, "layout": layout}, _validate=False)


@functools.cache
def colour_lut(name: str) -> np.ndarray:
    """Plotly's colour scale ``name`` ("Viridis", "RdBu_r", ...) as a (256, 3) uint8 table, for pictures made on
    the server in the colours the interactive charts use."""
    from plotly.colors import unlabel_rgb

    scale = get_colorscale(name)
    stops = np.array([s for s, _ in scale])
    rgb = np.array([unlabel_rgb(c) if c.startswith("rgb") else tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
                    for _, c in scale], dtype=float)
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, stops, rgb[:, j]) for j in range(3)], 1).round().astype(np.uint8)


def colourize(unit: np.ndarray, name: str) -> np.ndarray:
    """Values along the colour scale (0 to 1; NaN is white) as uint8 RGB in Plotly's scale ``name``."""
    rgb = colour_lut(name)[(np.nan_to_num(unit) * 255).clip(0, 255).astype(np.uint8)]
    rgb[np.isnan(unit)] = 255
    return rgb


def blow_up(a: np.ndarray, k: int):
    """uint8 picture ``a`` ((H, W) or (H, W, C)) as a PIL image ``k`` times larger, nearest neighbour: pixels stay
    sharp squares."""
    from PIL import Image

    return Image.fromarray(a).resize((a.shape[1] * k, a.shape[0] * k), Image.NEAREST)


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
    """A grid of images (grey or RGB) with optional titles; ``highlight`` draws a red frame.

    The images are tiled into one mosaic (a single trace: quick to build, send and draw, even for 60 pictures).
    """
    n = len(images)
    arrays = [to_display(images[i]) for i in range(n)]
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    h = max((a.shape[0] for a in arrays), default=1)
    w = max((a.shape[1] for a in arrays), default=1)
    gap, top = max(1, w // 10), (max(2, h // 4) if titles else 0)  # room above each picture for its title
    rgb = any(a.ndim == 3 for a in arrays)
    H, W = rows * (h + gap + top), cols * (w + gap)
    mosaic = np.full((H, W, 3) if rgb else (H, W), 255 if rgb else np.nan, dtype=np.uint8 if rgb else np.float32)
    shapes, annotations = [], []
    for i, a in enumerate(arrays):
        r, c = divmod(i, cols)
        y0, x0 = r * (h + gap + top) + top, c * (w + gap)
        mosaic[y0:y0 + a.shape[0], x0:x0 + a.shape[1]] = np.repeat(a[..., None], 3, 2) if rgb and a.ndim == 2 else a
        if titles:
            annotations.append(dict(x=x0 + (w - 1) / 2, y=y0 - 0.5, text=titles[i], showarrow=False, yanchor="bottom",
                                    font=dict(size=11)))
        if highlight and highlight[i]:
            shapes.append(dict(type="rect", x0=x0 - 0.5, x1=x0 + w - 0.5, y0=y0 - 0.5, y1=y0 + h - 0.5,
                               line=dict(color="crimson", width=4)))
    trace = dict(type="image", z=mosaic, hoverinfo="skip") if rgb else dict(
        type="heatmap", z=mosaic, colorscale="gray", zmin=0, zmax=255, showscale=False, hoverongaps=False,
        hovertemplate="x %{x}, y %{y}: %{z}<extra></extra>")
    return fast_figure([trace], dict(
        height=int(rows * size * (h + gap + top) / (h + gap)) + 30, margin=dict(l=5, r=5, t=10, b=5),
        plot_bgcolor="white", shapes=shapes, annotations=annotations,
        xaxis=dict(visible=False, range=[-0.5, W - 0.5], constrain="domain"),
        yaxis=dict(visible=False, range=[H - 0.5, -0.5], scaleanchor="x", constrain="domain")))


def confusion_heatmap(confusion, class_names: list[str], title: str = "Confusion matrix",
                      diverging: bool = False) -> go.Figure:
    """Rows: true class, columns: predicted class. ``diverging`` for a change (red/blue around 0): its unchanged
    cells are left blank, which reads at a glance and draws faster (the Knockout page redraws it at every slider
    step; labelling all 100 cells of a 10-class change took Chromium about 190 ms a step, the changed ones 135 ms)."""
    z = np.asarray(confusion)
    kw = dict(colorscale="RdBu", zmid=0) if diverging else dict(colorscale="Blues")
    text = np.where(z != 0, z.astype(str), "") if diverging else z
    heat = dict(type="heatmap", z=z, x=list(class_names), y=list(class_names), text=text, texttemplate="%{text}", **kw,
                hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
    return fast_figure([heat], dict(title=dict(text=title), xaxis=dict(title=dict(text="predicted"), type="category"),
                                    yaxis=dict(title=dict(text="true"), autorange="reversed", type="category"),
                                    height=max(350, 32 * len(class_names) + 120), margin=dict(l=10, r=10, t=40, b=10)))


def per_class_bars(per_class: list[dict], title: str = "Per-class precision, recall and F1") -> go.Figure:
    """Grouped bars of precision, recall and F1 for each class (rows of ``classification_report``)."""
    names = [r["class"] for r in per_class]
    fig = go.Figure([
        go.Bar(name=m, x=names, y=[r[m] for r in per_class], hovertemplate=f"%{{x}} {m}: %{{y:.3f}}<extra></extra>")
        for m in ("precision", "recall", "f1")
    ])
    fig.update_layout(barmode="group", title=title, yaxis_range=[0, 1.02], height=380, xaxis_type="category",
                      margin=dict(l=10, r=10, t=40, b=10), legend_orientation="h", legend_y=-0.2)
    return fig
