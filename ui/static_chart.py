"""Plotly figures drawn as SVG on the server, for the saved first page (:mod:`ui.first_page`; issue 13, the first
page in under 5 s). A browser that has never opened the app must fetch and compile Streamlit's 4.7 MB Plotly script
before it can draw one Plotly chart, about 2 s on a 2-core machine; an SVG picture costs it nothing. The live page
that replaces the saved one draws the same figures with Plotly.

Draws what the Overview shows: grouped bars, a labelled heatmap (a confusion matrix) and an image mosaic with
titles and frames (:func:`vizcore.plots.common.image_grid`), and the Prediction gradients page's clickable network
diagram (:func:`clickable`). Nothing here imports torch or Plotly. The Knockout
page draws its live charts with it too, unless a person asks for hover values: Plotly.js took about 190 ms of
Chromium's main thread at every slider step for them (bench/latency.py).
"""

from __future__ import annotations

import base64
import io
import json
from html import escape

import numpy as np

COLOURS = ("#0068c9", "#83c9ff", "#ff2b2b", "#ffabab", "#29b09d")  # Streamlit's chart colours, as its theme draws
GRID, TEXT = "#e6e9ef", "#31333f"
FONT = 'font-family="Source Sans Pro, sans-serif"'


def svg(figure: str | dict, width: int = 700) -> str:
    """``figure`` (Plotly JSON) as an SVG document ``width`` wide and as tall as the figure's layout says."""
    fig = json.loads(figure) if isinstance(figure, str) else figure
    layout, data = fig.get("layout", {}), fig["data"]
    height = int(layout.get("height") or 450)
    if any(t.get("type") == "bar" for t in data):
        body = _bars([t for t in data if t.get("type") == "bar"], layout, width, height)
    elif data and (data[0].get("type") == "image" or not data[0].get("x")):
        return _mosaic(data[0], layout, width, height)
    else:
        body = _heatmap(data[0], width, height)
    title = (layout.get("title") or {}).get("text") if isinstance(layout.get("title"), dict) else layout.get("title")
    head = (f'<text x="10" y="22" font-size="16" font-weight="600" fill="{TEXT}" {FONT}>{escape(title)}</text>'
            if title else "")
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}">{head}{body}</svg>')


def array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or a typed array (``{"dtype", "bdata", "shape"}``, base64 of the raw bytes)."""
    if not isinstance(value, dict):
        return np.asarray(value)
    out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    shape = value.get("shape")
    return out.reshape([int(s) for s in str(shape).split(",")]) if shape else out


def colour(scale: list, t: float) -> str:
    """The colour at ``t`` in [0, 1] of a Plotly colour scale (``[[position, "rgb(r, g, b)" or "#rrggbb"], ...]``)."""
    pos = [float(p) for p, _ in scale]
    rgb = np.array([_rgb(c) for _, c in scale], dtype=float)
    t = min(max(float(t), 0.0), 1.0)
    r, g, b = (np.interp(t, pos, rgb[:, i]) for i in range(3))
    return f"rgb({round(r)},{round(g)},{round(b)})"


def _rgb(c: str) -> tuple[int, int, int]:
    if c.startswith("#"):
        return tuple(int(c[i:i + 2], 16) for i in (1, 3, 5))
    return tuple(int(float(v)) for v in c[c.index("(") + 1:c.index(")")].split(",")[:3])


def _label(x: float, y: float, text: str, size: float = 12, anchor: str = "middle", rotate: bool = False,
           fill: str = TEXT, bold: bool = False) -> str:
    turn = f' transform="rotate(-35 {x:.1f} {y:.1f})"' if rotate else ""
    weight = ' font-weight="700"' if bold else ""
    return (f'<text x="{x:.5g}" y="{y:.5g}" font-size="{size:.3g}" text-anchor="{anchor}" fill="{fill}"{weight} '
            f'{FONT}{turn}>{escape(str(text))}</text>')


def _plain(name) -> tuple[str, bool]:
    """A category's text without Plotly's ``<b>`` tags, and whether it was bold."""
    text = str(name)
    return text.replace("<b>", "").replace("</b>", ""), "<b>" in text


def _fills(trace: dict, k: int, n: int) -> list[str]:
    """Each bar's colour: the trace's ``marker.color`` (one colour or one per bar), else Streamlit's k-th colour."""
    c = (trace.get("marker") or {}).get("color")
    if isinstance(c, str):
        return [c] * n
    return [str(v) for v in c] if c is not None else [COLOURS[k % len(COLOURS)]] * n


