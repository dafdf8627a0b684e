"""AppTests of the Prediction gradients, Looks like and Perturb pages on the digits zoo CNN, plus one real-browser
check that takes screenshots of the network diagram and of a Yale face's characteristic feature."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from vizcore.explain import perturb as A
from vizcore.explain import gradients as G
from vizcore.explain.knockout import class_images
from vizcore.explain.network import network_flow
from vizcore.core import jobs
from ui import state
from vizcore import zoo
from vizcore.data import load_digits

APP = str(Path(__file__).resolve().parent.parent / "app.py")

MODEL = "zoo:digits-cnn"


def app_on_digits(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.selectbox(key="dataset_name").set_value("digits").run()
    at.selectbox(key="model_id").set_value(MODEL).run()
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture(scope="module")
def model():
    return zoo.load_model(MODEL)


def test_gradients_page_ranking_matches_library(model):
    at = app_on_digits("pages/gradients.py")
    at.selectbox(key="pg_img_class").set_value(4).run()
    at.number_input(key="pg_img_n").set_value(2).run()
    at.selectbox(key="pg_target").set_value(9).run()
    assert not at.exception, at.exception
    ds = load_digits()
    i = int(torch.nonzero(ds.test_y == 4).flatten()[1])
    scores = G.filter_scores({k: v[0] for k, v in G.prediction_gradients(model, ds.test_x[i:i + 1], 9).items()})
    top = G.rank_filters(scores)[:5]
    table = at.dataframe[0].value
    shown = table[table["end"] == "highest"]
    assert list(zip(shown["layer"], shown["filter"])) == [(n, f) for n, f, _ in top]
    assert shown["score"].tolist() == pytest.approx([s for *_, s in top], rel=1e-5)
    # class average mode, logit output, L1 scores: same ranking as the CLI's and the Knockout page's (training images)
    at.radio(key="pg_mode").set_value("Class average").run()
    at.selectbox(key="pg_avg_class").set_value(7).run()
    at.radio(key="pg_output").set_value("logit").run()
    at.selectbox(key="pg_norm").set_value("l1").run()
    assert not at.exception, at.exception
    scores = G.class_filter_scores(model, class_images(ds.train_x, ds.train_y, 7)[0], 7, norm="l1", output="logit")
    table = at.dataframe[0].value
    assert table[table["end"] == "lowest"]["filter"].tolist() == [f for _, f, _ in G.rank_filters(scores, False)[:5]]


def test_the_next_image_of_the_class_is_worked_out_while_the_person_looks(monkeypatch):
    """After image n the page computes image n + 1's network flow and diagram in the background (n - 1 after a step
    back), and the step to it takes them instead of computing them again."""
    import vizcore.explain.network as N
    import vizcore.plots.network as PN

    calls, drawn = [], []
    real, real_figure = N.network_flow, PN.network_figure

    def counted(model, image, *a, **kw):
        calls.append((threading.current_thread().name, image.clone()))
        return real(model, image, *a, **kw)

    def counted_figure(*a, **kw):
        drawn.append(threading.current_thread().name)
        return real_figure(*a, **kw)

    monkeypatch.setattr(N, "network_flow", counted)
    monkeypatch.setattr(PN, "network_figure", counted_figure)
    at = app_on_digits("pages/gradients.py")
    at.selectbox(key="pg_img_class").set_value(6).run()
    ds = load_digits()
    sixes = torch.nonzero(ds.test_y == 6).flatten().tolist()

    def ahead_key():
        return at.session_state["_pg_ahead"].planned[0][0]  # (the flow's arguments, the map drawn selected)

    assert ahead_key()[2] == sixes[1]
    at.session_state["_pg_ahead"].idle()
    assert any(t == "vizcore-look-ahead" and torch.equal(x, ds.test_x[sixes[1]]) for t, x in calls)
    in_script = len([t for t, _ in calls if t != "vizcore-look-ahead"])
    drawn_in_script = len([t for t in drawn if t != "vizcore-look-ahead"])
    assert "vizcore-look-ahead" in drawn
    at.number_input(key="pg_img_n").set_value(2).run()
    assert not at.exception, at.exception
    assert len([t for t, _ in calls if t != "vizcore-look-ahead"]) == in_script  # taken, not computed again
    assert len([t for t in drawn if t != "vizcore-look-ahead"]) == drawn_in_script  # the diagram too
    assert f"test image #{sixes[1]} " in _diagram(at)["title"]
    assert ahead_key()[2] == sixes[2]
    at.session_state["_pg_ahead"].idle()
    at.number_input(key="pg_img_n").set_value(3).run()
    at.session_state["_pg_ahead"].idle()
    at.number_input(key="pg_img_n").set_value(2).run()  # a step back: the one before is next
    assert ahead_key()[2] == sixes[0]


def test_the_first_step_and_a_step_back_are_not_computed_again(monkeypatch):
    """The page's first run works out image 2 with the map the per-filter browser opens by default (set after the
    diagram is drawn), so the first step takes it; a step back to image 1 gets the diagram shown a step ago."""
    import vizcore.explain.network as N

    in_script = []
    real = N.network_flow

    def counted(model, image, *a, **kw):
        if threading.current_thread().name != "vizcore-look-ahead":
            in_script.append(image.clone())
        return real(model, image, *a, **kw)

    monkeypatch.setattr(N, "network_flow", counted)
    st.cache_data.clear()  # image 1's flow may be cached by an earlier test
    at = app_on_digits("pages/gradients.py")
    assert len(in_script) == 1  # image 1
    title = _diagram(at)["title"]
    at.session_state["_pg_ahead"].idle()
    at.number_input(key="pg_img_n").set_value(2).run()
    assert not at.exception, at.exception
    assert len(in_script) == 1  # taken from the look-ahead (the old key lacked the browser's map: computed again)
    assert _diagram(at)["title"] != title
    at.session_state["_pg_ahead"].idle()  # ahead: image 3
    at.number_input(key="pg_img_n").set_value(1).run()
    assert not at.exception, at.exception
    assert len(in_script) == 1 and _diagram(at)["title"] == title  # image 1 again, from memory


def test_after_a_class_change_the_other_classes_are_worked_out_ahead(monkeypatch):
    """A person who changes the class will probably change it again: the page then works out this image's flow and
    diagram for every other class (its neighbours, then the most probable), and the next class change only shows
    them. After an image step it works out the next image and then this image's next class only (stepping on, the
    person does not wait for the classes)."""
    import vizcore.explain.network as N
    import vizcore.plots.network as PN

    in_script, drawn = [], []
    real, real_figure = N.network_flow, PN.network_figure

    def counted(model, image, target, *a, **kw):
        if threading.current_thread().name != "vizcore-look-ahead":
            in_script.append(target)
        return real(model, image, target, *a, **kw)

    def counted_figure(*a, **kw):
        if threading.current_thread().name != "vizcore-look-ahead":
            drawn.append(a[0].target)
        return real_figure(*a, **kw)

    monkeypatch.setattr(N, "network_flow", counted)
    monkeypatch.setattr(PN, "network_figure", counted_figure)
    st.cache_data.clear()
    at = app_on_digits("pages/gradients.py")
    ahead = at.session_state["_pg_ahead"]
    zeros = torch.nonzero(load_digits().test_y == 0).flatten().tolist()
    # the next image, then this image's next class (idx, class): the classes of a person going through them in turn
    assert in_script == [0] and [k[0][2:4] for k in ahead.planned] == [(zeros[1], 0), (zeros[0], 1)]
    ahead.idle()
    at.selectbox(key="pg_target").set_value(3).run()  # a class change: worked out in the script
    assert not at.exception, at.exception
    assert in_script == [0, 3] and drawn == [0, 3]
    classes = [key[0][3] for key in ahead.planned[:-1]]  # this image's other classes, then the next image
    assert sorted(classes) == [c for c in range(10) if c != 3]
    probs = _diagram_probs(at)  # the next and the previous class in the picker first, then the most probable
    assert classes[:2] == [4, 2]
    assert [probs[c] for c in classes[2:]] == sorted((probs[c] for c in classes[2:]), reverse=True)
    ahead.idle()
    at.selectbox(key="pg_target").set_value(classes[-1]).run()  # the least probable class
    assert not at.exception, at.exception
    assert in_script == [0, 3] and drawn == [0, 3]  # flow and diagram from the look-ahead
    ds = load_digits()
    assert "PG of '" + ds.class_names[classes[-1]] + "'" in _diagram(at)["title"]
    idx = int(torch.nonzero(ds.test_y == 0).flatten()[0])
    want = real(zoo.load_model(MODEL), ds.test_x[idx], classes[-1])
    shown = at.dataframe[0].value
    top = G.rank_filters(G.filter_scores({lay.name: lay.pg_maps for lay in want.layers if lay.kind == "conv"}, "fro"))
    assert shown[shown["end"] == "highest"]["filter"].tolist() == [f for _, f, _ in top[:len(shown) // 2]]
    ahead.idle()
    at.number_input(key="pg_img_n").set_value(2).run()  # an image step: the next image, then this one's next class
    assert not at.exception, at.exception
    c = classes[-1]
    assert [k[0][2:4] for k in ahead.planned] == [(zeros[2], c)] + ([(zeros[1], c + 1)] if c < 9 else [])


def _diagram_probs(at) -> list[float]:
    """The output units' probabilities, from the hover text of the diagram's last column."""
    hover = [h for _, h in _diagram(at)["nodes"] if "probability " in h]
    return [float(h.split("probability ")[1].split("%")[0]) for h in hover]


def _diagram(at) -> dict:
    """What the page's clickable diagram draws: its pictures (in drawing order, with their sizes in cells), its texts (the title last) and its
    hot spots ((``data-node``, hover text), one per map and unit), read from the SVG the page sent."""
    from xml.etree import ElementTree

    ns = "{http://www.w3.org/2000/svg}"
    component = next(e for e in at.get("bidi_component") if e.proto.component_name == "vizcore.clickable_figure")
    svg = ElementTree.fromstring(json.loads(component.proto.json)["svg"])
    return {"svg": svg, "images": [{"source": im.get("href"), "sizex": float(im.get("width")),
                                    "sizey": float(im.get("height"))} for im in svg.iter(ns + "image")],
            "texts": ["".join(t.itertext()) for t in svg.iter(ns + "text")],
            "title": "".join(list(svg.iter(ns + "text"))[-1].itertext()),
            "nodes": [(n.get("data-node"), n.get("data-hover")) for n in svg if "node" in n.get("class", "").split()]}


def _crossed_out(fig: dict) -> list[int]:
    """How many maps of each conv layer's sheet carry a crimson cross (counted along the sheet's cell rows)."""
    import base64
    import io

    import numpy as np
    from PIL import Image

    counts = []
    for image in fig["images"][2:4]:
        pic = np.asarray(Image.open(io.BytesIO(base64.b64decode(image["source"].split(",", 1)[1]))).convert("RGB"))
        red = (pic == [220, 20, 60]).all(-1)
        cells = red.reshape(int(image["sizey"]), pic.shape[0] // int(image["sizey"]),
                            int(image["sizex"]), pic.shape[1] // int(image["sizex"]))
        counts.append(int(cells.any(axis=(1, 3)).sum()))
    return counts


def test_gradients_page_diagram_greys_knocked_out_filters_and_opens_a_clicked_map():
    at = app_on_digits("pages/gradients.py")
    fig = _diagram(at)
    # the edges, the input, a sheet of maps per conv layer, the dots of the dense and output layers, the ring scale
    assert len(fig["images"]) == 1 + 1 + 2 + 2 + 1
    at.session_state[state.KNOCKOUT_MASK] = {"conv1": [0, 3], "conv2": [5]}
    at.session_state[state.KNOCKOUT_OWNER] = ("zoo:fashion-mnist-cnn", 0.0)  # a mask made for another model
    at.run()
    assert not at.exception, at.exception
    assert _crossed_out(_diagram(at)) == [0, 0]  # not drawn on this one
    at.session_state[state.KNOCKOUT_OWNER] = state.model_key(zoo.get_entry(at.session_state[state.MODEL_KEY]))
    at.run()
    assert not at.exception, at.exception
    fig = _diagram(at)
    assert _crossed_out(fig) == [2, 1]  # each knocked map crossed out in its layer's sheet
    assert any("knocked out" in c.value for c in at.caption)
    # the ranking is of the same network: the knocked filters pass nothing on, so their PG is 0
    ds = load_digits()
    i = int(torch.nonzero(ds.test_y == 0).flatten()[0])
    flow = network_flow(zoo.load_model(MODEL), ds.test_x[i], 0, mask={"conv1": [0, 3], "conv2": [5]})
    scores = G.filter_scores({lay.name: lay.pg_maps for lay in flow.layers if lay.kind == "conv"})
    assert float(scores["conv1"][3]) == 0 == float(scores["conv2"][5])
    table = at.dataframe[0].value
    shown = table[table["end"] == "highest"]
    top = G.rank_filters(scores)[:5]
    assert list(zip(shown["layer"], shown["filter"])) == [(n, f) for n, f, _ in top]
    assert shown["score"].tolist() == pytest.approx([v for *_, v in top], rel=1e-5)
    # every map is a hot spot a click sends back as [layer, index] (test_browser_network_diagram_and_yale_feature
    # clicks one); dense units and outputs show their hover text but open nothing
    clickable = [json.loads(n) for n, _ in fig["nodes"] if n]
    assert clickable == [["conv1", m] for m in range(32)] + [["conv2", m] for m in range(64)]
    assert len(fig["nodes"]) == 1 + 32 + 64 + 128 + 10


def _framed(fig: dict) -> list[tuple[float, float]]:
    """The centres of the diagram's cyan frames (the map open in the per-filter browser)."""
    from vizcore.plots.network import SELECTED

    return [(float(r.get("x")) + float(r.get("width")) / 2, float(r.get("y")) + float(r.get("height")) / 2)
            for r in fig["svg"].iter("{http://www.w3.org/2000/svg}rect") if r.get("stroke") == SELECTED]


