"""Visualize: what the model "imagines" for each class, next to its output weights and the class average;
what any filter or unit responds to; downloads of everything (seed 003 sections 5, 7, 9; seed 000 3.3)."""

import pandas as pd
import streamlit as st
import torch

from ui import state
from ui.jobs_panel import job_panel
from vizcore.core import jobs
from vizcore.models import layer_table
from vizcore.core.layers import conv_layers, dense_layers, model_device
from vizcore.plots.common import image_grid, stretch_contrast
from vizcore.plots.visualize import (comparison_figure, grid_png, similarity_bars, softmax_bars,
                                     visualization_grid)
from vizcore.explain.interpretability import difficulty, judges_for, predictions
from vizcore.explain.visualize import (DEFAULT_PRESET, NPZ_NAME, PRESET_LABELS, PRESET_PER_CLASS, PRESETS,
                                       VisualizeConfig, Visualizations, bf16_is_fast, class_averages,
                                       filter_visualization, per_class_mean, preset, similarities, summary,
                                       visualization_job, weight_images)

JOB_KIND = "visualize"
SHOWN_PER_CLASS = 10

ds, entry, model = state.require()
st.title("Visualize")
st.caption("Class visualizations by gradient ascent: each picture is pushed until the model is sure of its class. "
           "*Recognizable* (the default) adds image priors from the feature-visualization literature (a smooth, "
           "decorrelated image behind a sigmoid, seen through random shifts, zooms and rotations), so the pictures "
           "look like the class to people and to other models; *What the seeds did* is the plain pixel ascent of "
           "seeds 003 / 000. A red frame marks a picture the model does not put in its class (or that missed T).")
names = list(entry.card.class_names)
shape = tuple(entry.card.input_shape)
FAST = bf16_is_fast(model_device(model))

if ds.is_tabular:  # the "image" of a table row: a bar per named feature
    from dataclasses import replace

    from vizcore.explain.visualize import TABLE_VISUALIZE, class_visualizations
    from vizcore.plots.compression import feature_bars

    st.caption("For a table, a class visualization is a feature row pushed from the training mean (0 after "
               "standardization) until the model is sure of the class; bars are in standard deviations.")
    c1, c2 = st.columns([3, 1])
    picked = c1.multiselect("Classes", names, default=None if state.new_classes("viz_tab_classes", names, names[:3])
                            else names[:3], key="viz_tab_classes")
    threshold = c2.slider("Threshold T", 0.5, 0.999, 0.99, key="viz_tab_T")

    @st.cache_data(show_spinner="Ascending…")
    def table_visualizations(model_id: str, mtime: float, t: float):
        vis = class_visualizations(model, range(len(names)), 1, replace(TABLE_VISUALIZE, threshold=t), input_shape=shape)
        return vis.images, vis.probs

    rows, probs = table_visualizations(*state.model_key(entry), threshold)
    idx = [names.index(p) for p in picked]
    if idx:
        st.plotly_chart(feature_bars(rows[idx], ds.feature_names, [f"{names[i]} ({probs[i, i]:.0%})" for i in idx],
                                     "Class visualizations"), key="viz_tab_bars")
        means = class_averages(ds.train_x, ds.train_y, ds.num_classes)
        st.plotly_chart(feature_bars(means[idx], ds.feature_names, [names[i] for i in idx],
                                     "Class averages of the training rows"), key="viz_tab_means")
    st.info("Filter visualizations and weight images need images; this model reads feature rows.")
    st.stop()


@st.cache_data(show_spinner=False)
def load_visualizations(path: str, mtime: float) -> Visualizations:
    return Visualizations.from_npz(path)


@st.cache_data(show_spinner="Averaging the training images…")
def averages(dataset: str) -> torch.Tensor:
    d = state.get_dataset(dataset)
    return class_averages(d.train_x, d.train_y, d.num_classes)


@st.cache_data(show_spinner="Computing weight images…")
def weights(model_id: str, mtime: float, dataset: str, at: str):
    return weight_images(state.get_model(model_id, mtime), state.get_dataset(dataset), at=at)