def _bars(traces: list[dict], layout: dict, width: int, height: int) -> str:
    names = [_plain(x) for x in traces[0]["x"]]
    xaxis, yaxis = layout.get("xaxis") or {}, layout.get("yaxis") or {}
    lo, hi = yaxis.get("range") or (0.0, 1.0)
    percent = str(yaxis.get("tickformat", "")).endswith("%")
    labels = xaxis.get("showticklabels", True)
    left = 46 if percent else 40
    plot_w = width - left - 10
    rotate = labels and max(len(n) for n, _ in names) * 6.5 > plot_w / len(names)  # side by side would overlap
    legend = [t for t in traces if t.get("name") and t.get("showlegend", True)]
    top, bottom = 40, ((80 if rotate else 40) + (20 if legend else 0)) if labels else 16
    plot_h = height - top - bottom
    y = lambda v: top + plot_h * (1 - (v - lo) / (hi - lo))  # noqa: E731
    out = []
    for tick in np.linspace(lo, 1.0 if hi >= 1 else hi, 6):
        out.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="{GRID}"/>')
        out.append(_label(left - 6, y(tick) + 4, f"{tick:.0%}" if percent else f"{tick:.1f}", 11, "end"))
    slot = plot_w / len(names)
    bar = 0.8 * slot / len(traces)
    for k, t in enumerate(traces):
        values = array(t["y"]).astype(float)
        for i, (v, fill) in enumerate(zip(values, _fills(t, k, len(values)))):
            x0 = left + i * slot + 0.1 * slot + k * bar
            out.append(f'<rect x="{x0:.1f}" y="{y(v):.1f}" width="{bar:.1f}" height="{y(lo) - y(v):.1f}" '
                       f'fill="{fill}"/>')
    for i, (name, bold) in enumerate(names if labels else []):
        cx = left + (i + 0.5) * slot
        out.append(_label(cx + 4, y(lo) + 16, name, 11, "end", True, bold=bold) if rotate else
                   _label(cx, y(lo) + 16, name, 11, bold=bold))
    legend_y = height - 10
    for k, t in enumerate(legend):
        x0 = left + k * 110
        out.append(f'<rect x="{x0}" y="{legend_y - 10}" width="12" height="12" '
                   f'fill="{_fills(t, traces.index(t), 1)[0]}"/>')
        out.append(_label(x0 + 18, legend_y, t["name"], 12, "start"))
    return "".join(out)


def _heatmap(trace: dict, width: int, height: int) -> str:
    """Cells coloured on the trace's scale (symmetric around ``zmid`` when it has one, as Plotly draws a change),
    labelled with the trace's ``text`` where it has some (else the values), in white on dark cells."""
    z = array(trace["z"]).astype(float)
    xs, ys = [str(v) for v in trace["x"]], [str(v) for v in trace["y"]]
    left, top, bottom = 100, 40, 90
    cw, ch = (width - left - 10) / z.shape[1], (height - top - bottom) / z.shape[0]
    lo, hi = float(np.nanmin(z)), float(np.nanmax(z))
    if trace.get("zmid") is not None:
        mid = float(trace["zmid"])
        reach = max(abs(lo - mid), abs(hi - mid)) or 1.0
        lo, hi = mid - reach, mid + reach
    scale = trace.get("colorscale") or [[0, "#f7fbff"], [1, "#08306b"]]
    text = array(trace["text"]) if trace.get("text") is not None else None
    out = []
    for (r, c), v in np.ndenumerate(z):
        t = (v - lo) / (hi - lo) if hi > lo else 0.0
        x0, y0 = left + c * cw, top + r * ch
        fill = colour(scale, t)
        out.append(f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{cw + 0.3:.1f}" height="{ch + 0.3:.1f}" fill="{fill}"/>')
        label = f"{v:g}" if text is None else str(text[r, c])
        if trace.get("texttemplate") and label and ch >= 12 and cw >= 20:  # where they fit
            dark = np.dot(_rgb(fill), (0.299, 0.587, 0.114)) < 140
            out.append(_label(x0 + cw / 2, y0 + ch / 2 + 4, label, 11, fill="white" if dark else TEXT))
    for r, name in enumerate(ys):
        out.append(_label(left - 6, top + (r + 0.5) * ch + 4, name, 11, "end"))
    for c, name in enumerate(xs):
        out.append(_label(left + (c + 0.5) * cw + 4, top + z.shape[0] * ch + 14, name, 11, "end", True))
    out.append(_label(left + (width - left) / 2, height - 6, "predicted", 12))
    out.append(_label(14, top + (height - top - bottom) / 2, "true", 12))
    return "".join(out)


def _mosaic(trace: dict, layout: dict, width: int, height: int) -> str:
    """An :func:`~vizcore.plots.common.image_grid` mosaic: one PNG in data units, its titles and red frames."""
    from PIL import Image

    z = array(trace["z"])
    if z.ndim == 2:  # grey, NaN between the pictures
        z = np.nan_to_num(z.astype(float), nan=255.0).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(z.astype(np.uint8))).save(buf, format="PNG")
    H, W = z.shape[:2]
    px = W / width  # data units per screen pixel
    out = [f'<image x="-0.5" y="-0.5" width="{W}" height="{H}" style="image-rendering:pixelated" '
           f'href="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>']
    for s in layout.get("shapes") or []:
        out.append(f'<rect x="{s["x0"]}" y="{s["y0"]}" width="{s["x1"] - s["x0"]}" height="{s["y1"] - s["y0"]}" '
                   f'fill="none" stroke="{(s.get("line") or {}).get("color", "crimson")}" stroke-width="{3 * px:.2f}"/>')
    for a in layout.get("annotations") or []:
        size = (a.get("font") or {}).get("size", 11) * px
        out.append(_label(a["x"], a["y"] - 0.3 * size, a["text"], size))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="-0.5 -0.5 {W} {H}" width="{width}" '
            f'height="{round(width * H / W)}">{"".join(out)}</svg>')


