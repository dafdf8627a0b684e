"""Figures of prediction gradients and targeted perturbations (seed 002 chapter 4)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from vizcore.plots.common import blow_up, colourize, fast_figure, to_display


def network_diagram(scores: Mapping[str, torch.Tensor], highlight: Mapping[str, Sequence[int]] | None = None,
                    title: str = "Prediction gradient per feature map", height: int = 420) -> go.Figure:
    """Each layer a column of circles, one per filter, brighter for a higher score (seed 002 Table 4.1).

    Brightness is scaled per layer (scores of different layers differ by orders of magnitude); hover shows the
    raw score. Filters in ``highlight`` (e.g. knocked out) get a red cross.
    """
    fig = go.Figure()
    tallest = max(len(s) for s in scores.values())
    for col, (layer, s) in enumerate(scores.items()):
        v = s.detach().cpu().double().numpy()
        n = len(v)
        ys = np.linspace(0, tallest - 1, n) if n > 1 else np.array([(tallest - 1) / 2])
        top = v.max() if v.max() > 0 else 1.0
        fig.add_trace(go.Scatter(
            x=[col] * n, y=ys, mode="markers", name=layer, showlegend=False,
            marker=dict(size=max(8, min(26, 300 // max(tallest, 1))), color=v / top, colorscale="gray", cmin=0, cmax=1,
                        line=dict(color="#888", width=1), showscale=col == 0,
                        colorbar=dict(title="score / layer max", len=0.8)),
            customdata=np.stack([np.arange(n), v], axis=1),
            hovertemplate=f"{layer}, filter %{{customdata[0]:.0f}}<br>score %{{customdata[1]:.4g}}<extra></extra>"))
        marked = [i for i in (highlight or {}).get(layer, []) if 0 <= i < n]
        if marked:
            fig.add_trace(go.Scatter(
                x=[col] * len(marked), y=ys[marked], mode="markers", showlegend=False, hoverinfo="skip",
                marker=dict(symbol="x-thin", size=max(10, min(28, 320 // max(tallest, 1))),
                            line=dict(color="crimson", width=3))))
    fig.update_xaxes(tickvals=list(range(len(scores))), ticktext=list(scores), range=[-0.6, len(scores) - 0.4],
                     showgrid=False, zeroline=False)
    fig.update_yaxes(visible=False, autorange="reversed")
    fig.update_layout(title=title, height=height, plot_bgcolor="#20242c", margin=dict(l=10, r=10, t=40, b=10))
    return fig


def _mosaic(maps: torch.Tensor, diverging: bool, cols: int):
    """(C, h, w) maps tiled ``cols`` to a row with gaps of NaN: (mosaic, map number under each pixel (0 in the gaps),
    rows, cols, gap, largest |value|). Feature maps (``diverging=False``) each go on their own 0-1 scale, as separate
    panels would show them; PG maps keep their values, to share one red/blue scale."""
    a = maps.detach().cpu().float().numpy()
    n, h, w = a.shape
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    gap = max(1, h // 8)
    mosaic = np.full((rows * (h + gap), cols * (w + gap)), np.nan, dtype=np.float32)
    which = np.zeros(mosaic.shape, dtype=np.int16 if n < 2 ** 15 else np.int32)  # gaps hover nothing
    if not diverging:
        lo = a.reshape(n, -1).min(1)[:, None, None]
        hi = a.reshape(n, -1).max(1)[:, None, None]
        a = (a - lo) / np.where(hi > lo, hi - lo, 1)
    for i in range(n):
        r, c = divmod(i, cols)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = a[i]
        which[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = i
    zmax = float(np.nanmax(np.abs(mosaic))) or 1.0
    return mosaic, which, rows, cols, gap, zmax


def map_grid(maps: torch.Tensor, diverging: bool = False, cols: int = 8, size: int = 110, title: str | None = None,
             highlight: int | None = None) -> go.Figure:
    """A grid of (C, h, w) maps: feature maps (``diverging=False``) or PG maps on a shared red/blue scale.

    The maps are tiled into one mosaic heat map (one trace, fast to build and to draw); hover names the map and its
    value. Each row is headed by its first map's number ("#8") and each column by its offset ("+4"), outside the
    mosaic: a label above every map sat on the row above wherever the page draws the maps small.
    """
    mosaic, which, rows, cols, gap, zmax = _mosaic(maps, diverging, cols)
    n, h, w = maps.shape
    scale = dict(colorscale="RdBu_r", zmin=-zmax, zmax=zmax) if diverging else dict(colorscale="Viridis", zmin=0, zmax=1)
    label = "PG" if diverging else "output / map max"
    heat = dict(type="heatmap", z=mosaic, customdata=which, showscale=diverging, **scale, hoverongaps=False,
                hovertemplate=f"map %{{customdata}}: {label} %{{z:.3g}}<extra></extra>")
    shapes = []
    if highlight is not None and 0 <= highlight < n:
        r, c = divmod(highlight, cols)
        shapes.append(dict(type="rect", x0=c * (w + gap) - 0.5 - gap / 3, x1=c * (w + gap) + w - 0.5 + gap / 3,
                           y0=r * (h + gap) - 0.5 - gap / 3, y1=r * (h + gap) + h - 0.5 + gap / 3,
                           line=dict(color="orange", width=4)))
    font = dict(size=10, color="#666")
    annotations = [dict(x=c * (w + gap) + (w - 1) / 2, y=-gap / 2 - 0.5, text=f"+{c}", showarrow=False, yanchor="bottom",
                        font=font) for c in range(cols)]
    annotations += [dict(x=-gap / 2 - 0.5, y=r * (h + gap) + (h - 1) / 2, text=f"#{r * cols}", showarrow=False,
                         xanchor="right", font=font) for r in range(rows)]
    return fast_figure([heat], dict(
        title=dict(text=title) if title else None, height=rows * size + 60, shapes=shapes, annotations=annotations,
        margin=dict(l=35, r=5, t=50 if title else 30, b=5), plot_bgcolor="white", xaxis=dict(visible=False),
        yaxis=dict(visible=False, autorange="reversed", scaleanchor="x")))


def map_grid_picture(maps: torch.Tensor, diverging: bool = False, cols: int = 8, highlight: int | None = None,
                     map_px: int = 48) -> tuple[np.ndarray, float]:
    """:func:`map_grid` as one RGB picture (uint8, H x W x 3) and its largest |value|: the same mosaic, colours,
    headers and orange ring, without hover. A browser shows a picture at once; redrawing the two Plotly grids took
    about 280 ms of every image change on the Prediction gradients page (Chromium, 2 cores). ``map_px``: the
    smallest side of one map after the nearest-neighbour blow-up."""
    from PIL import Image, ImageDraw, ImageFont

    mosaic, _, rows, cols, gap, zmax = _mosaic(maps, diverging, cols)
    n, h, w = maps.shape
    unit = (mosaic / zmax + 1) / 2 if diverging else mosaic  # 0-1 along the colour scale
    k = max(1, -(-map_px // max(1, min(h, w))))
    big = blow_up(colourize(unit, "RdBu_r" if diverging else "Viridis"), k)
    left, top, pad = 40, 22, max(2, gap * k // 2)
    out = Image.new("RGB", (big.width + left + pad + 1, big.height + top + pad + 1), "white")
    out.paste(big, (left, top))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=16)
    for c in range(cols):
        draw.text((left + (c * (w + gap) + w / 2) * k, top - 3), f"+{c}", fill="#666", font=font, anchor="mb")
    for r in range(rows):
        draw.text((left - 4, top + (r * (h + gap) + h / 2) * k), f"#{r * cols}", fill="#666", font=font, anchor="rm")
    if highlight is not None and 0 <= highlight < n:
        r, c = divmod(highlight, cols)
        x0, y0 = left + c * (w + gap) * k, top + r * (h + gap) * k
        draw.rectangle((x0 - pad, y0 - pad, x0 + w * k + pad - 1, y0 + h * k + pad - 1), outline="orange", width=3)
    return np.asarray(out), zmax


def overlay(image: torch.Tensor, heat: torch.Tensor | None = None, box: tuple[int, int, int, int] | None = None,
            title: str = "", opacity: float = 0.5, diverging: bool = False, size: int = 320) -> go.Figure:
    """The input image with a PG heat map over it and the feature's box (top, left, bottom, right; exclusive)."""
    a = to_display(image)
    h, w = a.shape[:2]
    rgb = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    if heat is not None:
        z = heat.detach().cpu().float().numpy()
        zmax = float(np.abs(z).max()) or 1.0
        kw = dict(colorscale="RdBu_r", zmin=-zmax, zmax=zmax) if diverging else dict(colorscale="Hot", zmin=0, zmax=zmax)
        fig.add_trace(go.Heatmap(z=z, opacity=opacity, showscale=True, colorbar=dict(len=0.8, thickness=12), **kw,
                                 hovertemplate="x %{x}, y %{y}: PG %{z:.3g}<extra></extra>"))
    if box is not None:
        t, l, b, r = box
        fig.add_shape(type="rect", x0=l - 0.5, x1=r - 0.5, y0=t - 0.5, y1=b - 0.5, line=dict(color="lime", width=3))
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x")
    fig.update_layout(title=title, height=size, width=size + 80, margin=dict(l=5, r=5, t=40, b=5))
    return fig


