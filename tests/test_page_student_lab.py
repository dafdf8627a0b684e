"""The Student lab page: AppTest driven like a user, and one real-browser screenshot of the F1 comparison."""

from __future__ import annotations

import os
import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT
from vizcore.core import jobs
from vizcore.distill import protocol
from vizcore.distill.students import StudentConfig
from vizcore.distill.methods import DEFAULT_METHOD
from vizcore.distill.synthesis import SynthesisConfig
from vizcore import zoo
from vizcore.zoo import ModelCard, save_model

APP = str(ROOT / "app.py")
PAGE = "pages/student_lab.py"


@pytest.fixture
def teacher_id(digits_cnn, digits, workspace):
    card = ModelCard(name="tiny-digits", dataset="digits", arch="cnn_s", input_shape=list(digits.input_shape),
                     class_names=digits.class_names, metrics={"accuracy": 0.95})
    return save_model(digits_cnn, card).id


def open_page(teacher_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    at.selectbox(key="dataset_name").set_value("digits").run()
    at.selectbox(key="model_id").set_value(teacher_id).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def test_start_a_run_and_compare_it(teacher_id):
    at = open_page(teacher_id)
    assert any("No runs yet" in i.value for i in at.info)
    at.selectbox(key="sl_method").set_value("mixed-am").run()  # a fixed set: the bias-only student needs its prototypes
    at.number_input(key="sl_n").set_value(20)
    at.number_input(key="sl_steps_mixed-am").set_value(5)
    at.multiselect(key="sl_students").set_value(["linear"])
    at.number_input(key="sl_budget").set_value(20)
    at.checkbox(key="sl_bias_only").check().run()
    at.button(key="sl_estimate").click().run()
    assert any("Estimated" in i.value and "min" in i.value for i in at.info)
    at.button(key="sl_start").click().run()
    assert not at.exception
    job = jobs.list_jobs(protocol.JOB_KIND)[0]
    assert jobs.wait_job(job.id).state == "done"
    at.run()
    assert not at.exception
    assert any("Best student" in s.value for s in at.success)
    rep = protocol.load_report(job.id)
    assert [s["name"] for s in rep["students"]] == ["linear-engine", "linear-bias-only"]
    assert rep["config"]["synthesis"]["method"] == "mixed-am" and rep["config"]["engine"]["steps"] == 20
    assert rep["config"]["teacher"] == teacher_id and rep["synthesis"]["n"] == 20
    assert [p[0] for p in rep["live"][0]["points"]] == list(range(2, 21, 2))  # the live hold-out agreement curve
    assert at.multiselect(key="sl_compare").value == [job.id]
    shown = at.dataframe[1].value  # accuracies of every model of the compared runs
    assert set(shown["model"]) == {teacher_id, "linear-engine", "linear-bias-only", "linear (real data)"}
    at.selectbox(key="sl_confusion_model").set_value("linear-engine").run()
    at.slider(key="sl_gallery_n").set_value(2).run()
    assert not at.exception


def test_page_and_cli_share_one_default(teacher_id):
    from vizcore.cli import build_parser, distill_cmd
    from vizcore.distill.methods import DEFAULT_N, default_engine

    at = open_page(teacher_id)
    cli = build_parser().parse_args(["distill", "--teacher", teacher_id])
    assert at.selectbox(key="sl_method").value == cli.method == DEFAULT_METHOD
    assert at.number_input(key="sl_n").value == cli.n == DEFAULT_N
    assert "sl_engine" not in [t.key for t in at.toggle] and not cli.no_engine  # a generator in the loop: always the engine
    shape = zoo.get_entry(teacher_id).card.input_shape
    assert at.number_input(key="sl_budget").value == default_engine(shape).steps and cli.budget is None  # None: the default
    assert distill_cmd._engine(cli, shape) == default_engine(shape)  # the budget and every engine setting
    # the default's first stage: KegNet's generators, trained as long on the page as from the CLI
    assert at.number_input(key=f"sl_train_steps_{DEFAULT_METHOD}").value == distill_cmd._synthesis(cli).train_steps


def test_pixel_am_keeps_the_teacher_in_the_loop_without_the_engine(teacher_id):
    at = open_page(teacher_id)
    at.selectbox(key="sl_method").set_value("pixel-am").run()
    at.toggle(key="sl_engine").set_value(False).run()
    assert at.checkbox(key="sl_relabel_pixel-am").value and at.radio(key="sl_start_image").value == "blank"
    at.number_input(key="sl_n").set_value(20)
    at.number_input(key="sl_steps_pixel-am").set_value(5)
    at.multiselect(key="sl_students").set_value(["linear", "rf"])
    at.number_input(key="sl_epochs").set_value(1)
    at.checkbox(key="sl_baseline").uncheck().run()
    at.button(key="sl_start").click().run()
    job = jobs.list_jobs(protocol.JOB_KIND)[0]
    assert jobs.wait_job(job.id).state == "done"
    rep = protocol.load_report(job.id)
    assert [s["name"] for s in rep["students"]] == ["linear-relabel", "rf"]  # forests are fitted once
    assert rep["config"]["synthesis"]["start"] == "blank"


def test_bad_choices_get_clear_messages(teacher_id):
    at = open_page(teacher_id)
    at.multiselect(key="sl_students").set_value([]).run()
    assert any("at least one student" in e.value for e in at.error)
    assert at.button(key="sl_start").disabled
    at.multiselect(key="sl_students").set_value(["linear"])
    at.selectbox(key="sl_method").set_value("online").run()
    assert "sl_sizes" not in [w.key for w in at.text_input]  # an online method has no fixed set to subset
    at.selectbox(key="sl_method").set_value("mixed-am").run()  # sizes and prototypes need a fixed set
    at.text_input(key="sl_sizes").input("10, many").run()
    assert any("whole numbers" in e.value for e in at.error)
    at.text_input(key="sl_sizes").input("10, 999999").run()
    assert any("between 1 and" in e.value for e in at.error)
    at.selectbox(key="sl_method").set_value("class-averages").run()
    assert any("not data-free" in w.value for w in at.warning)
    at.selectbox(key="sl_method").set_value("generator-am").run()
    at.checkbox(key="sl_loss2").check().run()
    assert any("not data-free" in w.value for w in at.warning) and not at.exception


def test_browser_shows_the_f1_comparison_of_a_finished_run(teacher_id, workspace):
    from app_server import browser_page, running_app, screenshot, wait_rendered

    cfg = protocol.DistillConfig(teacher_id, "digits", SynthesisConfig(n=200, batch_size=20, max_steps=30),
                             (StudentConfig(arch="linear", epochs=5, lr=0.01), StudentConfig(arch="cnn_s", epochs=5)))
    assert protocol.start_run(cfg, wait=True).state == "done"
    with running_app(workspace) as url, browser_page() as page:  # a fresh server: the run reopens from disk
        page.goto(url)
        page.get_by_role("link", name="Student lab").click()
        wait_rendered(page, "Synthesis method")
        page.get_by_role("tab", name="Runs and comparison").click()
        wait_rendered(page, "F1 per class")
        assert page.get_by_text("linear (real data)").count() > 0
        path = screenshot(page, "student_lab_compare")
    assert path.stat().st_size > 10_000


def test_preset_d_runs_from_the_page(teacher_id, monkeypatch):
    from test_subset import fake_preset
    from vizcore.distill import presets

    calls = []
    monkeypatch.setattr(presets, "class_subset_preset", fake_preset(calls))  # computed for real in test_subset.py
    at = open_page(teacher_id)
    at.selectbox(key="sl_sub_vs").set_value(3).run()
    assert any("two different classes" in e.value for e in at.error) and at.button(key="sl_sub_start").disabled
    at.selectbox(key="sl_sub_cls").set_value(3)
    at.selectbox(key="sl_sub_vs").set_value(8).run()
    at.button(key="sl_sub_start").click().run()
    job = jobs.list_jobs(presets.JOB_KIND)[0]
    assert jobs.wait_job(job.id).state == "done" and calls == [("cnn_s", 3, 8, 10)]
    at.run()
    assert not at.exception
    tables = [d.value for d in at.dataframe]
    assert any(list(t.get("task", [])) == ["5 vs 6"] for t in tables)
    assert any(list(t.get("training set", [])) == ["10-class visualizations"] and "f1" not in t for t in tables)


def test_a_seed_table_runs_from_the_page_and_shows_the_seeds_figures(teacher_id, monkeypatch):
    from dataclasses import replace

    from vizcore.distill import seed_tables

    p = seed_tables.SEED_PRESETS["table2"]  # the paper's settings, with fewer ascent steps and epochs for the test
    monkeypatch.setitem(seed_tables.SEED_PRESETS, "table2",
                        replace(p, synthesis=replace(p.synthesis, max_steps=3, pre_steps=0), epochs=2))
    at = open_page(teacher_id)
    at.selectbox(key="sl_seed_table").set_value("table2").run()
    at.number_input(key="sl_seed_n").set_value(500).run()
    at.button(key="sl_seed_estimate").click().run()
    assert any("Estimated" in i.value for i in at.info)
    at.button(key="sl_seed_start").click().run()
    assert not at.exception
    job = jobs.list_jobs(protocol.JOB_KIND)[0]
    assert jobs.wait_job(job.id).state == "done", job.error
    rep = protocol.load_report(job.id)
    assert rep["config"]["preset"] == "table2" and rep["config"]["sizes"] == [400, 500]
    assert rep["config"]["synthesis"]["method"] == "generator-am" and rep["config"]["students"][0]["labels"] == "hard"
    at.run()
    rows = next(d.value for d in at.dataframe if "seed: synthetic" in d.value)
    assert list(rows["images"]) == [400, 500]
    assert list(rows["seed: synthetic"])[0] == 63.0 and list(rows["seed: real"])[0] == 92.5  # the seed's 400 row
    assert list(rows["ours: synthetic"]) == [round(100 * s["synthetic"], 2) for s in rep["sweep"]]


def test_a_run_on_two_processes_is_one_job_with_one_bar(teacher_id, monkeypatch):
    monkeypatch.setattr(protocol, "local_processes", lambda: 2)  # the page offers what the machine has
    at = open_page(teacher_id)
    at.selectbox(key="sl_method").set_value("mixed-am").run()
    at.number_input(key="sl_n").set_value(40)
    at.number_input(key="sl_steps_mixed-am").set_value(5)
    at.multiselect(key="sl_students").set_value(["linear"])
    at.number_input(key="sl_budget").set_value(20)
    at.checkbox(key="sl_baseline").uncheck()
    at.number_input(key="sl_processes").set_value(2).run()
    at.button(key="sl_start").click().run()
    assert not at.exception
    [job] = jobs.list_jobs(protocol.JOB_KIND)
    assert "on 2 processes" in job.title and job.pid != os.getpid()  # torchrun runs it, not the server
    for _ in range(6000):
        job = jobs.get_job(job.id)
        if not job.active:
            break
        time.sleep(0.1)
    if job.state != "done":  # the whole log in the failure report (an assertion message is cut short)
        print((job.dir / "process.log").read_text())
    assert job.state == "done", job.error
    assert job.result["world_size"] == 2
    at.run()
    assert any("Best student" in s.value for s in at.success)
    assert protocol.load_report(job.id)["config"]["teacher"] == teacher_id