def latest_done() -> jobs.JobInfo | None:
    """The newest finished run for this model, read from the workspace (so it survives a reload)."""
    done = [j for j in jobs.list_jobs(JOB_KIND) if j.config.get("model") == entry.id and j.state == "done"]
    return done[0] if done else None


# widget key -> VisualizeConfig field, for the presets
FIELDS = {"viz_start": "start", "viz_objective": "objective", "viz_steps": "steps", "viz_lr": "lr", "viz_l2": "l2",
          "viz_tv": "tv", "viz_pixel": "pixel", "viz_param": "param", "viz_jitter": "jitter", "viz_scale": "scale",
          "viz_rotate": "rotate", "viz_blur": "blur", "viz_ar": "attract_repel", "viz_optimizer": "optimizer"}


def apply_preset() -> None:
    """Fill the form with the chosen preset (the widgets keep any later edit)."""
    chosen = st.session_state.get("viz_preset", DEFAULT_PRESET)
    cfg = preset(chosen, shape)
    for key, name in FIELDS.items():
        st.session_state[key] = getattr(cfg, name)
    st.session_state["viz_tmode"] = "fixed" if cfg.threshold is not None else "none"
    st.session_state["viz_per_class"] = PRESET_PER_CLASS[chosen]


def options_form() -> tuple[list[int], int, VisualizeConfig] | None:
    if "viz_start" not in st.session_state:
        apply_preset()
    st.radio("Preset", PRESETS, PRESETS.index(DEFAULT_PRESET), format_func=PRESET_LABELS.get, key="viz_preset",
             horizontal=True,
             on_change=apply_preset, help="Sets every option below; change any of them afterwards.")
    with st.form("viz_options", border=True):
        c = st.columns(4)
        picked = c[0].multiselect("Classes", names, default=None if state.new_classes("viz_classes", names, names)
                                  else names, key="viz_classes")
        per_class = c[1].number_input("Samples per class", 1, 200, key="viz_per_class")
        start = c[2].selectbox("Start", ["average", "blank", "grey", "noise", "mean"], key="viz_start",
                               help="average: the mean training picture of all classes together (no class hint); "
                                    "blank: all-zero image (seed 003); grey: 0.5 everywhere, so pixels can also "
                                    "darken; noise: uniform; mean: the class's own average")
        objective = c[3].selectbox("Objective", ["logit", "logprob"], key="viz_objective",
                                   help="pre-softmax logit of the class (seed 003) or its log-probability")
        c = st.columns(4)
        mode = c[0].radio("Threshold T", ["fixed", "random range", "none"], key="viz_tmode", horizontal=True,
                          help="stop each picture once its class's softmax passes T; none: run every step")
        t = c[1].slider("T (fixed)", 0.5, 0.999, 0.99, key="viz_t")
        t_range = c[2].slider("T range", 0.5, 0.999, (0.90, 0.99), key="viz_trange")
        steps = c[3].number_input("Step cap", 1, 5000, key="viz_steps")
        with st.expander("Image priors, regularizers, diversity and speed"):
            c = st.columns(4)
            param = c[0].selectbox("Parameterization", ["fft", "pixel"], key="viz_param",
                                   help="fft: the picture's Fourier coefficients, scaled so coarse shapes learn as "
                                        "fast as fine detail (lucent's decorrelated image; needs the sigmoid pixel "
                                        "range); pixel: the pixels themselves")
            pixel = c[1].selectbox("Pixel range", ["sigmoid", "clamp"], key="viz_pixel")
            lr = c[2].number_input("Learning rate", 0.0001, 10.0, format="%.4f", key="viz_lr")
            optimizer = c[3].selectbox("Optimizer", ["adam", "sgd"], key="viz_optimizer",
                                       help="adam moves every pixel at a similar rate; sgd is plain gradient ascent")
            c = st.columns(4)
            jit = c[0].number_input("Jitter (pixels)", 0, 16, key="viz_jitter",
                                    help="each step the model sees every picture shifted by up to this much")
            scale = c[1].slider("Random zoom (±)", 0.0, 0.5, key="viz_scale")
            rotate = c[2].slider("Random rotation (± degrees)", 0.0, 45.0, key="viz_rotate")
            blur = c[3].slider("Blur (pixel parameterization)", 0.0, 1.0, key="viz_blur")
            c = st.columns(4)
            l2w = c[0].number_input("L2 penalty", 0.0, 10.0, format="%.4f", key="viz_l2")
            tv = c[1].number_input("Total variation", 0.0, 10.0, format="%.4f", key="viz_tv")
            ar = c[2].checkbox("Attraction–repulsion pre-movement", key="viz_ar",
                               help="seed 000: move each sample toward or away from random classes first")
            seed = c[3].number_input("Seed", 0, 10**6, 0, key="viz_seed")
            fast = st.checkbox("Fast arithmetic (bfloat16)", value=FAST, key="viz_bf16",
                               help="Runs the ascent in bfloat16: about twice as fast where the processor has bf16 "
                                    f"units ({'this one has' if FAST else 'this one has not'}). Whether a picture "
                                    "reached T and the scores shown are still computed in float32.")
        go = st.form_submit_button("Generate", type="primary", key="viz_generate")
    if not go:
        return None
    if not picked:
        st.error("Choose at least one class.")
        return None
    try:
        cfg = VisualizeConfig(start=start, objective=objective, steps=int(steps), lr=float(lr), pixel=pixel,
                              optimizer=optimizer, param=param, scale=float(scale), rotate=float(rotate),
                              l2=float(l2w), tv=float(tv), jitter=int(jit), blur=float(blur), attract_repel=ar,
                              seed=int(seed), threshold=t if mode == "fixed" else None,
                              precision="bfloat16" if fast else "float32",
                              threshold_range=tuple(t_range) if mode == "random range" else None)
    except ValueError as e:
        st.error(str(e))
        return None
    return [names.index(n) for n in picked], int(per_class), cfg


