"""The network diagram's numbers (PG per node, PG per edge) and its figure, on tiny seeded models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import assert_untouched, weights_snapshot
from vizcore.explain import gradients as G
from vizcore.explain.network import _edge_maps, _stages, network_flow
from vizcore.models import build_model
from vizcore.plots.network import network_figure


@pytest.fixture(scope="module")
def tiny():
    return build_model("cnn_tiny", (1, 12, 12), 5, seed=0)


def test_nodes_are_the_prediction_gradients(tiny):
    x = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(1))
    before = weights_snapshot(tiny)
    f = network_flow(tiny, x, 2, output="logit")
    assert_untouched(tiny, before)
    assert all(p.grad is None for p in tiny.parameters())
    assert [(lay.name, lay.kind, lay.width) for lay in f.layers] == [
        ("input", "input", 1), ("conv1", "conv", 4), ("conv2", "conv", 8), ("fc1", "dense", 16), ("fc2", "output", 5)]
    ref = G.filter_scores({k: v[0] for k, v in G.prediction_gradients(tiny, x[None], 2, output="logit",
                                                                        layers=["conv1", "conv2", "fc1"]).items()})
    maps = G.prediction_gradients(tiny, x[None], 2, output="logit", layers=["conv1", "conv2", "fc1"])
    for lay in f.layers[1:4]:
        assert torch.allclose(lay.pg, ref[lay.name], rtol=1e-4, atol=1e-7)
        assert torch.allclose(lay.pg_maps, maps[lay.name][0], rtol=1e-4, atol=1e-8)  # the maps themselves
    assert f.layers[0].pg_maps is None and f.layers[-1].pg_maps is None
    assert torch.allclose(f.probs, tiny(x[None]).softmax(1)[0], atol=1e-6)
    assert [tuple(e.shape) for e in f.edges] == [(4, 1), (8, 4), (16, 8), (5, 16)]


def test_edges_split_each_nodes_gradient_by_path(tiny):
    """Summed over the next layer's units, the path gradients (before the norm) are the node's PG map."""
    x = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    kids = list(tiny.children())
    (i1, f1, _), (i2, _, _) = _stages(tiny)[:2]
    a = tiny[:f1 + 1](x).detach()
    xa = a.clone().requires_grad_(True)
    z = tiny[f1 + 1:i2 + 1](xa)
    y = tiny[i2 + 1:](z).softmax(1)[0, 3]
    g_z, g_a = torch.autograd.grad(y, [z, xa])
    paths = _edge_maps(a, kids[f1 + 1:i2], kids[i2], g_z)
    assert paths.shape == (8, 4, 12, 12)
    assert torch.allclose(paths.sum(0), g_a[0], atol=1e-7)
    f = network_flow(tiny, x[0], 3)
    assert torch.allclose(f.edges[1], paths.abs().pow(2).sum((-2, -1)).sqrt(), rtol=1e-4, atol=1e-8)


def test_knocked_units_pass_nothing(tiny):
    x = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(3))
    f = network_flow(tiny, x, 1, mask={"conv2": [0, 5], "fc1": [2]})
    conv2 = f.layers[2]
    assert conv2.knocked == (0, 5) and conv2.acts[[0, 5]].abs().sum() == 0 and conv2.pg[[0, 5]].sum() == 0
    assert conv2.pg_maps[[0, 5]].abs().sum() == 0 and conv2.pg_maps[1].abs().sum() > 0
    assert f.edges[2][:, [0, 5]].sum() == 0 and f.edges[3][:, 2].sum() == 0
    from vizcore.explain.knockout import masked_logits

    ref = masked_logits(tiny, x[None], {"conv2": [0, 5], "fc1": [2]}).softmax(1)[0]
    assert torch.allclose(f.probs, ref, atol=1e-6)


def test_dense_only_models_and_bad_input():
    x = torch.rand(1, 8, 8)
    for arch, kinds in (("mlp", ["input", "dense", "output"]), ("linear", ["input", "output"])):
        f = network_flow(build_model(arch, (1, 8, 8), 10, seed=0), x, 4)
        assert [lay.kind for lay in f.layers] == kinds
        assert f.edges[0].shape == (f.layers[1].width, 1)
    with pytest.raises(ValueError, match="target class"):
        network_flow(build_model("linear", (1, 8, 8), 10, seed=0), x, 10)
    with pytest.raises(ValueError, match="nn.Sequential"):
        network_flow(torch.nn.Module(), x, 0)


def _picture(image) -> np.ndarray:
    """A layout image's pixels, RGBA."""
    import base64
    import io

    from PIL import Image

    source = image["source"] if isinstance(image, dict) else image.source
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1]))).convert("RGBA"))