def clickable(figure: dict, width: int = 1100) -> str:
    """A picture-made figure (:func:`vizcore.plots.network.network_figure`: layout images, frames, text and one
    scatter point per node) as an SVG in the figure's data units, every node a transparent hot spot that carries
    its ``customdata`` and hover text (``data-node``, ``data-hover``) for :func:`ui.charts.clickable_figure`.
    Plotly.js took about 110 ms of Chromium's main thread to draw the diagram at every image or class change on
    Prediction gradients (bench/latency.py: the whole change 219 ms of it with the Plotly chart, 129 ms with this).
    As wide as its container and at most as tall as the figure's layout: a narrow diagram (a dense-only model's)
    is centred, as Plotly drew it, instead of growing tall."""
    layout = figure.get("layout", {})
    (x0, x1), (ya, yb) = layout["xaxis"]["range"], layout["yaxis"]["range"]
    y0, y1 = min(ya, yb), max(ya, yb)  # the y axis grows downwards, as SVG's does
    height = int(layout.get("height") or 450)
    px = max((x1 - x0) / (width - 20), (y1 - y0) / (height - 60))  # data units per screen pixel
    title = (layout.get("title") or {}).get("text") or ""
    head = 34 * px if title else 0.0
    out = [f'<image x="{im["x"]:.5g}" y="{im["y"]:.5g}" width="{im["sizex"]:.5g}" height="{im["sizey"]:.5g}" '
           f'preserveAspectRatio="none" href="{escape(im["source"])}"/>'
           for im in sorted(layout.get("images") or [], key=lambda im: im.get("layer") != "below")]
    for s in layout.get("shapes") or []:
        line = s.get("line") or {}
        out.append(f'<rect x="{s["x0"]:.5g}" y="{s["y0"]:.5g}" width="{s["x1"] - s["x0"]:.5g}" '
                   f'height="{s["y1"] - s["y0"]:.5g}" fill="none" stroke="{escape(line.get("color", TEXT))}" '
                   f'stroke-width="{line.get("width", 1) * px:.5g}"/>')
    for a in layout.get("annotations") or []:
        out.append(_text_block(a, px))
    if title:
        out.append(_label(x0 + 10 * px, y0 - head + 22 * px, _plain(title)[0], 16 * px, "start", bold=True))
    for t in figure["data"]:
        opens = bool((t.get("meta") or {}).get("clickable"))
        marker = t.get("marker") or {}
        r = float(marker.get("size", 10)) * px / 2
        square = marker.get("symbol") == "square"
        for x, y, node, hover in zip(array(t["x"]), array(t["y"]), t["customdata"], t.get("hovertext") or []):
            shape = (f'<rect x="{x - r:.5g}" y="{y - r:.5g}" width="{2 * r:.5g}" height="{2 * r:.5g}"' if square
                     else f'<circle cx="{x:.5g}" cy="{y:.5g}" r="{r:.5g}"')
            what = escape(json.dumps([str(node[0]), int(node[1])])) if opens else ""
            out.append(f'{shape} class="node{" open" if opens else ""}" data-node="{what}" '
                       f'data-hover="{escape(str(hover)).replace("&lt;br&gt;", "&#10;")}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{x0:.6g} {y0 - head:.6g} {x1 - x0:.6g} '
            f'{y1 - y0 + head:.6g}" width="100%" style="background:white;max-height:{height}px">{"".join(out)}</svg>')


def _text_block(a: dict, px: float) -> str:
    """A Plotly annotation (``<br>`` lines, ``<b>`` bold, x / y anchors, font size and colour) as SVG text."""
    lines = str(a["text"]).split("<br>")
    font = a.get("font") or {}
    size = float(font.get("size", 12)) * px
    step = 1.2 * size
    top = a["y"] - {"bottom": len(lines) * step, "top": 0.0}.get(a.get("yanchor"), len(lines) * step / 2)
    anchor = {"left": "start", "right": "end"}.get(a.get("xanchor"), "middle")
    bold = "<b>" in a["text"]
    return "".join(_label(a["x"], top + (i + 0.8) * step, _plain(line)[0], size, anchor,
                          fill=font.get("color", TEXT), bold=bold) for i, line in enumerate(lines))