def overlay_picture(image: torch.Tensor, heat: torch.Tensor, opacity: float = 0.5,
                    side_px: int = 260) -> tuple[np.ndarray, float]:
    """:func:`overlay` with a diverging heat map as one RGB picture (uint8) and the heat's largest |value|: the
    input image with the heat map blended over it on the red/blue scale, blown up to about ``side_px``."""
    a = to_display(image)
    rgb = np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a
    z = heat.detach().cpu().float().numpy()
    zmax = float(np.abs(z).max()) or 1.0
    mixed = (rgb * (1 - opacity) + colourize((z / zmax + 1) / 2, "RdBu_r") * opacity).round().astype(np.uint8)
    return np.asarray(blow_up(mixed, max(1, side_px // max(mixed.shape[:2])))), zmax


def success_matrix(success: Sequence[Sequence[float]], class_names: Sequence[str], eps: float) -> go.Figure:
    """Share of images of each source class (rows) pushed into each target class (columns) (seed 002 Fig. 4.6)."""
    z = np.asarray(success, dtype=float)
    text = np.where(np.isnan(z), "", np.char.mod("%.0f%%", np.nan_to_num(z) * 100))
    fig = go.Figure(go.Heatmap(z=z, x=list(class_names), y=list(class_names), zmin=0, zmax=1, colorscale="Reds",
                               text=text, texttemplate="%{text}", colorbar=dict(title="success"),
                               hovertemplate="%{y} pushed to %{x}: %{z:.1%}<extra></extra>"))
    fig.update_layout(title=f"Targeted success at step size {eps:g}", xaxis_title="target class", xaxis_type="category",
                      yaxis_title="source class", yaxis_autorange="reversed", yaxis_type="category",
                      height=max(380, 28 * len(class_names) + 140), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def perturbation_curves(eps: Sequence[float], error: Sequence[float], success_rate: Sequence[float],
                        target_success: Sequence[Sequence[float]], target_names: Sequence[str]) -> go.Figure:
    """Induced error and targeted success against step size, one thin line per target (seed 002 Figs 4.6, 4.7)."""
    fig = go.Figure()
    ts = np.asarray(target_success, dtype=float)
    for j, name in enumerate(target_names):
        fig.add_trace(go.Scatter(x=list(eps), y=ts[:, j], mode="lines", name=f"→ {name}", line=dict(width=1),
                                 opacity=0.6, hovertemplate=f"→ {name}, step %{{x}}: %{{y:.1%}}<extra></extra>"))
    fig.add_trace(go.Scatter(x=list(eps), y=list(error), mode="lines+markers", name="error induced",
                             line=dict(width=4, color="black")))
    fig.add_trace(go.Scatter(x=list(eps), y=list(success_rate), mode="lines+markers", name="target reached",
                             line=dict(width=4, color="crimson", dash="dash")))
    fig.update_layout(xaxis_title="step size (L2 distance)", yaxis_title="share of pushes", yaxis_range=[0, 1.02],
                      yaxis_tickformat=".0%", height=420, margin=dict(l=10, r=10, t=30, b=10))
    return fig
