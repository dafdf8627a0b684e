"""The network diagram: input image -> every conv layer's feature maps -> dense units -> class probabilities,
with edges as thick as the prediction gradient they carry and every map ringed by its PG score (seed 002
chapter 3; the layout follows CNN Explainer, Wang et al. 2020, which has no gradients, knockouts or user models).

Data in (:class:`vizcore.explain.network.NetworkFlow`), figure out. What is drawn is pictures made here (the edges,
each conv layer's maps with their rings, each dense layer's dots): Chromium draws a handful of images faster than
hundreds of SVG lines, rectangles and styled points. Each map and unit is also an (almost invisible) scatter point
with its PG in the hover text and ``[layer, index]`` as ``customdata``, so a click can open it elsewhere. The figure
is interactive in Plotly (a notebook); the app draws it as an SVG of the same pictures, texts and points
(:func:`ui.static_chart.clickable`), which Chromium draws about 110 ms faster than Plotly.js.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from vizcore.explain.network import FlowLayer, NetworkFlow
from vizcore.plots.common import blow_up, colour_lut, fast_figure, to_display

RING_SCALE = "YlOrRd"
EDGE_RGB = "31,119,180"
KNOCKED_GREY = "#9a9a9a"
KNOCKED_RGB = tuple(int(KNOCKED_GREY[i:i + 2], 16) for i in (1, 3, 5))
CRIMSON = (220, 20, 60)  # the explained class's ring and the cross over a knocked-out map
SELECTED = "#00b4d8"
GAP = 2.4  # empty cells between two columns, where the edges run
THUMB = 0.78  # thumbnail side in cells (the rest of the cell is its ring and a gap)


@dataclass
class _Column:
    layer: FlowLayer
    x0: float
    width: float
    centers: np.ndarray  # (n, 2) x, y of every node


def _data_uri(img, **save) -> str:
    """A PIL picture as the data URI of a PNG (fast compression; ``save``: more PNG options)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1, **save)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _png(a: np.ndarray, min_side: int = 56) -> str:
    """uint8 (H, W), (H, W, 2) grey + alpha, (H, W, 3) or (H, W, 4) -> data URI of a PNG, blown up with nearest
    neighbours so pixels stay sharp (``min_side``: the smaller of H and W after the blow-up)."""
    k = max(1, math.ceil(min_side / max(min(a.shape[:2]), 1)))
    return _data_uri(blow_up(a, k))


def _montage(pix: np.ndarray, nc: int, nr: int) -> np.ndarray:
    """(n, h, w) uint8 thumbnails -> one grey + alpha picture of an ``nr`` x ``nc`` grid of cells (map m in column
    m // nr, row m % nr), each thumbnail centred in its cell with transparent margins that let the edges show.
    One PNG per layer instead of one per map: the diagram of a 64-map layer is built and sent several times faster."""
    n, h, w = pix.shape
    gh, gw = max(1, round(h * (1 / THUMB - 1))), max(1, round(w * (1 / THUMB - 1)))
    out = np.zeros((nr * (h + gh), nc * (w + gw), 2), np.uint8)
    for m in range(n):
        y, x = (m % nr) * (h + gh) + gh // 2, (m // nr) * (w + gw) + gw // 2
        out[y:y + h, x:x + w] = np.stack([pix[m], np.full_like(pix[m], 255)], -1)
    return out


