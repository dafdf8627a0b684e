"""Display helpers shared by the pages."""

import json

import numpy as np
import torch

from vizcore.plots.common import stretch_contrast


def test_stretch_contrast_spans_the_grey_range():
    imgs = torch.stack([torch.full((1, 4, 4), 0.1), torch.linspace(0.02, 0.06, 16).view(1, 4, 4)])
    out = stretch_contrast(imgs)
    assert torch.equal(out[0], torch.zeros(1, 4, 4))  # a flat image stays flat
    assert out[1].min() == 0 and torch.isclose(out[1].max(), torch.tensor(1.0))
    assert torch.argsort(out[1].flatten()).equal(torch.argsort(imgs[1].flatten()))  # order of pixels kept


def test_unvalidated_figures_spell_out_their_colour_scales():
    """Figures built without Plotly's validation must not send scale names Plotly.js reads differently: grey
    pictures drawn with "gray" came out in false colours, and "Blues" / "_r" scales ran the wrong way."""
    import json

    import torch

    from vizcore.plots.common import confusion_heatmap, image_grid
    from vizcore.plots.gradients import map_grid

    grid = json.loads(image_grid(torch.rand(3, 1, 4, 4)).to_json())["data"][0]
    assert grid["colorscale"][0] == [0.0, "rgb(0, 0, 0)"] and grid["colorscale"][-1][0] == 1.0  # black to white
    blues = json.loads(confusion_heatmap([[5, 1], [0, 4]], ["a", "b"]).to_json())["data"][0]["colorscale"]
    assert blues[0] == [0.0, "rgb(247,251,255)"]  # white for 0, as the colour bar says
    pg = json.loads(map_grid(torch.randn(4, 3, 3), diverging=True).to_json())["data"][0]["colorscale"]
    assert pg[0][1] == "rgb(5,48,97)" and pg[-1][1] == "rgb(103,0,31)"  # blue below 0, red above


def test_map_grid_labels_stay_outside_the_maps():
    """Rows are headed by their first map's number at the left and columns by their offset on top, all outside the
    mosaic (labels above every map sat on the maps of the row above where the page draws them small)."""
    from vizcore.plots.gradients import map_grid

    fig = map_grid(torch.randn(10, 7, 7), cols=4)
    heads = {a.text: (a.x, a.y) for a in fig.layout.annotations}
    assert sorted(heads) == ["#0", "#4", "#8", "+0", "+1", "+2", "+3"]
    assert all(heads[f"+{c}"][1] < -0.5 for c in range(4))  # above the first row
    assert all(heads[f"#{r}"][0] < -0.5 for r in (0, 4, 8))  # left of the first column
    z = np.asarray(fig.data[0].z, dtype=float)
    row8 = heads["#8"][1]  # the third row's header is level with the third row's maps
    assert np.isfinite(z[round(row8)][:2 * 8]).any() and not np.isfinite(z[round(row8)][2 * 8:]).any()  # #8, #9 only


def test_map_grid_hover_names_each_map_in_a_small_integer_array():
    """Every pixel of map i hovers as map i; the map numbers travel as 16-bit integers and the gaps, which hover
    nothing, as 0 (the browser got twice the bytes with 32-bit numbers and -1 in the gaps)."""
    from vizcore.plots.gradients import map_grid

    fig = map_grid(torch.randn(10, 5, 5), cols=4)
    which, z = np.asarray(fig.data[0].customdata), np.asarray(fig.data[0].z, dtype=float)
    assert which.dtype == np.int16 and fig.data[0].hoverongaps is False
    assert (which[~np.isfinite(z)] == 0).all()
    gap = 1  # max(1, 5 // 8)
    for i in range(10):
        r, c = divmod(i, 4)
        block = which[r * (5 + gap):r * (5 + gap) + 5, c * (5 + gap):c * (5 + gap) + 5]
        assert (block == i).all()
    assert json.loads(fig.to_json())["data"][0]["customdata"]["dtype"] == "i2"


def test_map_grid_picture_has_the_grid_colours_headers_and_ring():
    """The picture is :func:`map_grid`'s mosaic in its colour scale: PG maps on one red/blue scale (0 is the middle
    colour), feature maps each on their own; the highlighted map is ringed in orange."""
    from vizcore.plots.common import colour_lut
    from vizcore.plots.gradients import map_grid_picture

    maps = torch.zeros(3, 4, 4)
    maps[0], maps[1, 0, 0] = 2.0, -2.0
    pic, zmax = map_grid_picture(maps, diverging=True, cols=3, map_px=8, highlight=2)
    assert zmax == 2.0 and pic.dtype == np.uint8 and pic.ndim == 3
    lut = colour_lut("RdBu_r")
    colours = {tuple(c) for c in pic.reshape(-1, 3)}
    assert tuple(lut[255]) in colours and tuple(lut[0]) in colours and tuple(lut[127]) in colours
    orange = (pic == (255, 165, 0)).all(-1)
    left, top, k = 40, 22, 2  # the margins for the headers; 4-pixel maps blown up to 8
    ys, xs = np.nonzero(orange)
    assert xs.min() < left + 2 * 5 * k < xs.max() and ys.max() >= top + 4 * k  # around the third map
    feat, _ = map_grid_picture(torch.arange(32.0).view(2, 4, 4), cols=2, map_px=4)
    viridis = colour_lut("Viridis")
    assert tuple(feat[22, 40]) == tuple(viridis[0]) and tuple(feat[22 + 3, 40 + 3]) == tuple(viridis[255])


