"""Knockout: remove filters with sliders and watch the network fail live; knockout curves and ranking study."""

from __future__ import annotations

import json
from functools import partial

import pandas as pd
import streamlit as st

from ui import state
from ui.charts import live_figure
from ui.jobs_panel import latest_job
from ui.lookahead import AFTER_RERUN, LookAhead
from vizcore.core import jobs
from vizcore.explain.importance import StudyConfig, compare_rankings, pg_scores
from vizcore.core.layers import default_layers, knockable_layers
from vizcore.explain.knockout import (KnockoutEvaluator, class_images, eval_subset, format_filters, parse_filters,
                                      score_mask)
from vizcore.plots.common import confusion_heatmap
from vizcore.plots.knockout import class_accuracy_bars, filter_score_bars, knockout_curves

EVAL_SIZES = {"500 images": 500, "2,000 images": 2000, "whole test set": 0}

st.header("Knockout")
st.caption("Switch filters off and watch the network break, as if it were damaged live (seed 002 section 4.2). "
           "A knockout is a mask applied during the call: the model itself is never changed.")

ds, entry, model = state.require()

widths = knockable_layers(model)
if not widths:
    st.info(f"{entry.id} has no hidden conv or dense layer whose filters could be knocked out: "
            "pick a model with hidden layers (a cnn or an mlp) in the sidebar.")
    st.stop()

_, mtime = state.model_key(entry)


@st.cache_resource(max_entries=4, show_spinner="Caching the evaluation set's activations…")
def evaluator(model_id: str, mtime: float, dataset: str, n_eval: int) -> KnockoutEvaluator:
    d = state.get_dataset(dataset)
    x, y = eval_subset(d.test_x, d.test_y, n_eval or None)
    return KnockoutEvaluator(state.get_model(model_id, mtime), x, y, d.num_classes)


@st.cache_data(max_entries=64, show_spinner="Scoring filters by prediction gradient…")
def class_pg(model_id: str, mtime: float, dataset: str, target: int) -> dict[str, list[float]]:
    d, m = state.get_dataset(dataset), state.get_model(model_id, mtime)
    x, _ = class_images(d.train_x, d.train_y, target)
    return {k: v.tolist() for k, v in pg_scores(m, x, target, list(knockable_layers(m))).items()}


c1, c2 = st.columns([2, 1])
state.new_classes("ko_class", ds.class_names, 0)
target = c1.selectbox("Class", range(ds.num_classes), format_func=lambda i: ds.class_names[i], key="ko_class")
n_eval = EVAL_SIZES[c2.selectbox("Evaluate on", list(EVAL_SIZES), index=1, key="ko_n_eval",
                                 help="a fixed random subset of the test set (the CLI's --n-eval uses the same)")]
ev = evaluator(entry.id, mtime, ds.name, n_eval)
scores = class_pg(entry.id, mtime, ds.name, target)
live, curves = st.tabs(["Live knockout", "Knockout curves"])


def reset() -> None:
    for layer in widths:
        st.session_state[f"ko_top_{layer}"] = st.session_state[f"ko_bottom_{layer}"] = 0
    st.session_state["ko_extra"] = []


def slider_values() -> dict[tuple[str, str], int]:
    """{(layer, "top" or "bottom"): k} as the sliders stand."""
    return {(layer, end): st.session_state.get(f"ko_{end}_{layer}", 0) for layer in widths for end in ("top", "bottom")}


def mask_of(values: dict[tuple[str, str], int]) -> dict[str, list[int]]:
    """Union of the per-layer top-k / bottom-k by PG and the hand-picked filters."""
    top = {layer: values[layer, "top"] for layer in widths}
    bottom = {layer: values[layer, "bottom"] for layer in widths}
    extra = parse_filters(",".join(st.session_state.get("ko_extra", [])))
    return score_mask({layer: scores[layer] for layer in widths}, top, bottom, extra)


def ahead_values(values: dict[tuple[str, str], int]) -> list[dict[tuple[str, str], int]]:
    """The slider positions a person probably asks for next: one more step in the direction of the slider that just
    moved; when no single slider moved (the page opens, a reset, another class), one step either way of each
    slider, in the page's order (the first step of a slider is then ready too)."""
    last, st.session_state["_ko_last"] = st.session_state.get("_ko_last"), values
    moved = [k for k in values if last is not None and values[k] != last.get(k)]
    if len(moved) == 1:
        k = moved[0]
        steps = [(k, values[k] + (1 if values[k] > last[k] else -1))]
    else:
        steps = [(k, values[k] + d) for k in values for d in (1, -1)]
    return [values | {k: v} for k, v in steps if 0 <= v <= widths[k[0]]]


def ahead_key(mask: dict[str, list[int]]) -> tuple:
    """A knockout's key for the look-ahead: the evaluator it runs on and the mask."""
    return entry.id, mtime, n_eval, tuple((layer, tuple(idx)) for layer, idx in mask.items())