def test_figure_has_a_node_for_every_map_and_unit(tiny):
    x = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(4))
    f = network_flow(tiny, x, 0, mask={"conv1": [1]})
    fig = network_figure(f, [f"c{i}" for i in range(5)], selected=("conv2", 3), edges_per_layer=10**4)
    nodes = {t.name: t for t in fig.data if t.customdata is not None}
    assert {k: len(v.x) for k, v in nodes.items()} == {"input": 1, "conv1": 4, "conv2": 8, "fc1": 16, "fc2": 5}
    assert list(nodes["conv2"].customdata[3]) == ["conv2", 3]
    # the edges (under everything), the input, one sheet of thumbnails per conv layer, the dots of each dense layer,
    # the ring scale: pictures, so the browser draws no line, rectangle or styled point per edge, map and unit; the
    # selected map alone gets a (cyan) frame
    assert [im.layer for im in fig.layout.images] == ["below"] + ["above"] * 6
    assert [s.line.color for s in fig.layout.shapes] == ["#444", "#00b4d8"]  # the input's frame, the selection
    assert all(t.mode == "markers" for t in fig.data)
    json.loads(fig.to_json())  # serializable for the browser


def test_units_are_dots_shaded_by_activation_ringed_by_pg(tiny):
    """A dense unit's dot is as dark as its activation is large, a knocked-out unit is a grey cross, and the explained
    class's dot is ringed in crimson."""
    from vizcore.plots.network import _dot_size

    f = network_flow(tiny, torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(4)), 3, mask={"fc1": [2]})
    fig = network_figure(f, [f"c{i}" for i in range(5)])
    nodes = {t.name: t for t in fig.data}
    for name, image in zip(("fc1", "fc2"), fig.layout.images[4:6]):
        pic, lay = _picture(image), next(lay for lay in f.layers if lay.name == name)
        scale = pic.shape[0] / image.sizey  # pixels per cell
        centre = [(int((y - image.y) * scale), int((x - image.x) * scale)) for x, y in zip(nodes[name].x, nodes[name].y)]
        v = lay.acts.numpy()
        shade = np.abs(v) / np.abs(v).max() if name == "fc1" else v
        for m, (r, c) in enumerate(centre):
            expect = [154] * 3 if m in lay.knocked else [int(255 - 200 * shade[m])] * 3
            assert list(pic[r, c, :3]) == expect, (name, m)
        if name == "fc2":
            r, c = centre[3]
            radius = _dot_size("output", 5) / 2 * 1.5  # the diagram's pictures have 1.5 pixels per screen pixel
            assert list(pic[int(r - radius), c, :3]) == [220, 20, 60]  # the explained class's crimson ring
            assert list(pic[int(centre[0][0] - radius), c, :3]) != [220, 20, 60]


def test_the_edge_picture_draws_the_strongest_edges_as_the_darkest(tiny):
    """Every edge above 2 % of the strongest is drawn; the strongest one in the most opaque band, and the picture is
    transparent away from every edge."""
    from vizcore.plots.network import _strongest_edges

    f = network_flow(tiny, torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(4)), 0)
    for w in f.edges:
        j, i, rel = _strongest_edges(w.numpy(), 10**4)
        assert len(rel) == int((w > 0.02 * w.max()).sum()) and rel[0] == 1 and (np.diff(rel) <= 0).all()
        assert w[j[0], i[0]] == w.max()
    fig = network_figure(f, [f"c{i}" for i in range(5)], edges_per_layer=10**4)
    edges = fig.layout.images[0]
    pic = _picture(edges)
    assert (pic[..., :3] == [31, 119, 180]).all()  # one colour, its opacity the edge's strength
    sx, sy = pic.shape[1] / edges.sizex, pic.shape[0] / edges.sizey  # pixels per cell
    nodes = {t.name: np.stack([t.x, t.y], 1) for t in fig.data}
    # the strongest edge from fc1 to the output: at its midpoint the top band's opacity
    w = f.edges[-1].numpy()
    j, i = np.unravel_index(w.argmax(), w.shape)
    mid = (nodes["fc1"][i] + nodes["fc2"][j]) / 2
    assert pic[int((mid[1] - edges.y) * sy), int((mid[0] - edges.x) * sx), 3] == pic[..., 3].max() > 200
    assert pic[2, 2, 3] == 0 and pic[-2, -2, 3] == 0  # the corners: no edge there