def start(classes: list[int], per_class: int, cfg: VisualizeConfig) -> None:
    means = averages(ds.name) if cfg.start in ("mean", "average") else None
    fn = visualization_job(model, classes, per_class, cfg, input_shape=shape, class_names=names, class_means=means,
                           judges=lambda **kw: judges_for(entry.id, ds, **kw))
    jobs.start_job(JOB_KIND, f"{entry.id}: {per_class} per class", fn,
                          {"model": entry.id, "classes": classes, "per_class": per_class, **cfg.to_dict()})


def display(images: torch.Tensor) -> torch.Tensor:
    """The pictures as shown: contrast-stretched unless the user switched that off."""
    return stretch_contrast(images) if st.session_state.get("viz_stretch", True) else images


def job_line(job: jobs.JobInfo) -> None:
    r = job.result
    st.caption(f"{r.get('reached', 0)} of {r.get('n', 0)} reached T · {job.config.get('model')}")


@state.fragment
def class_panel(vis: Visualizations) -> None:
    classes = sorted(set(vis.labels.tolist()))
    c = st.columns([2, 1])
    state.new_classes("viz_panel_class", [names[i] for i in classes], classes[0])
    k = c[0].selectbox("Class", classes, format_func=lambda i: names[i], key="viz_panel_class")
    idx = (vis.labels == k).nonzero()[:, 0]
    i = c[1].number_input("Sample", 0, len(idx) - 1, 0, key="viz_panel_sample") if len(idx) > 1 else 0
    j = int(idx[i])
    left, right = st.columns([1, 2])
    with left:
        st.plotly_chart(visualization_grid(display(vis.images[j:j + 1]), vis.labels[j:j + 1], vis.probs[j:j + 1],
                                           vis.reached[j:j + 1], names, size=260), key="viz_panel_image")
        st.caption(f"{'reached' if vis.reached[j] else 'did NOT reach'} T = {float(vis.thresholds[j]):.3f} "
                   f"after {int(vis.steps[j])} steps")
    with right:
        t = float(vis.thresholds[j]) or None
        st.plotly_chart(softmax_bars(vis.probs[j], names, k, t), key="viz_panel_softmax")


def recognizability_line(rec: dict | None) -> None:
    """How many pictures independent judges (classifiers trained on real images) put in their class."""
    if not rec:
        return
    if rec["mean"] is None:
        st.info(f"How recognizable: {rec['judges']}.")
        return
    per = ", ".join(f"{k.removeprefix('zoo:')} {v:.0%}" for k, v in rec["per_judge"].items())
    st.caption(f"**Recognizable**: independent judges label {rec['mean']:.0%} of the pictures as their class on average "
               f"(worst judge {rec['min']:.0%}; {per}). {rec['judges'].capitalize()}; none of them helped make the "
               "pictures.")


