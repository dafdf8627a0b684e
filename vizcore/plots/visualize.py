"""Figures of the Visualize page: visualization grids, the teacher's softmax, visualization / weight image /
class average side by side, similarities, and a PNG grid for download."""

from __future__ import annotations

import io

import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from vizcore.plots.common import blow_up, image_grid, to_display


def visualization_grid(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, reached: torch.Tensor,
                       class_names: list[str], cols: int = 10, size: int = 110) -> go.Figure:
    """Images titled with their class and target probability; a red frame marks samples that never reached T."""
    titles = [f"{class_names[int(c)][:12]} {float(probs[i, int(c)]):.2f}" for i, c in enumerate(labels)]
    return image_grid(images, titles=titles, cols=cols, size=size, highlight=[not bool(r) for r in reached])


def softmax_bars(probs: torch.Tensor, class_names: list[str], target: int, threshold: float | None = None) -> go.Figure:
    """The teacher's softmax for one image (its soft target); the target class in a strong colour."""
    p = probs.tolist()
    colors = ["#d62728" if k == target else "#9ecae1" for k in range(len(p))]
    fig = go.Figure(go.Bar(x=class_names, y=p, marker_color=colors, text=[f"{v:.3f}" for v in p],
                           textposition="outside", hovertemplate="%{x}: %{y:.4f}<extra></extra>"))
    if threshold:
        fig.add_hline(y=threshold, line_dash="dot", line_color="grey", annotation_text=f"T = {threshold:.3f}")
    fig.update_layout(title="Teacher softmax (soft target)", yaxis_range=[0, 1.12], height=320, xaxis_type="category",
                      margin=dict(l=10, r=10, t=40, b=10), yaxis_title="probability")
    return fig


def _signed(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) signed values -> (H, W) (channel mean), flipped for a heatmap."""
    a = img.detach().cpu().float().numpy()
    return a.mean(0)[::-1]


def comparison_figure(visualizations: torch.Tensor, weights: torch.Tensor, averages: torch.Tensor,
                      class_names: list[str], weight_label: str, size: int = 130) -> go.Figure:
    """One row per class: visualization, weight image (diverging colours, red positive, blue negative, each
    image scaled to its own largest magnitude) and class average."""
    k = len(class_names)
    titles = []
    for name in class_names:
        titles += [f"{name[:14]}: visualization", "weights", "class average"]
    fig = make_subplots(rows=k, cols=3, subplot_titles=titles, horizontal_spacing=0.02,
                        vertical_spacing=0.25 / max(k, 1))
    for r in range(k):
        for c, img in ((1, visualizations[r]), (3, averages[r])):
            a = to_display(img)
            trace = go.Image(z=a) if a.ndim == 3 else go.Heatmap(z=a[::-1], colorscale="gray", zmin=0, zmax=255,
                                                                  showscale=False)
            fig.add_trace(trace, r + 1, c)
        w = _signed(weights[r])
        m = float(np.abs(w).max()) or 1.0
        fig.add_trace(go.Heatmap(z=w, colorscale="RdBu_r", zmin=-m, zmax=m, showscale=False,
                                 hovertemplate="weight %{z:.4f}<extra></extra>"), r + 1, 2)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for i in range(1, 3 * k + 1):
        fig.layout[f"yaxis{'' if i == 1 else i}"].scaleanchor = f"x{'' if i == 1 else i}"
    fig.update_layout(height=k * size + 60, width=3 * size + 80, margin=dict(l=5, r=5, t=40, b=5),
                      title=dict(text=f"middle column: {weight_label}", font_size=12), plot_bgcolor="white")
    fig.update_annotations(font_size=10)
    return fig


def similarity_bars(similarities: dict[str, list[float]], class_names: list[str]) -> go.Figure:
    """Grouped bars of the cosine similarity of each pair of images, per class."""
    fig = go.Figure([go.Bar(name=pair, x=class_names, y=vals, hovertemplate=f"%{{x}} {pair}: %{{y:.3f}}<extra></extra>")
                     for pair, vals in similarities.items()])
    fig.update_layout(barmode="group", title="Cosine similarity per class", yaxis_range=[-1, 1], height=360,
                      xaxis_type="category", margin=dict(l=10, r=10, t=40, b=10), legend_orientation="h", legend_y=-0.25)
    return fig


def grid_png(images: torch.Tensor, cols: int = 10, scale: int = 3, pad: int = 2) -> bytes:
    """A PNG of the images in a grid (grey or RGB), each pixel drawn ``scale`` times larger."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to draw")
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    tiles = [to_display(img) for img in images]
    h, w = tiles[0].shape[:2]
    rgb = tiles[0].ndim == 3
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad) + ((3,) if rgb else ()), 255, np.uint8)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = t
    buf = io.BytesIO()
    blow_up(canvas, scale).save(buf, format="PNG")
    return buf.getvalue()
