"""AppTest for the Knockout page: a slider move shows the CLI's accuracy for the same mask; the study job."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

from vizcore.core import jobs
from vizcore.explain.knockout import format_filters

APP = str(Path(__file__).resolve().parent.parent / "app.py")


def _metric(at, label_start: str) -> str:
    return next(m.value for m in at.metric if m.label.startswith(label_start))


def test_slider_changes_accuracy_to_the_cli_value(capsys):
    from vizcore.cli import main

    at = _page("zoo:digits-cnn")
    assert not at.exception
    at.selectbox(key="ko_n_eval").set_value("whole test set").run()
    at.selectbox(key="ko_class").set_value(3).run()
    intact = _metric(at, "Overall accuracy")
    assert _metric(at, "Filters knocked out") == "0" and at.session_state["knockout_mask"] == {}

    at.slider(key="ko_top_conv2").set_value(12).run()
    assert not at.exception
    mask = at.session_state["knockout_mask"]
    assert list(mask) == ["conv2"] and len(mask["conv2"]) == 12
    assert _metric(at, "Filters knocked out") == "12"
    assert main(["knockout", "--model", "zoo:digits-cnn", "--dataset", "digits", "--class", "3", "--n-eval", "0",
                 "--filters", format_filters(mask), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert _metric(at, "Overall accuracy") == f"{cli['accuracy']:.1%}" != intact
    assert _metric(at, "Accuracy on 3") == f"{cli['class_accuracy']['3']:.1%}"

    at.multiselect(key="ko_extra").set_value(["fc1:0"]).run()
    assert at.session_state["knockout_mask"] == {"conv2": mask["conv2"], "fc1": [0]}
    at.button(key="ko_reset").click().run()
    assert at.session_state["knockout_mask"] == {} and _metric(at, "Overall accuracy") == intact


def test_a_slider_step_prefetches_the_next_step_in_its_direction(monkeypatch):
    """After a slider moves, the page asks the evaluator for the mask one more step on in the same direction."""
    from vizcore.explain.knockout import KnockoutEvaluator

    asked = []
    monkeypatch.setattr(KnockoutEvaluator, "prefetch", lambda self, mask: asked.append(dict(mask)))
    at = _page("zoo:digits-cnn")
    at.slider(key="ko_top_conv2").set_value(1).run()
    at.slider(key="ko_top_conv2").set_value(2).run()
    assert not at.exception
    now = at.session_state["knockout_mask"]["conv2"]
    assert len(asked[-1]["conv2"]) == 3 and set(now) < set(asked[-1]["conv2"])  # the next-highest PG filter
    at.slider(key="ko_top_conv2").set_value(1).run()  # back down: the step below, no filter
    assert not asked[-1].get("conv2")
    at.slider(key="ko_bottom_conv1").set_value(2).run()  # another slider, upward
    assert len(asked[-1]["conv1"]) == 3 and len(asked[-1]["conv2"]) == 1
    n = len(asked)
    at.button(key="ko_reset").click().run()  # two sliders at once: no guess
    assert len(asked) == n


def test_the_live_charts_carry_their_own_look():
    """The charts redrawn at every slider step skip Streamlit's theming in the browser and bring its light look in
    their own template (transparent backgrounds, Streamlit's font)."""
    at = _page("zoo:digits-cnn")
    charts = {c.proto.id: c.proto for c in at.get("plotly_chart")}
    assert len(charts) == 3
    for proto in charts.values():
        spec = json.loads(proto.spec)
        assert proto.theme == "" and spec["layout"]["template"]["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)"
        assert "Source Sans Pro" in spec["layout"]["template"]["layout"]["font"]["family"]


def _page(model_id: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.session_state["dataset_name"] = "digits"
    at.session_state["model_id"] = model_id
    at.run()
    return at.switch_page("pages/knockout.py").run()


def test_model_without_hidden_layers_gets_a_message():
    at = _page("zoo:digits-linear")
    assert not at.exception and any("no hidden conv or dense layer" in i.value for i in at.info)


def test_study_runs_as_a_job_and_shows_the_table():
    at = _page("zoo:digits-cnn")
    at.slider(key="ko_max_k").set_value(3).run()
    at.button(key="ko_run").click().run()
    assert not at.exception
    job = jobs.list_jobs("knockout-study")[0]
    assert jobs.wait_job(job.id).state == "done", job.error
    at.run()
    assert not at.exception
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert list(table.index) == ["pg", "weight_l1", "taylor", "oracle", "random"]
    assert table.loc["oracle", "spearman_vs_oracle"] == 1.0
