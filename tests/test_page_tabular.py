"""AppTest of every page on a tabular model (zoo:uci-pendigits-mlp10), and the Compression page's jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from vizcore.core import jobs
from vizcore.distill import compression as comp

APP = str(Path(__file__).resolve().parent.parent / "app.py")
MODEL = "zoo:uci-pendigits-mlp10"


def _page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["dataset_name"] = "uci-pendigits"
    at.session_state["model_id"] = MODEL
    at.run()
    return at.switch_page(f"pages/{page}.py").run()


@pytest.mark.parametrize("page", ["overview", "models_data", "visualize", "gradients", "looks_like", "perturb",
                                  "knockout", "student_lab", "compression"])
def test_every_page_opens_on_a_table(page, shared_datasets):
    at = _page(page)
    assert not at.exception, at.exception


def test_the_student_lab_offers_a_table_the_clis_default():
    from vizcore.distill.methods import DEFAULT_METHOD
    from vizcore.distill.synthesis import METHOD_LABELS

    at = _page("student_lab")
    assert at.selectbox(key="sl_method").value == DEFAULT_METHOD == "kegnet-online"  # both make feature rows
    assert at.selectbox(key="sl_method").options == [METHOD_LABELS["kegnet-online"], METHOD_LABELS["kegnet"]]


def test_shrink_shows_the_libraries_figures(shared_datasets):
    from vizcore import zoo
    from vizcore.data import load_dataset
    from vizcore.metrics import evaluate_model

    at = _page("compression")
    at.slider(key="cmp_ratio").set_value(8.0).run()
    assert not at.exception
    small, info = comp.compress_model(zoo.load_model(MODEL), ratio=8.0)
    ds = load_dataset("uci-pendigits")
    acc = evaluate_model(small, ds.test_x, ds.test_y, ds.class_names)["accuracy"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Ratio"] == f"{info['ratio']:.2f}x" and metrics["Test accuracy"] == f"{acc:.1%}"


def test_the_engine_steps_of_the_best_repair_are_asked_for_images_only(shared_datasets):
    """An image model's best repair trains in the engine: the page asks for its steps (the CLI's default); a
    table's best repair fine-tunes for epochs, so the field is not there."""
    assert not [n for n in _page("compression").number_input if n.key == "cmp_esteps"]
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["dataset_name"] = "digits"
    at.session_state["model_id"] = "zoo:digits-cnn"
    at.run()
    at.switch_page("pages/compression.py").run()
    assert not at.exception, at.exception
    assert at.number_input(key="cmp_esteps").value == comp.IMAGE_REPAIR["engine_steps"]


def test_repair_and_kegnet_pictures_run_as_jobs(shared_datasets):
    at = _page("compression")
    # the page starts from the CLI's and the bench's repair defaults for a table
    assert at.number_input(key="cmp_n").value == comp.TABLE_REPAIR["n"]
    assert at.number_input(key="cmp_kn").value == comp.TABLE_REPAIR["kegnet_n"]
    assert at.number_input(key="cmp_ksteps").value == comp.TABLE_REPAIR["kegnet_steps"]
    assert at.number_input(key="cmp_epochs").value == comp.TABLE_REPAIR["epochs"]
    assert at.number_input(key="cmp_kepochs").value == comp.TABLE_REPAIR["kegnet_epochs"]
    at.multiselect(key="cmp_methods").set_value(["gaussian"]).run()
    at.number_input(key="cmp_n").set_value(300).run()
    at.number_input(key="cmp_epochs").set_value(1).run()
    at.checkbox(key="cmp_real_select").check().run()  # the seed's protocol, asked for by name
    at.button(key="cmp_estimate").click().run()  # before starting: how long these settings will take
    (estimate,) = [i.value for i in at.info if i.value.startswith("Estimated")]
    assert "T+Gaussian" in estimate and "min on this machine" in estimate
    at.number_input(key="cmp_epochs").set_value(2).run()
    assert not [i for i in at.info if i.value.startswith("Estimated")]  # other settings: that estimate is gone
    at.number_input(key="cmp_epochs").set_value(1).run()
    at.button(key="cmp_go").click().run()
    job = jobs.list_jobs(comp.JOB_KIND)[0]
    jobs.wait_job(job.id)
    assert jobs.get_job(job.id).state == "done"
    assert jobs.get_job(job.id).config["repair"]["select"] == "real"
    at.number_input(key="kg_steps").set_value(10).run()
    at.button(key="kg_go").click().run()
    kjob = jobs.list_jobs("kegnet-pictures")[0]
    jobs.wait_job(kjob.id)
    res = jobs.get_job(kjob.id).result
    assert len(res["zero"]) == 5 and len(res["zero"][0]) == 10 and len(res["walk"][0]) == 9
    at.run()
    assert not at.exception
    assert "T+Gaussian" in at.dataframe[-1].value["approach"].tolist() or any(
        "T+Gaussian" in df.value.to_string() for df in at.dataframe)


def test_browser_shows_the_compression_comparison(workspace, shared_datasets):
    """Real Chromium: a finished repair job (from disk, in a fresh server) draws the class-by-class comparison."""
    from app_server import browser_page, running_app, screenshot, wait_rendered

    job = comp.start_compression_job(MODEL, ratio=8.0, methods=("uniform", "gaussian"),
                                     config=comp.RepairConfig(n=400, epochs=2, lr=1e-3), wait=True)
    assert job.state == "done"
    with running_app(workspace) as url, browser_page() as page:
        page.goto(url)
        wait_rendered(page, "Dataset")
        page.get_by_label("Dataset").first.click()
        page.get_by_role("option", name="uci-pendigits", exact=True).first.click()
        wait_rendered(page, "trained on uci-pendigits")
        page.get_by_role("link", name="Compression").click()
        wait_rendered(page, "Accuracy per class before and after Tucker")
        page.get_by_role("tab", name="Repair without data").click()
        wait_rendered(page, "T+Gaussian")
        page.wait_for_timeout(1500)
        assert page.locator(".js-plotly-plot").count() >= 2
        path = screenshot(page, "compression")
    assert path.stat().st_size > 10_000