def results(vis: Visualizations, job: jobs.JobInfo) -> None:
    rows = summary(vis, names)
    rec = job.result.get("recognizability")
    c = st.columns(4)
    c[0].metric("Visualizations", len(vis.labels))
    c[1].metric("Reached T" if float(vis.thresholds.max()) > 0 else "In their class",
                f"{int(vis.reached.sum())} / {len(vis.labels)}")
    c[2].metric("Mean target probability", f"{float(vis.probs.gather(1, vis.labels[:, None]).mean()):.3f}")
    c[3].metric("Recognized by other models", "–" if not rec or rec["mean"] is None else f"{rec['mean']:.0%}",
                help="share of the pictures that classifiers trained on real images (not the one visualized) "
                     "put in the pictured class, averaged over those judges")
    recognizability_line(rec)
    shown = torch.cat([(vis.labels == k).nonzero()[:SHOWN_PER_CLASS, 0] for k in sorted(set(vis.labels.tolist()))])
    per = max(int((vis.labels == vis.labels[0]).sum()), 1)
    st.toggle("Stretch contrast for display", value=True, key="viz_stretch",
              help="Rescale each picture to use the full grey range; the downloads keep the raw pixels.")
    st.plotly_chart(visualization_grid(display(vis.images[shown]), vis.labels[shown], vis.probs[shown], vis.reached[shown],
                                       names, cols=min(per, SHOWN_PER_CLASS) if per > 1 else 10),
                    key="viz_grid")
    if per > SHOWN_PER_CLASS:
        st.caption(f"showing the first {SHOWN_PER_CLASS} of {per} samples per class; the downloads hold all")
    st.dataframe(pd.DataFrame(rows).drop(columns=["index"]), hide_index=True, key="viz_summary",
                 column_config={"diversity": st.column_config.NumberColumn(
                     help="mean pairwise RMS pixel distance between a class's samples; near 0: they collapsed")})
    class_panel(vis)
    c = st.columns(2)
    c[0].download_button("Download PNG grid", grid_png(vis.images, cols=per if per > 1 else 10),
                         file_name="visualizations.png", mime="image/png", key="viz_dl_png")
    c[1].download_button("Download .npz (images, labels, logits, softmax, config)",
                         (job.dir / NPZ_NAME).read_bytes(), file_name=NPZ_NAME, key="viz_dl_npz")


def compare(vis: Visualizations | None) -> None:
    at = "blank"
    w = weights(*state.model_key(entry), ds.name, at)
    if w.kind != "weights":
        at = st.radio("Effective weights", ["blank", "data"], horizontal=True, key="viz_weights_at",
                      format_func=lambda a: {"blank": "gradient at the blank image",
                                             "data": "gradient averaged over test images"}[a])
        w = weights(*state.model_key(entry), ds.name, at)
        st.info(f"**{entry.card.arch}** has hidden layers, so there is no single weight row per class: "
                f"the middle column shows {w.label}.")
    avg = averages(ds.name)
    if vis is None or sorted(set(vis.labels.tolist())) != list(range(len(names))):
        st.info("Generate visualizations of every class on the first tab to compare them here.")
        return
    v = per_class_mean(vis.images, vis.labels, range(len(names)))
    sims = similarities(v, w.images, avg)
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(comparison_figure(v, w.images, avg, names, w.label), key="viz_compare")
    with right:
        st.plotly_chart(similarity_bars(sims, names), key="viz_similarity")
        st.dataframe(pd.DataFrame({"class": names, **sims}), hide_index=True, key="viz_similarity_table")
        st.caption("Visualizations of several samples per class are averaged first. Weight images are signed "
                   "(red positive, blue negative).")