def _spot(fig: dict, layer: str, m: int) -> tuple[float, float]:
    """The centre of a map's hot spot."""
    e = next(e for e in fig["svg"] if e.get("data-node") == json.dumps([layer, m]))
    if e.get("cx") is not None:
        return float(e.get("cx")), float(e.get("cy"))
    return float(e.get("x")) + float(e.get("width")) / 2, float(e.get("y")) + float(e.get("height")) / 2


def test_the_first_diagram_frames_the_map_the_browser_opens():
    """The page's first diagram already frames the per-filter browser's default map (the first conv layer's
    strongest for this image and class), and the frame follows the browser."""
    at = app_on_digits("pages/gradients.py")
    layer, m = at.selectbox(key="pg_browse_layer").value, int(at.number_input(key="pg_browse_filter").value)
    ds = load_digits()
    i = int(torch.nonzero(ds.test_y == 0).flatten()[0])
    flow = network_flow(zoo.load_model(MODEL), ds.test_x[i], 0)
    first = next(lay for lay in flow.layers if lay.kind == "conv")
    assert (layer, m) == (first.name, int(G.filter_scores({first.name: first.pg_maps})[first.name].argmax()))
    fig = _diagram(at)
    assert _framed(fig) == [pytest.approx(_spot(fig, layer, m), abs=1e-3)]
    at.number_input(key="pg_browse_filter").set_value((m + 1) % first.width).run()
    assert not at.exception, at.exception
    fig = _diagram(at)
    assert _framed(fig) == [pytest.approx(_spot(fig, layer, (m + 1) % first.width), abs=1e-3)]