@state.fragment
def live_panel() -> None:
    st.markdown(f"**Remove filters by their PG score for class *{ds.class_names[target]}*** "
                "(top-k = most important first, bottom-k = least important first)")
    for layer, width in widths.items():
        a, b, c = st.columns([1, 3, 3])
        a.markdown(f"`{layer}`  \n{width} {'filters' if layer in default_layers(model) else 'units'}")
        b.slider("top-k", 0, width, key=f"ko_top_{layer}", help=f"knock out the k highest-PG filters of {layer}")
        c.slider("bottom-k", 0, width, key=f"ko_bottom_{layer}", help=f"knock out the k lowest-PG filters of {layer}")
    options = [f"{layer}:{i}" for layer, w in widths.items() for i in range(w)]
    st.multiselect("Also knock out these filters", options, key="ko_extra", placeholder="layer:filter")
    st.button("Reset (no knockout)", on_click=reset, key="ko_reset")

    values = slider_values()
    mask = mask_of(values)
    state.share_knockout(entry, mask)  # Prediction gradients greys these out
    ahead = st.session_state.setdefault("_ko_ahead", LookAhead())
    base, knocked = ev.evaluate({}), ahead.take(ahead_key(mask)) or ev.evaluate(mask)
    n = sum(len(v) for v in mask.values())
    m1, m2, m3 = st.columns(3)
    m1.metric(f"Accuracy on {ds.class_names[target]}", f"{knocked.class_accuracy[target]:.1%}",
              f"{knocked.class_accuracy[target] - base.class_accuracy[target]:+.1%}")
    m2.metric("Overall accuracy", f"{knocked.accuracy:.1%}", f"{knocked.accuracy - base.accuracy:+.1%}")
    m3.metric("Filters knocked out", n, help=format_filters(mask) or "none")
    note, switch = st.columns([4, 1])
    note.caption(f"on {len(ev.y):,} test images · mask `{format_filters(mask) or 'none'}`")
    hover = switch.toggle("Hover values", key="ko_hover", help="Draw the charts below as interactive charts: hover "
                          "shows each filter's score, each class's accuracy and each cell's change. Pictures redraw "
                          "faster at every slider step.")
    live_figure(st, filter_score_bars(scores, mask), "ko_scores_chart", hover, 960)
    l, r = st.columns(2)
    live_figure(l, class_accuracy_bars(base.class_accuracy, knocked.class_accuracy, ds.class_names, target),
                "ko_acc_chart", hover, 480)
    live_figure(r, confusion_heatmap(knocked.confusion - base.confusion, ds.class_names,
                                     "Confusion change (knocked − intact)", diverging=True), "ko_conf_chart", hover, 480)
    # worked out while the person looks, ready for their next step
    ahead.start([(ahead_key(m), partial(ev.evaluate, m, ahead.unwanted)) for m in map(mask_of, ahead_values(values))],
                after=AFTER_RERUN)


def study_config(max_k: int) -> dict:
    cfg = StudyConfig(target=target, max_k=max_k, layers=tuple(default_layers(model))).to_dict()
    return json.loads(json.dumps(cfg | {"model": entry.id, "mtime": mtime, "dataset": ds.name, "n_eval": n_eval}))


def curves_panel() -> None:
    st.markdown("Rank the filters of every conv layer for the class, then knock them out cumulatively: highest-"
                "first vs lowest-first (seed 002 Figures 4.1, 4.2), against random orders and against other "
                "importance measures. The **oracle** is each filter's own measured accuracy drop.")
    max_k = st.slider("Knock out up to K filters", 2, sum(widths[n] for n in default_layers(model)),
                      min(20, sum(widths[n] for n in default_layers(model))), key="ko_max_k")
    cfg = study_config(max_k)

    def same_study(j: jobs.JobInfo) -> bool:
        return {k: j.config.get(k) for k in cfg} == cfg

    running = any(j.active for j in jobs.list_jobs("knockout-study") if same_study(j))
    if st.button("Run knockout study", type="primary", key="ko_run", disabled=running):
        study = StudyConfig.from_dict(cfg)
        d = state.get_dataset(cfg["dataset"])
        rx, ry = class_images(d.train_x, d.train_y, study.target, study.n_rank_images)
        jobs.start_job("knockout-study", f"Knockout study: {entry.id}, class {ds.class_names[target]}",
                       jobs.job_call(compare_rankings, model, ev, rx, ry, study), cfg)
    latest_job("knockout-study", show_study, match=same_study,
               empty="No study for this model, class and K yet: run one (it takes seconds to a few minutes).")


def show_study(done: jobs.JobInfo) -> None:
    res = done.result
    pg = [c for c in res["curves"] if c["label"].startswith("pg") or c["label"] == "random"]
    l, r = st.columns(2)
    l.plotly_chart(knockout_curves(pg, "class", f"Error on {ds.class_names[target]}"), key="ko_curve_class")
    r.plotly_chart(knockout_curves(pg, "overall", "Error on the whole evaluation set"), key="ko_curve_overall")
    st.markdown("**Is PG a good importance measure?** Spearman correlation of each ranking with the oracle, and "
                "the area under the class-error curve (mean error over k = 0..K; a good ranking has a high AUC "
                "highest-first and a low AUC lowest-first).")
    table = pd.DataFrame(res["table"]).set_index("ranking")
    st.dataframe(table.style.format("{:.3f}"), key="ko_table")
    with st.expander("Highest-first curves of every ranking"):
        hi = [c for c in res["curves"] if "highest" in c["label"] or c["label"] == "random"]
        st.plotly_chart(knockout_curves(hi, "class", f"Error on {ds.class_names[target]}"), key="ko_curve_all")


with live:
    live_panel()
with curves:
    curves_panel()