def test_the_ring_scale_is_a_picture_not_a_colour_bar(tiny):
    """No trace carries a colour bar (it pushes the margins and Plotly lays the figure out twice); the scale is a
    picture running from the lowest ring colour at the bottom to the highest at the top, labelled 0, 0.5, 1."""
    import base64
    import io

    from PIL import Image

    from vizcore.plots.common import colour_lut
    from vizcore.plots.network import RING_SCALE

    f = network_flow(tiny, torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(4)), 0)
    fig = json.loads(network_figure(f, [f"c{i}" for i in range(5)]).to_json())
    assert not any(t.get("marker", {}).get("showscale") or t.get("showscale") for t in fig["data"])
    strip = fig["layout"]["images"][-1]
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(strip["source"].split(",", 1)[1]))).convert("RGB"))
    lut = colour_lut(RING_SCALE)
    assert (img[0, 0] == lut[-1]).all() and (img[-1, 0] == lut[3]).all()  # 1 at the top, 0 at the bottom
    labels = {a["text"]: a["y"] for a in fig["layout"]["annotations"] if a["text"] in ("0", "0.5", "1")}
    assert labels["1"] == pytest.approx(strip["y"]) and labels["0"] == pytest.approx(strip["y"] + strip["sizey"])


def test_a_flow_owns_its_tensors(tiny):
    """A flow of one dataset row must not carry the whole dataset: the app caches flows by pickling them."""
    import pickle

    rows = torch.rand(2000, 1, 12, 12, generator=torch.Generator().manual_seed(5))
    f = network_flow(tiny, rows[7], 0)
    assert torch.equal(f.layers[0].acts, rows[7])
    assert len(pickle.dumps(f)) < rows.numel()  # far below the 1.1 MB of the rows it came from