def test_the_per_filter_browser_draws_pictures_and_hover_charts_on_request():
    """By default the overlay and both map grids are pictures (a browser shows them at once; the three Plotly charts
    took about 280 ms of every image change); *Hover values* turns them back into charts. Every chart on the page
    skips Streamlit's theming in the browser and brings its light look in its own template."""
    at = app_on_digits("pages/gradients.py")
    assert not at.get("plotly_chart") and len(at.get("image")) == 3  # overlay and two grids (and the SVG diagram)
    f = at.number_input(key="pg_browse_filter").value
    captions = [i.proto.imgs[0].caption for i in at.get("image")]
    assert f"#{f}:" in captions[0] and "filter outputs" in captions[1] and "PG maps on one scale" in captions[2]
    at.toggle(key="pg_hover").set_value(True).run()
    assert not at.exception, at.exception
    charts = at.get("plotly_chart")
    assert len(charts) == 3 and not at.get("image")
    for c in charts:
        spec = json.loads(c.proto.spec)
        assert c.proto.theme == "" and spec["layout"]["template"]["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)"
    assert "background:white" in _diagram(at)["svg"].get("style")  # the diagram keeps its white ground


def test_looks_like_page_reports_the_feature(model):
    at = app_on_digits("pages/looks_like.py")
    at.selectbox(key="ll_img_class").set_value(3).run()
    at.selectbox(key="ll_other").set_value(8).run()
    assert not at.exception, at.exception
    ds = load_digits()
    i = int(torch.nonzero(ds.test_y == 3).flatten()[0])
    r = G.looks_like(model, ds.test_x[i], 3, 8)
    captions = " ".join(c.value for c in at.caption)
    assert f"filter #{r.feature.filter}, unit ({r.feature.row}, {r.feature.col})" in captions
    assert f"filter #{r.own.filter}, unit ({r.own.row}, {r.own.col})" in captions
    at.selectbox(key="ll_layer").set_value("input").run()
    assert not at.exception and "pixel, unit" in " ".join(c.value for c in at.caption)


def test_perturb_page_strip_and_sweep_job():
    at = app_on_digits("pages/perturb.py")
    at.text_input(key="pt_eps").set_value("0, 3").run()
    assert not at.exception, at.exception
    at.number_input(key="pt_per_class").set_value(2).run()
    at.button(key="pt_run").click().run()
    assert not at.exception, at.exception
    job = jobs.list_jobs("perturb-sweep")[0]
    done = jobs.wait_job(job.id)
    assert done.state == "done", done.error
    at.run()
    assert not at.exception, at.exception
    r = A.SweepResult.from_dict(done.result)
    assert r.n_images == 20 and r.eps == [0.0, 3.0]
    assert at.select_slider(key="pt_matrix_eps").value == 3.0
    # bad step sizes give a clear message, not a traceback
    at.text_input(key="pt_eps").set_value("1, two").run()
    assert not at.exception and "non-negative numbers" in at.error[0].value


def test_pages_explain_a_model_without_conv_layers():
    at = app_on_digits("pages/gradients.py")
    at.selectbox(key="model_id").set_value("zoo:digits-linear").run()
    assert not at.exception and "no convolutional layers" in at.info[0].value
    nodes = _diagram(at)["nodes"]  # the dense-only diagram: image -> class probabilities, nothing to open
    assert nodes[0][1].startswith("input image") and len(nodes) == 1 + 10
    assert all("probability" in hover for _, hover in nodes[1:]) and not any(node for node, _ in nodes)


def _choose(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).first.click()
    page.get_by_role("option", name=option, exact=True).first.click()


def _shows(page, label: str, value: str) -> None:
    """Wait until the selectbox labelled ``label`` shows ``value`` (what the person sees, not the server's state)."""
    page.wait_for_function("""([l, v]) => [...document.querySelectorAll('[data-testid=stSelectbox]')]
        .some(e => e.innerText.trim() === l && e.querySelector('input')?.value === v)""", arg=[label, value],
                           timeout=180_000)


def test_browser_network_diagram_and_yale_feature(workspace):
    """Real Chromium: a class picker follows a switch from Fashion-MNIST to digits; the network diagram draws every
    map and unit, and a click on a map opens it in the per-filter browser; a Yale face gets its feature box."""
    from app_server import browser_page, running_app, screenshot, wait_rendered

    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)
        wait_rendered(page, "trained on fashion-mnist")  # the app opens on Fashion-MNIST when it is there
        page.get_by_role("link", name="Prediction gradients").click()
        wait_rendered(page, "Per-filter browser")
        _choose(page, "Class", "3: Dress")
        _shows(page, "Class", "3: Dress")
        wait_rendered(page, "Per-filter browser")
        _choose(page, "Dataset", "digits")
        _shows(page, "Dataset", "digits")
        wait_rendered(page, "trained on digits")
        _shows(page, "Class", "0: 0")  # digits' first class, not Fashion's "3: Dress"
        page.get_by_role("link", name="Prediction gradients").click()
        wait_rendered(page, "Per-filter browser")
        page.wait_for_timeout(1500)
        diagram = page.locator(".vz-figure svg").first
        assert diagram.locator(".node").count() == 1 + 32 + 64 + 128 + 10  # every map and unit is a hot spot
        # the edges, the input, a sheet per conv layer, the dots of fc1 and of the output, the scale
        assert diagram.locator("image").count() == 1 + 1 + 2 + 2 + 1
        assert screenshot(page, "gradients").stat().st_size > 10_000
        # hovering conv2's map #5 names it; a click opens it in the per-filter browser
        spot = diagram.locator(""".open[data-node='["conv2", 5]']""")
        spot.hover()
        assert "conv2 map #5" in page.locator(".vz-tip").inner_text()
        spot.click()
        _shows(page, "Layer", "conv2")
        page.wait_for_function("() => document.querySelector('input[aria-label=\"Filter (0–63)\"]')?.value === '5'",
                               timeout=180_000)
        wait_rendered(page, "conv2: filter outputs")
        wait_rendered(page, "conv2 #5: PG on the input")
        # another filter chosen in the browser stays; a second click on the same map opens it again
        box = page.locator('input[aria-label="Filter (0–63)"]')
        box.fill("9")
        box.press("Enter")
        wait_rendered(page, "conv2 #9: PG on the input")
        diagram.locator(""".open[data-node='["conv2", 5]']""").click()
        wait_rendered(page, "conv2 #5: PG on the input")
        _choose(page, "Dataset", "yale-faces")
        wait_rendered(page, "trained on yale-faces")
        page.get_by_role("link", name="Looks like").click()
        wait_rendered(page, "Most like")
        page.wait_for_timeout(1500)
        assert page.locator(".js-plotly-plot").count() >= 4
        assert screenshot(page, "looks_like_yale").stat().st_size > 10_000
