"""AppTest for the Knockout page: a slider move shows the CLI's accuracy for the same mask; the study job."""

from __future__ import annotations

import base64
import json
import threading
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


def test_the_page_works_out_the_next_slider_step_ahead(monkeypatch):
    """A slider step plans the mask one more step on in its direction; opening the page, or a change that moves no
    single slider, plans one step either way of every slider, the first slider first."""
    from ui.lookahead import LookAhead

    planned = []
    real_start = LookAhead.start
    monkeypatch.setattr(LookAhead, "start", lambda self, jobs, after=0.0: planned.append([dict(k[-1]) for k, _ in jobs])
                        or real_start(self, jobs, after))
    at = _page("zoo:digits-cnn")
    layers = ["conv1", "conv2", "fc1"]  # digits cnn's; every slider is at 0, so it can only go up
    assert [{k: len(v) for k, v in m.items()} for m in planned[-1]] == [{layer: 1} for layer in layers for _ in "tb"]
    top, bottom = planned[-1][0]["conv1"], planned[-1][1]["conv1"]
    assert top != bottom  # the highest- and the lowest-PG filter
    at.slider(key="ko_top_conv2").set_value(1).run()
    at.slider(key="ko_top_conv2").set_value(2).run()
    assert not at.exception
    now = at.session_state["knockout_mask"]["conv2"]
    assert len(planned[-1]) == 1 and len(planned[-1][0]["conv2"]) == 3 and set(now) < set(planned[-1][0]["conv2"])
    at.slider(key="ko_top_conv2").set_value(1).run()  # back down: the step below, no filter
    assert planned[-1] == [{}]
    at.slider(key="ko_bottom_conv1").set_value(2).run()  # another slider, upward
    assert len(planned[-1]) == 1 and len(planned[-1][0]["conv1"]) == 3 and len(planned[-1][0]["conv2"]) == 1
    at.button(key="ko_reset").click().run()  # two sliders at once: every slider's next step again
    assert len(planned[-1]) == 6 and planned[-1][0] == {"conv1": top}


def test_the_first_slider_step_is_ready_before_it_is_asked_for(monkeypatch):
    """Opening the page works out the first step of each slider in the background, so the step itself computes no
    logits; what it shows is the evaluator's answer for that mask."""
    from vizcore.explain.knockout import KnockoutEvaluator

    at = _page("zoo:digits-cnn")
    assert at.session_state["_ko_ahead"].idle(120)
    computed, logits = [], KnockoutEvaluator.logits

    def counted(self, m, cancelled=None):
        if threading.current_thread().name != "vizcore-look-ahead":  # the page's run, not the next look-ahead
            computed.append(dict(m))
        return logits(self, m, cancelled)

    monkeypatch.setattr(KnockoutEvaluator, "logits", counted)
    at.slider(key="ko_top_fc1").set_value(1).run()
    assert not at.exception and computed == []
    mask = at.session_state["knockout_mask"]
    assert list(mask) == ["fc1"] and len(mask["fc1"]) == 1
    at.slider(key="ko_top_fc1").set_value(3).run()  # a jump of two: not planned, computed now
    assert len(computed) == 1 and len(computed[0]["fc1"]) == 3


def _svg(image) -> str:
    url = image.proto.imgs[0].url
    assert url.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(url.split(",", 1)[1]).decode()


def test_the_live_charts_are_pictures_and_hover_values_bring_the_charts():
    """By default the three charts redrawn at every slider step are server-made pictures (Plotly.js took about 190
    ms of Chromium's main thread a step for them) that say what the charts say; *Hover values* turns them into
    Plotly charts that skip Streamlit's theming in the browser and bring its light look in their own template."""
    at = _page("zoo:digits-cnn")
    at.slider(key="ko_top_conv2").set_value(4).run()
    assert not at.get("plotly_chart") and len(at.get("image")) == 3
    scores, accuracy, change = (_svg(i) for i in at.get("image"))
    assert scores.count('fill="crimson"') == 4  # the four knocked filters
    assert accuracy.count('fill="crimson"') == 10 + 1 and accuracy.count('fill="#b0b0b0"') == 10 + 1  # + legend
    assert "Confusion change" in change and ">predicted<" in change
    at.toggle(key="ko_hover").set_value(True).run()
    assert not at.exception and not at.get("image")
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
