"""The network diagram: input image -> every conv layer's feature maps -> dense units -> class probabilities,
with edges as thick as the prediction gradient they carry and every map ringed by its PG score (seed 002
chapter 3; the layout follows CNN Explainer, Wang et al. 2020, which has no gradients, knockouts or user models).

Data in (:class:`vizcore.explain.network.NetworkFlow`), figure out. Each map and unit is also an (almost
invisible) scatter point whose ``customdata`` is ``[layer, index]``, so a click can open it elsewhere.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from vizcore.explain.network import FlowLayer, NetworkFlow
from vizcore.plots.common import blow_up, colour_lut, fast_figure, to_display

RING_SCALE = "YlOrRd"
EDGE_RGB = "31,119,180"
KNOCKED_GREY = "#9a9a9a"
SELECTED = "#00b4d8"
GAP = 2.4  # empty cells between two columns, where the edges run
THUMB = 0.84  # thumbnail side in cells


@dataclass
class _Column:
    layer: FlowLayer
    x0: float
    width: float
    centers: np.ndarray  # (n, 2) x, y of every node


def _png(a: np.ndarray, min_side: int = 56) -> str:
    """uint8 (H, W), (H, W, 2) grey + alpha or (H, W, 3) -> data URI of a PNG, blown up with nearest neighbours so
    pixels stay sharp (``min_side``: the smaller of H and W after the blow-up)."""
    k = max(1, math.ceil(min_side / max(min(a.shape[:2]), 1)))
    buf = io.BytesIO()
    blow_up(a, k).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _montage(pix: np.ndarray, nc: int, nr: int) -> tuple[np.ndarray, float, float]:
    """(n, h, w) uint8 thumbnails -> one grey + alpha picture of an ``nr`` x ``nc`` grid of cells (map m in column
    m // nr, row m % nr), each thumbnail centred in its cell with transparent margins that let the edges show.
    One PNG per layer instead of one per map: the diagram of a 64-map layer is built and sent several times faster.
    Returns the picture and the thumbnail's share of a cell's width and height."""
    n, h, w = pix.shape
    gh, gw = max(1, round(h * (1 / THUMB - 1))), max(1, round(w * (1 / THUMB - 1)))
    out = np.zeros((nr * (h + gh), nc * (w + gw), 2), np.uint8)
    for m in range(n):
        y, x = (m % nr) * (h + gh) + gh // 2, (m // nr) * (w + gw) + gw // 2
        out[y:y + h, x:x + w] = np.stack([pix[m], np.full_like(pix[m], 255)], -1)
    return out, w / (w + gw), h / (h + gh)


def _grid(n: int, rows: int) -> tuple[int, int]:
    cols = max(1, math.ceil(n / rows))
    return cols, math.ceil(n / cols)


def _layout(flow: NetworkFlow, rows: int) -> list[_Column]:
    cols, x = [], 0.0
    for layer in flow.layers:
        if layer.kind == "input":
            side = min(rows, 5)
            centers = np.array([[x + side / 2, rows / 2]])
            width = side
        elif layer.kind == "conv":
            nc, nr = _grid(layer.width, rows)
            m = np.arange(layer.width)
            centers = np.stack([x + m // nr + 0.5, (rows - nr) / 2 + m % nr + 0.5], 1).astype(float)
            width = nc
        else:
            n = layer.width
            ys = np.linspace(0.5, rows - 0.5, n) if n > 1 else np.array([rows / 2])
            centers = np.stack([np.full(n, x + 0.5), ys], 1)
            width = 1
        cols.append(_Column(layer, x, width, centers))
        x += width + GAP
    return cols


def _rel(v: np.ndarray) -> np.ndarray:
    top = float(np.max(v)) if len(v) else 0.0
    return v / top if top > 0 else np.zeros_like(v)


def _edge_traces(a: _Column, b: _Column, w: np.ndarray, keep: int) -> list[dict]:
    """The ``keep`` strongest edges between two columns, in four opacity bands (one trace each)."""
    w = np.asarray(w, dtype=float)  # (len(b), len(a))
    flat = w.ravel()
    if not len(flat) or flat.max() <= 0:
        return []
    order = np.argsort(-flat)[:keep]
    order = order[flat[order] > 0.02 * flat.max()]
    rel = flat[order] / flat.max()
    traces = []
    for lo, hi, width in ((0.0, 0.15, 0.6), (0.15, 0.4, 1.4), (0.4, 0.7, 2.6), (0.7, 1.01, 4.2)):
        sel = order[(rel >= lo) & (rel < hi)]
        if not len(sel):
            continue
        j, i = np.unravel_index(sel, w.shape)
        xs = np.stack([a.centers[i, 0] + (a.width / 2 if a.layer.kind == "input" else 0), b.centers[j, 0],
                       np.full(len(sel), np.nan)], 1).ravel()
        ys = np.stack([a.centers[i, 1], b.centers[j, 1], np.full(len(sel), np.nan)], 1).ravel()
        traces.append(dict(type="scatter", x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                           line=dict(width=width, color=f"rgba({EDGE_RGB},{0.15 + 0.55 * min(hi, 1):.2f})")))
    return traces


def network_figure(flow: NetworkFlow, class_names: Sequence[str], *, title: str = "",
                   selected: tuple[str, int] | None = None, rows: int = 16, edges_per_layer: int = 60,
                   width: int = 1100) -> go.Figure:
    """The whole network for one image, as CNN Explainer draws it, plus prediction gradients and knockouts.

    Args:
        flow: :func:`vizcore.explain.network.network_flow` of one image and class.
        selected: (layer, index) drawn with a cyan frame (the map open in the per-filter browser).
        rows: most maps stacked in one column; a wider layer is folded into several columns.
        edges_per_layer: the strongest edges drawn between two columns (all edges' weights are in ``flow``).
        width: the width in pixels the figure is laid out for (cells stay square; the height follows).
    Knocked-out maps and units are grey, with no edges: they pass nothing on.
    """
    conv_widths = [lay.width for lay in flow.layers if lay.kind == "conv"]
    rows = max(8, min(rows, max(conv_widths, default=10)))
    cols = _layout(flow, rows)
    traces = [t for k, w in enumerate(flow.edges)
              for t in _edge_traces(cols[k], cols[k + 1], w.numpy(), edges_per_layer)]
    images, shapes, annotations = [], [], []
    ring_colors = {}
    for c in cols:
        lay = c.layer
        rel = _rel(lay.pg.numpy().astype(float))
        ring_colors[lay.name] = sample_colorscale(RING_SCALE, list(0.15 + 0.85 * rel)) if len(rel) else []
        label = {"input": "input", "conv": f"{lay.name}<br>{lay.width} maps",
                 "dense": f"{lay.name}<br>{lay.width} units",
                 "output": "probabilities" if flow.output == "prob" else "probabilities (y = logit)"}[lay.kind]
        annotations.append(dict(x=c.x0 + c.width / 2, y=-0.35, text=f"<b>{label}</b>", showarrow=False,
                                yanchor="bottom", font=dict(size=14)))
        if lay.kind == "input":
            side = c.width
            images.append(dict(source=_png(to_display(lay.acts)), x=c.x0, y=(rows - side) / 2, sizex=side, sizey=side,
                               xref="x", yref="y", sizing="stretch", layer="above"))
            shapes.append(dict(type="rect", x0=c.x0, x1=c.x0 + side, y0=(rows - side) / 2, y1=(rows + side) / 2,
                               line=dict(color="#444", width=1), layer="above"))
        elif lay.kind == "conv":
            a = lay.acts.numpy().astype(float)
            if a.min() < 0:  # tanh / ELU maps: each from its lowest to its highest value
                a = a - a.reshape(len(a), -1).min(1)[:, None, None]
            top = a.reshape(len(a), -1).max(1)
            # square root: sparse ReLU maps stay visible on a projector; knocked-out maps are flat grey
            pix = (np.sqrt(np.clip(a / np.where(top > 0, top, 1)[:, None, None], 0, 1)) * 255).round().astype(np.uint8)
            pix[list(lay.knocked)] = 200
            nc, nr = _grid(lay.width, rows)
            sheet, tx, ty = _montage(pix, nc, nr)
            images.append(dict(source=_png(sheet, min_side=56 * min(nr, nc)), x=c.x0, y=(rows - nr) / 2, sizex=nc, sizey=nr,
                               xref="x", yref="y", sizing="stretch", layer="above"))
            for m, (cx, cy) in enumerate(c.centers):
                x0, y0 = cx - tx / 2, cy - ty / 2
                knocked = m in lay.knocked
                ring = KNOCKED_GREY if knocked else ring_colors[lay.name][m]
                shapes.append(dict(type="rect", x0=x0 - 0.05, x1=x0 + tx + 0.05, y0=y0 - 0.05, y1=y0 + ty + 0.05,
                                   line=dict(color=ring, width=1 + 3.5 * float(rel[m]) if not knocked else 1),
                                   layer="above"))
                if knocked:
                    for ya, yb in ((y0, y0 + ty), (y0 + ty, y0)):
                        shapes.append(dict(type="line", x0=x0, x1=x0 + tx, y0=ya, y1=yb, layer="above",
                                           line=dict(color="crimson", width=2)))
        if selected and selected[0] == lay.name and 0 <= selected[1] < lay.width and lay.kind != "input":
            cx, cy = c.centers[selected[1]]
            r = 0.62 if lay.kind == "conv" else 0.45
            shapes.append(dict(type="rect", x0=cx - r, x1=cx + r, y0=cy - r, y1=cy + r, layer="above",
                               line=dict(color=SELECTED, width=4)))
        traces.append(_nodes(c, rel, ring_colors[lay.name], class_names, flow))
    if cols[-1].layer.kind == "output":
        c = cols[-1]
        for k, (cx, cy) in enumerate(c.centers):
            p = float(flow.probs[k])
            bold = k == flow.target
            annotations.append(dict(x=cx + 0.6, y=cy, xanchor="left", showarrow=False,
                                    text=(f"<b>{class_names[k]} {p:.0%}</b>" if bold else f"{class_names[k]} {p:.0%}"),
                                    font=dict(size=13, color="crimson" if bold else "#333")))
    x_end = cols[-1].x0 + cols[-1].width + (7 if cols[-1].layer.kind == "output" else 1)
    images.append(_ring_scale(x_end, rows, annotations))
    x_end += 2.6
    height = int(min(760, max(360, (width - 120) * (rows + 2.3) / (x_end + 0.5) + 60)))
    return fast_figure(traces, dict(
        title=dict(text=title), images=images, shapes=shapes, annotations=annotations, height=height,
        xaxis=dict(visible=False, range=[-0.5, x_end], fixedrange=True, constrain="domain"),
        yaxis=dict(visible=False, range=[rows + 0.3, -2.0], fixedrange=True, scaleanchor="x", constrain="domain"),
        plot_bgcolor="white", paper_bgcolor="white", margin=dict(l=10, r=10, t=50, b=10),
        hoverlabel=dict(font=dict(size=14)), clickmode="event+select", dragmode=False))


def _ring_scale(x: float, rows: int, annotations: list[dict]) -> dict:
    """The rings' colour scale as a picture at ``x`` with its labels (added to ``annotations``). A Plotly colour
    bar pushes the margins, and Plotly then lays the figure out twice: about 140 ms of every image change on the
    Prediction gradients page (Chromium, 2 cores)."""
    top, span = rows * 0.25, rows * 0.5
    annotations.append(dict(x=x, y=top - 0.2, text="PG /<br>layer max", showarrow=False, xanchor="left",
                            yanchor="bottom", font=dict(size=12)))
    annotations.extend(dict(x=x + 0.55, y=top + span * (1 - v), text=f"{v:g}", showarrow=False, xanchor="left",
                            font=dict(size=11)) for v in (0, 0.5, 1))
    strip = colour_lut(RING_SCALE)[::-4][:, None].repeat(6, 1)  # (64, 6, 3): 1 at the top
    return dict(source=_png(strip, min_side=1), x=x, y=top, sizex=0.45, sizey=span, xref="x", yref="y",
                sizing="stretch", layer="above")


def _nodes(c: _Column, rel: np.ndarray, rings: list[str], class_names: Sequence[str], flow: NetworkFlow) -> dict:
    """One clickable point per map or unit; dense and output units are the visible dots themselves."""
    lay = c.layer
    n = len(c.centers)
    pg = lay.pg.numpy().astype(float)
    knocked = set(lay.knocked)
    if lay.kind == "input":
        hover = [f"input image<br>PG (norm of dy/dx): {pg[0]:.3g}"]
    elif lay.kind == "output":
        hover = [f"{class_names[k]}: probability {float(flow.probs[k]):.1%}<br>|dy/dlogit| {pg[k]:.3g}"
                 for k in range(n)]
    else:
        what = "map" if lay.kind == "conv" else "unit"
        hover = [f"{lay.name} {what} #{m}<br>PG score {pg[m]:.3g}" + (" (knocked out)" if m in knocked else "")
                 + ("<br>click to open it below" if lay.kind == "conv" else "") for m in range(n)]
    if lay.kind in ("input", "conv"):
        marker = dict(size=[40 if lay.kind == "input" else 22] * n, symbol="square", opacity=0.01, color="white")
    else:
        v = lay.acts.numpy().astype(float)
        shade = _rel(np.abs(v)) if lay.kind == "dense" else v
        fill = [KNOCKED_GREY if m in knocked else f"rgb({int(255 - 200 * s)},{int(255 - 200 * s)},{int(255 - 200 * s)})"
                for m, s in enumerate(shade)]
        size = max(5.0, min(18.0, 420 / max(n, 1)))
        if lay.kind == "output":
            size = max(size, 14)
        lines = [KNOCKED_GREY if m in knocked else rings[m] for m in range(n)]
        widths = [1 if m in knocked else 1 + 3 * float(rel[m]) for m in range(n)]
        if lay.kind == "output":
            lines = ["crimson" if k == flow.target else lines[k] for k in range(n)]
            widths = [4 if k == flow.target else widths[k] for k in range(n)]
        marker = dict(size=size, color=fill, line=dict(color=lines, width=widths),
                      symbol=["x" if m in knocked else "circle" for m in range(n)])
    keep = dict(marker=dict(opacity=marker.get("opacity", 1)))  # a click selects a point: nothing may fade
    return dict(type="scatter", x=c.centers[:, 0], y=c.centers[:, 1], mode="markers", marker=marker,
                showlegend=False, name=lay.name, customdata=[[lay.name, m] for m in range(n)], hovertext=hover,
                hoverinfo="text", selected=keep, unselected=keep)