def _ringed_sheet(pix: np.ndarray, nc: int, nr: int, rings: np.ndarray, widths: np.ndarray, knocked,
                  canvas: _Canvas) -> np.ndarray:
    """:func:`_montage` in colour, blown up to about the ``canvas``'s pixels per cell, with every map's ring drawn in its
    margin (``rings``: (n, 3) uint8 colours, ``widths``: screen pixels) and knocked-out maps crossed out in
    crimson: one picture instead of a rectangle and two lines per map for the browser to draw."""
    from PIL import Image, ImageDraw

    la = _montage(pix, nc, nr)
    h, w = pix.shape[1:]
    ch, cw = la.shape[0] // nr, la.shape[1] // nc
    k = max(1, math.ceil(canvas.scale / ch))
    rgba = np.asarray(blow_up(np.concatenate([la[..., :1].repeat(3, 2), la[..., 1:]], 2), k)).copy()
    per_px = k * ch / canvas.screen  # picture pixels per screen pixel
    corners = [(k * ((m % nr) * ch + (ch - h) // 2), k * ((m // nr) * cw + (cw - w) // 2)) for m in range(len(pix))]
    for m, (y0, x0) in enumerate(corners):  # each thumbnail's top-left pixel
        y1, x1 = y0 + k * h, x0 + k * w
        t = int(min(k * min((ch - h) // 2, (cw - w) // 2), max(1, round(widths[m] * per_px))))
        if t > 0:
            for ys, xs in ((slice(y0 - t, y0), slice(x0 - t, x1 + t)), (slice(y1, y1 + t), slice(x0 - t, x1 + t)),
                           (slice(y0, y1), slice(x0 - t, x0)), (slice(y0, y1), slice(x1, x1 + t))):
                rgba[ys, xs, :3], rgba[ys, xs, 3] = rings[m], 255
    if knocked:
        img = Image.fromarray(rgba)
        for m in knocked:  # drawn inside the thumbnail only: a small map's margin cannot hold a thick line's ends
            y0, x0 = corners[m]
            tile = img.crop((x0, y0, x0 + k * w, y0 + k * h))
            draw = ImageDraw.Draw(tile)
            for line in (((0, 0), (k * w - 1, k * h - 1)), ((0, k * h - 1), (k * w - 1, 0))):
                draw.line(line, fill=(*CRIMSON, 255), width=max(1, round(2 * per_px)))
            img.paste(tile, (x0, y0))
        rgba = np.asarray(img)
    return rgba


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


def _strongest_edges(w: np.ndarray, keep: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target index, source index, weight / max weight) of the ``keep`` strongest edges between two columns
    (``w``: (targets, sources)), leaving out those under 2 % of the strongest."""
    w = np.asarray(w, dtype=float)
    flat = w.ravel()
    if not len(flat) or flat.max() <= 0:
        return np.zeros(0, int), np.zeros(0, int), np.zeros(0)
    order = np.argsort(-flat)[:keep]
    order = order[flat[order] > 0.02 * flat.max()]
    j, i = np.unravel_index(order, w.shape)
    return j, i, flat[order] / flat.max()


class _Canvas:
    """The diagram's data area (x in cells, y in cells growing downwards) as a picture of ``supersample`` pixels
    per screen pixel (``screen``: a cell's width on screen): what the browser would otherwise draw as hundreds of
    SVG lines and rectangles is drawn here once."""

    def __init__(self, x0: float, x1: float, y0: float, y1: float, screen: float, supersample: float = 1.5):
        self.x0, self.y0, self.screen, self.scale = x0, y0, screen, screen * supersample
        self.size = (max(1, round((x1 - x0) * self.scale)), max(1, round((y1 - y0) * self.scale)))
        self.extent = (x0, y0, x1 - x0, y1 - y0)

    def px(self, x, y) -> tuple:
        return (np.asarray(x) - self.x0) * self.scale, (np.asarray(y) - self.y0) * self.scale


def _edge_picture(cols: list[_Column], edges, keep: int, canvas: _Canvas) -> dict | None:
    """The ``keep`` strongest edges between every two columns, as thick and as opaque as the PG they carry (four
    bands, as wide as the SVG lines they replace), drawn under the maps. None when no edge carries any PG."""
    from PIL import Image, ImageDraw

    bands = ((0.0, 0.15, 0.6), (0.15, 0.4, 1.4), (0.4, 0.7, 2.6), (0.7, 1.01, 4.2))
    strongest = [_strongest_edges(w.numpy(), keep) for w in edges]
    if not any(len(rel) for _, _, rel in strongest):
        return None
    alpha = Image.new("L", canvas.size)  # one byte per pixel: the opacity of the edge colour there
    draw = ImageDraw.Draw(alpha)
    per_px = canvas.scale / canvas.screen  # picture pixels per screen pixel
    for lo, hi, width in bands:  # the strong on top of the weak
        for k, (j, i, rel) in enumerate(strongest):
            a, b = cols[k], cols[k + 1]
            sel = (rel >= lo) & (rel < hi)
            xa, ya = canvas.px(a.centers[i[sel], 0] + (a.width / 2 if a.layer.kind == "input" else 0),
                               a.centers[i[sel], 1])
            xb, yb = canvas.px(b.centers[j[sel], 0], b.centers[j[sel], 1])
            for line in zip(xa, ya, xb, yb):
                draw.line(line, fill=round(255 * min(1.0, 0.25 + 0.65 * hi)), width=max(1, round(width * per_px)))
    # a palette picture whose entry v is the edge colour at opacity v / 255: a quarter of RGBA's bytes to compress
    alpha.putpalette([int(v) for v in EDGE_RGB.split(",")] * 256)
    x, y, sx, sy = canvas.extent
    return dict(source=_data_uri(alpha, transparency=bytes(range(256))), x=x, y=y, sizex=sx, sizey=sy, xref="x",
                yref="y", sizing="stretch", layer="below")


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
    x_end = cols[-1].x0 + cols[-1].width + (7 if cols[-1].layer.kind == "output" else 1)
    height = int(min(760, max(360, (width - 120) * (rows + 2.3) / (x_end + 3.1) + 60)))
    cell = min((width - 20) / (x_end + 3.1), (height - 60) / (rows + 2.3))  # a cell's side on screen, in pixels
    canvas = _Canvas(-0.5, x_end + 2.6, -2.0, rows + 0.3, cell)
    traces, shapes, annotations = [], [], []
    edges = _edge_picture(cols, flow.edges, edges_per_layer, canvas)
    images = [edges] if edges else []
    lut = colour_lut(RING_SCALE)
    for c in cols:
        lay = c.layer
        rel = _rel(lay.pg.numpy().astype(float))
        ring_rgb = lut[np.round((0.15 + 0.85 * rel) * 255).astype(int)]  # (n, 3): the ring colour of each node
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
            knocked = sorted(lay.knocked)
            rings = ring_rgb.copy()
            rings[knocked] = KNOCKED_RGB
            widths = np.where(np.isin(np.arange(lay.width), knocked), 1.0, 1 + 3.5 * rel)
            sheet = _ringed_sheet(pix, nc, nr, rings, widths, knocked, canvas)
            images.append(dict(source=_png(sheet, min_side=1), x=c.x0, y=(rows - nr) / 2, sizex=nc, sizey=nr,
                               xref="x", yref="y", sizing="stretch", layer="above"))
        if selected and selected[0] == lay.name and 0 <= selected[1] < lay.width and lay.kind != "input":
            cx, cy = c.centers[selected[1]]
            r = 0.62 if lay.kind == "conv" else 0.45
            shapes.append(dict(type="rect", x0=cx - r, x1=cx + r, y0=cy - r, y1=cy + r, layer="above",
                               line=dict(color=SELECTED, width=4)))
        if lay.kind in ("dense", "output"):
            images.append(_dots(c, rel, ring_rgb, flow, rows, canvas))
        traces.append(_nodes(c, class_names, flow))
    if cols[-1].layer.kind == "output":
        c = cols[-1]
        for k, (cx, cy) in enumerate(c.centers):
            p = float(flow.probs[k])
            bold = k == flow.target
            annotations.append(dict(x=cx + 0.6, y=cy, xanchor="left", showarrow=False,
                                    text=(f"<b>{class_names[k]} {p:.0%}</b>" if bold else f"{class_names[k]} {p:.0%}"),
                                    font=dict(size=13, color="crimson" if bold else "#333")))
    images.append(_ring_scale(x_end, rows, annotations))
    x_end += 2.6
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


def _dot_size(kind: str, n: int) -> float:
    """A dense or output unit's dot diameter on screen, in pixels."""
    size = max(5.0, min(18.0, 420 / max(n, 1)))
    return max(size, 14.0) if kind == "output" else size


def _dots(c: _Column, rel: np.ndarray, rings: np.ndarray, flow: NetworkFlow, rows: int, canvas: _Canvas) -> dict:
    """A dense or output column's units as one picture: a dot shaded by the unit's activation (|a| / the layer's
    largest; an output by its probability), ringed by its PG score (the explained class in crimson), a knocked-out
    unit a grey cross."""
    from PIL import Image, ImageDraw

    lay = c.layer
    n = len(c.centers)
    v = lay.acts.numpy().astype(float)
    shade = np.clip(_rel(np.abs(v)) if lay.kind == "dense" else v, 0, 1)
    per_px = canvas.scale / canvas.screen
    img = Image.new("RGBA", (max(1, round(canvas.scale)), max(1, round(rows * canvas.scale))))
    draw = ImageDraw.Draw(img)
    r = _dot_size(lay.kind, n) / 2 * per_px
    for m, (_, cy) in enumerate(c.centers):
        x, y = canvas.scale / 2, cy * canvas.scale
        if m in lay.knocked:
            for dx in (-1, 1):
                draw.line(((x - r, y - dx * r), (x + r, y + dx * r)), fill=(*KNOCKED_RGB, 255),
                          width=max(1, round(2 * per_px)))
            continue
        target = lay.kind == "output" and m == flow.target
        width = (4 if target else 1 + 3 * float(rel[m])) * per_px
        g = int(255 - 200 * shade[m])
        ring = (*CRIMSON, 255) if target else (*(int(u) for u in rings[m]), 255)
        draw.ellipse((x - r - width / 2, y - r - width / 2, x + r + width / 2, y + r + width / 2), fill=ring)
        draw.ellipse((x - r + width / 2, y - r + width / 2, x + r - width / 2, y + r - width / 2), fill=(g, g, g, 255))
    return dict(source=_data_uri(img), x=c.x0, y=0, sizex=1, sizey=rows, xref="x", yref="y", sizing="stretch",
                layer="above")


def _nodes(c: _Column, class_names: Sequence[str], flow: NetworkFlow) -> dict:
    """One clickable point per map or unit, with its PG in the hover text."""
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
    # the maps and units themselves are pictures (the sheets, :func:`_dots`); a node is its clickable, hoverable spot
    size = 40 if lay.kind == "input" else 22 if lay.kind == "conv" else _dot_size(lay.kind, n) + 4
    marker = dict(size=size, symbol="square" if lay.kind in ("input", "conv") else "circle", opacity=0.01,
                  color="white")
    keep = dict(marker=dict(opacity=marker.get("opacity", 1)))  # a click selects a point: nothing may fade
    return dict(type="scatter", x=c.centers[:, 0], y=c.centers[:, 1], mode="markers", marker=marker,
                showlegend=False, name=lay.name, customdata=[[lay.name, m] for m in range(n)], hovertext=hover,
                hoverinfo="text", selected=keep, unselected=keep, meta={"clickable": lay.kind == "conv"})
