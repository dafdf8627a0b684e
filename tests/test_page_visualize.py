"""The Visualize page: generate, switch class, compare, filters, downloads (AppTest), and one screenshot of
the grid in a real browser."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from vizcore.core import jobs
from vizcore import zoo
from vizcore.explain.interpretability import difficulty, predictions, recognizability, zoo_judges
from vizcore.explain.visualize import (NPZ_NAME, Visualizations, bf16_is_fast, class_averages, per_class_mean, preset,
                                       similarities, weight_images)
from vizcore.zoo import ModelCard, save_model

PAGE = "pages/visualize.py"
APP = str(Path(__file__).resolve().parent.parent / "app.py")


@pytest.fixture
def tiny_cnn(digits_cnn, digits):
    """The seeded digits cnn_s saved as a workspace model of this test's workspace."""
    card = ModelCard(name="tiny-cnn", dataset="digits", arch="cnn_s", input_shape=list(digits.input_shape),
                     class_names=list(digits.class_names))
    return save_model(digits_cnn, card)


@pytest.fixture
def downloads(monkeypatch):
    """Record the bytes the page hands to download buttons, by mimetype."""
    seen: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes):
            seen[mimetype] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return seen


def open_page(model_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset_name"] = "digits"
    at.session_state["model_id"] = model_id
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception
    return at


def test_defaults_are_the_recognizable_preset_and_the_page_says_how_recognizable(tiny_cnn, digits, digits_cnn):
    at = open_page(tiny_cnn.id)
    assert at.radio(key="viz_preset").value == "recognizable"
    assert at.selectbox(key="viz_param").value == "fft" and at.radio(key="viz_tmode").value == "none"
    assert at.number_input(key="viz_per_class").value == 10
    at.number_input(key="viz_per_class").set_value(3)
    at.button(key="viz_generate").click()
    at.run()
    [job] = jobs.list_jobs("visualize")
    cfg = preset("recognizable", digits.input_shape)
    assert {k: job.config[k] for k in ("param", "pixel", "jitter", "scale", "rotate", "steps", "lr")} == \
        {k: getattr(cfg, k) for k in ("param", "pixel", "jitter", "scale", "rotate", "steps", "lr")}
    job = jobs.wait_job(job.id)  # the finished job, with its result
    assert job.state == "done"
    at.run()
    assert not at.exception
    vis = Visualizations.from_npz(job.dir / NPZ_NAME)
    for c in range(10):  # distinct samples per class
        z = vis.images[vis.labels == c].flatten(1)
        assert (torch.cdist(z, z) + torch.eye(3)).min() > 0
    # the judges are the digits zoo models (the teacher is a workspace model): the metric is their mean
    judges = {e.id: zoo.load_model(e) for e in zoo_judges(tiny_cnn.id, digits)}
    expected = recognizability(vis.labels, predictions(judges, vis.images))
    assert job.result["recognizability"]["per_judge"] == pytest.approx(expected["per_judge"])
    assert [m.value for m in at.metric][3] == f"{expected['mean']:.0%}"
    assert any("independent judges label" in c.value for c in at.caption)
    # the fooling / hidden-message panel: rates of the visualizations with h_s = the zoo cnn
    at.selectbox(key="viz_hs").set_value("zoo:digits-cnn")
    at.run()
    table = next(d.value for d in at.dataframe if "fooling examples" in d.value.columns)  # the rates table
    S = {k: m for k, m in judges.items() if k != "zoo:digits-cnn"}
    h = predictions({"h": digits_cnn}, vis.images)["h"]
    want = difficulty(h, predictions(S, vis.images), predictions({"s": judges["zoo:digits-cnn"]}, vis.images)["s"])
    row = table[table["set"] == "these visualizations"].iloc[0]
    assert row["fooling examples"] == pytest.approx(want["fooling_rate"])
    assert row["hidden messages"] == pytest.approx(want["hidden_rate"])
    # one click on the other preset puts the seed's plain ascent back in the form
    at.radio(key="viz_preset").set_value("seed")
    at.run()
    assert at.selectbox(key="viz_param").value == "pixel" and at.radio(key="viz_tmode").value == "fixed"
    assert at.number_input(key="viz_per_class").value == 1


def test_generate_switch_class_and_download(tiny_cnn, digits, digits_cnn, downloads):
    at = open_page(tiny_cnn.id)
    at.number_input(key="viz_per_class").set_value(2)
    at.radio(key="viz_tmode").set_value("random range")
    assert at.checkbox(key="viz_bf16").value == bf16_is_fast("cpu")  # fast arithmetic is on where it pays
    at.checkbox(key="viz_bf16").check()
    at.button(key="viz_generate").click()
    at.run()
    [job] = jobs.list_jobs("visualize")
    assert job.config["model"] == tiny_cnn.id and job.config["threshold_range"] == [0.9, 0.99]
    assert job.config["precision"] == "bfloat16"
    assert jobs.wait_job(job.id).state == "done"
    at.run()
    assert not at.exception
    vis = Visualizations.from_npz(job.dir / NPZ_NAME)
    assert [m.value for m in at.metric][:2] == ["20", f"{int(vis.reached.sum())} / 20"]

    # switch class: the panel describes class 3's first sample
    at.selectbox(key="viz_panel_class").set_value(3)
    at.run()
    j = int((vis.labels == 3).nonzero()[0, 0])
    assert any(f"after {int(vis.steps[j])} steps" in c.value for c in at.caption)
    at.number_input(key="viz_panel_sample").set_value(1)
    at.run()
    assert not at.exception

    # downloads: the .npz is the job's file, the PNG is a real PNG
    back = Visualizations.from_npz(io.BytesIO(downloads["application/octet-stream"]))
    assert torch.equal(back.images, vis.images) and torch.equal(back.probs, vis.probs)
    assert downloads["image/png"][:8] == b"\x89PNG\r\n\x1a\n"

    # compare tab: similarities of the per-class mean visualization, effective weights and class averages
    table = next(d.value for d in at.dataframe if "visualization ~ weights" in d.value.columns)  # the similarity table
    w = weight_images(digits_cnn, digits, at="blank").images
    expected = similarities(per_class_mean(vis.images, vis.labels, range(10)), w,
                            class_averages(digits.train_x, digits.train_y, 10))
    assert np.allclose(table["visualization ~ weights"], expected["visualization ~ weights"], atol=1e-5)
    assert any("effective weights" in i.value for i in at.info)

    # a reload (new session) finds the finished job in the workspace
    again = open_page(tiny_cnn.id)
    assert [m.value for m in again.metric][:1] == ["20"]


def test_filters_and_bad_input(tiny_cnn):
    at = open_page(tiny_cnn.id)
    at.multiselect(key="viz_classes").set_value([])
    at.button(key="viz_generate").click()
    at.run()
    assert [e.value for e in at.error] == ["Choose at least one class."]
    assert jobs.list_jobs("visualize") == []

    at.selectbox(key="viz_layer").set_value("conv2")
    at.run()
    at.multiselect(key="viz_channels_conv2").set_value([0, 5])
    at.number_input(key="viz_filter_steps").set_value(20)
    at.button(key="viz_filter_go").click()
    at.run()
    assert not at.exception
    fv = at.session_state["viz_filters"]
    assert fv.layer == "conv2" and fv.channels.tolist() == [0, 5] and fv.images.shape == (2, 1, 8, 8)


def test_browser_screenshot_of_the_grid(tiny_cnn, workspace):
    """Generate in a real browser and keep a screenshot of the grid for a person to look at."""
    from app_server import browser_page, running_app, screenshot, wait_rendered

    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)
        wait_rendered(page, "Dataset")
        page.get_by_role("link", name="Visualize").click()
        wait_rendered(page, "Samples per class")
        page.get_by_role("button", name="Generate").click()
        wait_rendered(page, "Reached T")
        wait_rendered(page, "Download PNG grid")
        path = screenshot(page, "visualize")
        assert path.stat().st_size > 20_000
