"""Display helpers shared by the pages."""

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


def test_map_grid_labels_sit_in_the_gap_above_their_map():
    """Each "#n" label is anchored in the gap above its own map, and that gap is a fifth of a map's height, room for
    a 10-point label at the page's map size (a one-pixel gap put 7 x 7 maps' labels on the row above)."""
    from vizcore.plots.gradients import map_grid

    h = 7
    fig = map_grid(torch.randn(10, h, h), cols=4)
    drawn = [bool(np.isfinite(row).any()) for row in np.asarray(fig.data[0].z, dtype=float)]
    first_row_end = drawn.index(False) - 1
    second_row_start = drawn.index(True, first_row_end + 1)
    gap = second_row_start - first_row_end - 1
    assert gap >= 0.2 * h
    labels = {a.text: a.y for a in fig.layout.annotations}
    # the label of map #4 (second row) lies between the first row's last pixel and the second row's first
    assert first_row_end + 0.5 <= labels["#4"] <= second_row_start - 0.5