def test_overlay_picture_blends_the_heat_over_the_image():
    from vizcore.plots.common import colour_lut
    from vizcore.plots.gradients import overlay_picture

    image, heat = torch.zeros(1, 2, 2), torch.tensor([[1.0, -1.0], [0.0, 0.5]])
    pic, zmax = overlay_picture(image, heat, opacity=0.5, side_px=2)
    lut = colour_lut("RdBu_r").astype(float)
    assert zmax == 1.0 and pic.shape == (2, 2, 3)
    assert np.allclose(pic[0, 0], (lut[255] * 0.5).round()) and np.allclose(pic[0, 1], (lut[0] * 0.5).round())


def test_filter_score_bars_colour_each_knocked_filter_without_a_colour_scale():
    """Knocked filters are red and the others blue-grey, bar by bar (no colour scale: it is slow to redraw)."""
    from vizcore.plots.knockout import KEPT, KNOCKED, filter_score_bars

    fig = filter_score_bars({"conv1": [1.0, 4.0, 2.0], "fc1": [0.5, 0.0]}, {"conv1": [1], "fc1": [0, 1]})
    bar = json.loads(fig.to_json())["data"][0]  # what the browser gets
    assert bar["marker"] == {"color": [KEPT, KNOCKED, KEPT, KNOCKED, KNOCKED]}  # no colour scale
    assert fig.data[0].y.tolist() == [0.25, 1.0, 0.5, 1.0, 0.0]  # each layer over its own maximum


def test_the_light_look_is_the_template_update_without_its_validation():
    """light(fig) sends the browser exactly what update_layout(template=LIGHT_TEMPLATE) did, and leaves fig as it was."""
    import plotly.io as pio

    from vizcore.plots.common import LIGHT_TEMPLATE, confusion_heatmap, light
    from vizcore.plots.knockout import filter_score_bars

    for make in (lambda: filter_score_bars({"conv1": [0.5, 0.1, 0.9]}, {"conv1": [2]}),
                 lambda: confusion_heatmap(np.eye(3, dtype=int), ["a", "b", "c"], diverging=True)):
        fig = make()
        before = pio.to_json(fig, validate=False)
        themed = json.loads(pio.to_json(light(fig), validate=False))
        assert pio.to_json(fig, validate=False) == before
        assert themed == json.loads(pio.to_json(make().update_layout(template=LIGHT_TEMPLATE), validate=False))
        assert themed["layout"]["template"]["layout"]["font"]["color"] == LIGHT_TEMPLATE["layout"]["font"]["color"]


def test_a_confusion_change_labels_only_the_cells_that_changed():
    from vizcore.plots.common import confusion_heatmap

    change = np.array([[-2, 2, 0], [0, 0, 0], [0, 1, -1]])
    text = json.loads(confusion_heatmap(change, ["a", "b", "c"], diverging=True).to_json())["data"][0]["text"]
    assert text == [["-2", "2", ""], ["", "", ""], ["", "1", "-1"]]
    counts = confusion_heatmap(np.eye(2, dtype=int), ["a", "b"]).data[0].text
    assert np.asarray(counts).tolist() == [[1, 0], [0, 1]]  # a confusion matrix keeps its zeros


def test_bars_over_class_names_keep_every_class_on_a_category_axis():
    """Digits' class names are "0".."9": Plotly reads such names as numbers and drew a linear axis labelled every
    other class (seen on the Compression and Knockout pages); a category axis names every class, in the model's order."""
    from vizcore.plots.common import per_class_bars
    from vizcore.plots.compression import approach_bars
    from vizcore.plots.knockout import class_accuracy_bars
    from vizcore.plots.visualize import similarity_bars, softmax_bars

    names = [str(c) for c in range(10)]
    figures = [approach_bars({"T": [0.5] * 10}, names),
               per_class_bars([{"class": c, "precision": 1.0, "recall": 1.0, "f1": 1.0} for c in names]),
               class_accuracy_bars([0.9] * 10, [0.8] * 10, names, target=3),
               softmax_bars(torch.full((10,), 0.1), names, 2),
               similarity_bars({"a-b": [0.5] * 10}, names)]
    for fig in figures:
        assert fig.layout.xaxis.type == "category", fig.layout.title.text
        assert [str(x) for x in fig.data[0].x][:3] == ["0", "1", "2"]
    from vizcore.plots.common import confusion_heatmap
    from vizcore.plots.gradients import success_matrix

    for fig in (confusion_heatmap(np.eye(10, dtype=int), names, diverging=True),
                success_matrix(np.eye(10) * 0.5, names, 0.1)):  # the Knockout page's change and Perturb's matrix
        assert fig.layout.xaxis.type == fig.layout.yaxis.type == "category", fig.layout.title.text
        assert fig.layout.yaxis.autorange == "reversed" and list(fig.data[0].y)[:2] == ["0", "1"]
