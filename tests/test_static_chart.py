"""The saved first page's server-made pictures (ui/static_chart.py) say what the Plotly figures they stand for say."""

import base64
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ui import static_chart
from vizcore.plots.common import confusion_heatmap, image_grid, per_class_bars


def test_typed_arrays_decode_to_plotlys_own_values():
    z = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    fig = json.loads(confusion_heatmap(np.arange(9).reshape(3, 3), ["a", "b", "c"]).to_json())
    assert np.array_equal(static_chart.array(fig["data"][0]["z"]), np.arange(9).reshape(3, 3))
    encoded = {"dtype": "f4", "bdata": base64.b64encode(z.tobytes()).decode(), "shape": "3, 4"}
    assert np.array_equal(static_chart.array(encoded), z)
    assert np.array_equal(static_chart.array([[1, 2]]), [[1, 2]])


def test_colour_scale_interpolation():
    scale = [[0.0, "rgb(0,0,0)"], [0.5, "#ff0000"], [1.0, "rgb(255, 255, 255)"]]
    assert static_chart.colour(scale, 0) == "rgb(0,0,0)"
    assert static_chart.colour(scale, 0.25) == "rgb(128,0,0)"
    assert static_chart.colour(scale, 0.5) == "rgb(255,0,0)"
    assert static_chart.colour(scale, 2) == "rgb(255,255,255)"  # clipped


def _rects(svg: str) -> list[dict]:
    return [dict(re.findall(r'(\w+)="([^"]*)"', r)) for r in re.findall(r"<rect [^>]*/>", svg)]


def test_bars_are_as_tall_as_their_values():
    per_class = [{"class": "cat", "precision": 0.5, "recall": 1.0, "f1": 0.25},
                 {"class": "dog", "precision": 0.75, "recall": 0.0, "f1": 1.0}]
    svg = static_chart.svg(per_class_bars(per_class).to_json(), 600)
    bars = [r for r in _rects(svg) if float(r["width"]) > 12]  # the legend's swatches are 12 wide
    heights = [float(r["height"]) for r in bars]
    assert len(bars) == 6
    unit = heights[2]  # trace by trace: precision of cat and dog, recall (cat's is 1.0), F1
    assert np.allclose(heights, np.array([0.5, 0.75, 1.0, 0.0, 0.25, 1.0]) * unit, atol=0.15)
    for name in ("cat", "dog", "precision", "recall", "f1", "Per-class precision, recall and F1"):
        assert f">{name}<" in svg


def test_a_confusion_matrix_keeps_its_counts_and_labels_rows_by_true_class():
    counts = np.array([[5, 0, 1], [2, 7, 0], [0, 0, 9]])
    svg = static_chart.svg(confusion_heatmap(counts, ["a", "b", "c"]).to_json(), 480)
    cells = _rects(svg)
    assert len(cells) == 9
    numbers = [int(t) for t in re.findall(r">(\d+)</text>", svg)]
    assert numbers == counts.ravel().tolist()  # row by row, the first row (true class a) on top
    ys = sorted({float(r["y"]) for r in cells})
    assert len(ys) == 3 and float(cells[0]["y"]) == ys[0]
    darkest = cells[int(counts.argmax())]["fill"]
    assert darkest == static_chart.colour(json.loads(confusion_heatmap(counts, list("abc")).to_json())["data"][0]
                                          ["colorscale"], 1.0)


def test_knockout_charts_keep_their_colours_percent_ticks_and_changed_cells():
    """The Knockout page's pictures: each bar in its own colour (knocked filters red), accuracy ticks in percent with
    the chosen class in bold, and a confusion change coloured around 0 with only the changed cells labelled."""
    from vizcore.plots.knockout import KEPT, KNOCKED, class_accuracy_bars, filter_score_bars

    svg = static_chart.svg(filter_score_bars({"conv1": [1.0, 4.0, 2.0], "fc1": [0.5, 0.0]},
                                             {"conv1": [1], "fc1": [0]}).to_dict(), 500)
    assert [r["fill"] for r in _rects(svg)] == [KEPT, KNOCKED, KEPT, KNOCKED, KEPT]
    assert ">fc1:1<" in svg
    many = static_chart.svg(filter_score_bars({"conv1": list(range(1, 71))}, {}).to_dict(), 500)
    assert len(_rects(many)) == 70 and ">conv1:0<" not in many  # past 60 filters the figure hides the names
    svg = static_chart.svg(class_accuracy_bars([0.9, 0.5], [0.8, 0.1], ["cat", "dog"], target=1).to_dict(), 400)
    assert ">100%<" in svg and ">40%<" in svg and 'font-weight="700"' in svg.split(">dog<")[0].rsplit("<text", 1)[1]
    heights = [float(r["height"]) for r in _rects(svg) if r["width"] != "12"]
    assert np.allclose(np.array(heights) / max(heights), np.array([0.9, 0.5, 0.8, 0.1]) / 0.9, atol=0.01)
    change = np.array([[-4, 4], [0, 0]])
    svg = static_chart.svg(confusion_heatmap(change, ["a", "b"], "change", diverging=True).to_dict(), 400)
    cells = _rects(svg)
    scale = json.loads(confusion_heatmap(change, ["a", "b"], diverging=True).to_json())["data"][0]["colorscale"]
    assert [c["fill"] for c in cells] == [static_chart.colour(scale, t) for t in (0.0, 1.0, 0.5, 0.5)]
    assert re.findall(r">(-?\d+)</text>", svg) == ["-4", "4"]  # unchanged cells stay blank
    assert svg.count('fill="white"') == 2  # on the two dark ends of the scale


def test_an_image_mosaic_carries_its_pictures_titles_and_frames():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 8, 8, generator=g)
    fig = image_grid(images, ["one", "two", "three"], cols=3, highlight=[False, True, False])
    svg = static_chart.svg(fig.to_json(), 900)
    png = base64.b64decode(re.search(r'href="data:image/png;base64,([^"]+)"', svg).group(1))
    pixels = np.asarray(Image.open(io.BytesIO(png)))
    mosaic = static_chart.array(json.loads(fig.to_json())["data"][0]["z"])
    assert pixels.shape == mosaic.shape
    inside = ~np.isnan(mosaic)
    assert np.array_equal(pixels[inside], mosaic[inside].astype(np.uint8)) and (pixels[~inside] == 255).all()
    assert [t for t in ("one", "two", "three") if f">{t}<" in svg] == ["one", "two", "three"]
    frames = [r for r in _rects(svg) if r.get("stroke") == "crimson"]
    assert len(frames) == 1 and float(frames[0]["x"]) > 8  # the second picture's
    colour = image_grid(torch.rand(2, 3, 6, 6, generator=g), ["x", "y"], cols=2)  # an RGB mosaic: Plotly's image trace
    png = base64.b64decode(re.search(r'base64,([^"]+)"', static_chart.svg(colour.to_json(), 400)).group(1))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))),
                          static_chart.array(json.loads(colour.to_json())["data"][0]["z"]))


def test_drawing_the_pictures_imports_neither_torch_nor_plotly(tmp_path):
    record = tmp_path / "fig.json"
    record.write_text(confusion_heatmap(np.eye(3, dtype=int), ["a", "b", "c"]).to_json())
    code = (f"import sys, ui.static_chart as m; m.svg(open({str(record)!r}).read()); "
            "print(sorted(k for k in ('torch', 'plotly') if k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"