def filters() -> None:
    layers = conv_layers(model) + dense_layers(model)[:-1]
    if not layers:
        st.info("This model has no hidden conv or dense layer to visualize; see the weight images instead.")
        return
    c = st.columns([1, 2, 1, 1])
    layer = c[0].selectbox("Layer", layers, key="viz_layer")
    width = {r["name"]: r["output_shape"][0] for r in layer_table(model, shape)}[layer]
    chans = c[1].multiselect("Channels / units", list(range(width)), default=list(range(min(8, width))),
                             key=f"viz_channels_{layer}")
    steps = c[2].number_input("Steps", 1, 2000, 200, key="viz_filter_steps")
    start_kind = c[3].selectbox("Start", ["noise", "grey", "blank"], key="viz_filter_start")
    if st.button("Visualize filters", type="primary", key="viz_filter_go"):
        if not chans:
            st.error("Choose at least one channel.")
            return
        with st.spinner(f"Maximizing {len(chans)} channels of {layer}…"):
            st.session_state["viz_filters"] = filter_visualization(
                model, layer, chans, VisualizeConfig(start=start_kind, steps=int(steps), threshold=None,
                                                 precision="bfloat16" if FAST else "float32"),
                input_shape=shape)
    fv = st.session_state.get("viz_filters")
    if fv is not None and fv.layer == layer:
        titles = [f"#{int(c)}: {float(a):.2f}" for c, a in zip(fv.channels, fv.activation)]
        st.plotly_chart(image_grid(fv.images, titles=titles, cols=8, size=140), key="viz_filter_grid")
        st.caption("Title: channel and the mean activation its picture reaches.")


@st.cache_resource(show_spinner="Loading the other models of this dataset…")
def zoo_members(teacher_id: str, dataset: str) -> dict:
    """The dataset's other zoo models (no quick judge here: that runs inside the Generate job)."""
    return judges_for(teacher_id, state.get_dataset(dataset), quick=False)[0]


@state.fragment
def interpretability_panel(vis: Visualizations) -> None:
    """Seed 000 section 4.2: fooling-example and hidden-message rates of these pictures and of real test images."""
    with st.expander("Fooling examples and hidden messages (seed 000, Definitions 4.1 and 4.2)"):
        members = zoo_members(entry.id, ds.name)
        if not members:
            st.info(f"No other zoo model was trained on {ds.name}, so there is no set S of other classifiers to "
                    "compare with; `python -m vizcore interpretability` trains them.")
            return
        hs = st.selectbox("h_s (the classifier that should read the teacher's message)", ["none", *members],
                          key="viz_hs", help="seed 000 uses a network of the teacher's own architecture")
        S = {k: m for k, m in members.items() if k != hs}
        if not S:
            st.info("S needs at least one classifier other than h_s.")
            return
        real = ds.test_x[torch.randperm(len(ds.test_x), generator=torch.Generator().manual_seed(0))[:1000]]
        rows = []
        for label, images in (("real test images", real), ("these visualizations", vis.images)):
            h = predictions({"h": model}, images)["h"]
            answers = predictions(S, images)
            r = difficulty(h, answers, predictions({hs: members[hs]}, images)[hs] if hs != "none" else None)
            rows.append({"set": label, "images": r["n"],
                         **{f"{k.removeprefix('zoo:')} agrees": v for k, v in r["agreement"].items()},
                         "fooling examples": r["fooling_rate"], "hidden messages": r.get("hidden_rate")})
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="viz_interp_table")
        st.caption("A **fooling example** is a picture on which more than half of S name a class other than the "
                   "teacher's; a **hidden message** is a fooling example on which h_s names the teacher's class. "
                   "`python -m vizcore interpretability --model MODEL` adds generator AM with and without Loss_2 "
                   "(seed 000 Tables 3 and 4).")


tab_classes, tab_compare, tab_filters = st.tabs(["Class visualizations", "Visualization · weights · average",
                                                  "Filters & units"])
with tab_classes:
    picked = options_form()
    if picked:
        start(*picked)
    job_panel(JOB_KIND, job_line, limit=3)
    job = latest_done()
    vis = None
    if job is not None:
        path = job.dir / NPZ_NAME
        vis = load_visualizations(str(path), path.stat().st_mtime)
        results(vis, job)
        interpretability_panel(vis)
with tab_compare:
    compare(vis)
with tab_filters:
    filters()