def test_each_conv_layer_is_one_sheet_with_every_map_in_its_cell(tiny):
    """Map m in cell m, square-root scaled (a knocked-out map flat grey and crossed out in crimson), ringed in its
    margin by the colour of its PG score (the strongest map the top of the scale), the gaps transparent."""
    from vizcore.plots.common import colour_lut
    from vizcore.plots.network import RING_SCALE, THUMB

    x = torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(4))
    f = network_flow(tiny, x, 0, mask={"conv2": [5]})
    fig = network_figure(f, [f"c{i}" for i in range(5)], rows=8)
    conv2 = next(lay for lay in f.layers if lay.name == "conv2")
    sheet = fig.layout.images[3]  # edges, input, conv1, conv2: 8 maps in one column of 8 cells
    assert (sheet.sizex, sheet.sizey) == (1, 8)
    img = _picture(sheet)
    a = conv2.acts.numpy()
    n, h, w = a.shape
    g = max(1, round(h * (1 / THUMB - 1)))  # a cell's margin, in map pixels
    k = img.shape[0] // (8 * (h + g))  # the nearest-neighbour blow-up
    assert img.shape[:2] == (8 * (h + g) * k, (w + g) * k)
    top = int(conv2.pg.argmax())
    for m in range(n):
        y0, x0 = k * (m * (h + g) + g // 2), k * (g // 2)
        thumb = img[y0:y0 + k * h:k, x0:x0 + k * w:k]
        assert (thumb[..., 3] == 255).all()
        if m == 5:
            assert (thumb[0, 0, :3] == [220, 20, 60]).all() and (thumb[0, w // 2, :3] == 200).all()  # crossed grey
        else:
            expect = np.round(np.sqrt(np.clip(a[m] / max(a[m].max(), 1e-12), 0, 1)) * 255)
            assert np.abs(thumb[..., 0].astype(int) - expect).max() <= 1, m
        ring = img[y0 - 1, x0 + k * w // 2]  # just above the thumbnail
        if m == top:
            assert (ring[:3] == colour_lut(RING_SCALE)[255]).all() and ring[3] == 255
        if m == 5:
            assert (ring[:3] == 154).all()  # a knocked-out map's ring is grey
    def ring_rows(m):  # how many pixel rows of ring sit in map m's top margin (the rest of it is transparent)
        y0, x = k * (m * (h + g) + g // 2), k * (g // 2) + k * w // 2
        return int((img[y0 - k * (g // 2):y0, x, 3] == 255).sum())

    weakest = min((m for m in range(n) if m != 5), key=lambda m: float(conv2.pg[m]))
    assert ring_rows(top) > ring_rows(weakest) >= 1  # thicker rings for stronger maps


def test_the_clickable_svg_keeps_every_node_picture_and_word_of_the_figure(tiny):
    """ui.static_chart.clickable: the figure's pictures in order (the edges first, under everything) where the figure
    puts them, a hot spot centred on every node with its hover text, only conv maps clickable (as [layer, index]), the
    texts of the figure, and a model's names escaped, never markup."""
    from xml.etree import ElementTree

    from ui.static_chart import clickable

    f = network_flow(tiny, torch.rand(1, 12, 12, generator=torch.Generator().manual_seed(4)), 0)
    names = ["c0", "<b>c1</b>", "c<script>x</script>2", "c3 & co", "c4"]
    fig = network_figure(f, names, title="PG of 'c0'", selected=("conv2", 3))
    svg = ElementTree.fromstring(clickable(fig.to_dict()))  # well-formed: nothing a name holds became markup
    ns = "{http://www.w3.org/2000/svg}"
    assert not list(svg.iter(ns + "script"))
    (x0, x1), (yb, yt) = fig.layout.xaxis.range, fig.layout.yaxis.range
    vx, vy, vw, vh = map(float, svg.get("viewBox").split())
    assert (vx, vw) == pytest.approx((x0, x1 - x0), abs=1e-3) and vy + vh == pytest.approx(yb, abs=1e-3) and vy < yt
    images = list(svg.iter(ns + "image"))
    layout = sorted(fig.layout.images, key=lambda im: im.layer != "below")
    assert layout[0].layer == "below" and [im.get("href") for im in images] == [im.source for im in layout]
    for im, want in zip(images, layout):
        assert [float(im.get(k)) for k in ("x", "y", "width", "height")] == pytest.approx(
            [want.x, want.y, want.sizex, want.sizey], rel=1e-3)
    spots = [n for n in svg if "node" in n.get("class", "").split()]
    traces = [t for t in fig.data if t.customdata is not None]
    assert len(spots) == sum(len(t.x) for t in traces)
    for spot, (t, m) in zip(spots, [(tr, m) for tr in traces for m in range(len(tr.x))]):
        if spot.tag == ns + "rect":
            cx = float(spot.get("x")) + float(spot.get("width")) / 2
            cy = float(spot.get("y")) + float(spot.get("height")) / 2
        else:
            cx, cy = float(spot.get("cx")), float(spot.get("cy"))
        assert (cx, cy) == pytest.approx((t.x[m], t.y[m]), abs=1e-3)
        assert spot.get("data-hover") == t.hovertext[m].replace("<br>", "\n")
        opens = "open" in spot.get("class").split()
        assert opens == t.name.startswith("conv")
        assert (json.loads(spot.get("data-node")) == [t.name, m]) if opens else spot.get("data-node") == ""
    texts = ["".join(t.itertext()) for t in svg.iter(ns + "text")]
    assert texts[-1] == "PG of 'c0'" and "conv2" in texts and "8 maps" in texts
    assert f"c<script>x</script>2 {float(f.probs[2]):.0%}" in texts and f"c3 & co {float(f.probs[3]):.0%}" in texts
    frames = [r.get("stroke") for r in svg.iter(ns + "rect") if r.get("fill") == "none"]
    assert frames == ["#444", "#00b4d8"]  # the input's frame and the selected map's
