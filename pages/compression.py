"""Compression: shrink a model by Tucker decomposition, watch it break class by class, repair it without data
(seed 004's experiment), and look at KegNet's generators."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from ui import state
from ui.jobs_panel import estimate_button, job_panel
from vizcore.distill import compression as comp
from vizcore.metrics import evaluate_model
from vizcore.plots.compression import approach_bars, generator_figure

st.title("Compression")
st.caption("Tucker-2 for convolutions and a low-rank factorization for dense layers shrink the model to the ratio "
           "you pick (parameters before / after). The compressed model (T) loses accuracy; it is then fine-tuned on "
           "data made without the training set: uniform or Gaussian noise, KegNet's generators (seed 004) or "
           "vizcore's best: for images the Student lab's default method, trained in the distillation engine from the "
           "compressed model; for tables KegNet's rows with Gaussian rows; in both, every hidden layer of the "
           "compressed model also learns the teacher's output at that layer (feature matching, '+hints'). Repairs "
           "are selected on synthetic data; the test set only scores them.")

ds, entry, model = state.require()
if entry.card.format == "torchscript" or not isinstance(model, torch.nn.Sequential):
    st.warning("Only models of vizcore's architectures can be compressed: a TorchScript model's layers cannot be "
               "rebuilt with factorized weights.")
    st.stop()

shrink_tab, repair_tab, kegnet_tab = st.tabs(["Shrink", "Repair without data", "KegNet's pictures"])


@st.cache_resource(show_spinner="Decomposing…", max_entries=8)
def compressed(model_id: str, mtime: float, dataset: str, ratio: float):
    """(T model, info, T's test report, original's test report) for one model, dataset and ratio; cached per
    process."""
    m = state.get_model(model_id, mtime)
    small, info = comp.compress_model(m, ratio=ratio)
    return small, info, evaluate_model(small, ds.test_x, ds.test_y, ds.class_names), \
        evaluate_model(m, ds.test_x, ds.test_y, ds.class_names)


with shrink_tab:
    ratio = st.slider("Compression ratio (parameters before / after)", 1.2, 16.0, 4.0, 0.1, key="cmp_ratio")
    try:
        small, info, t_rep, o_rep = compressed(*state.model_key(entry), ds.name, ratio)
    except comp.CompressionError as e:
        st.error(str(e))
        st.stop()
    a, b, c = st.columns(3)
    a.metric("Parameters", f"{info['params_after']:,}", f"-{info['params_before'] - info['params_after']:,}")
    b.metric("Ratio", f"{info['ratio']:.2f}x")
    c.metric("Test accuracy", f"{t_rep['accuracy']:.1%}", f"{t_rep['accuracy'] - o_rep['accuracy']:+.1%}")
    st.plotly_chart(approach_bars({"Original": [r["recall"] for r in o_rep["per_class"]],
                                   "T": [r["recall"] for r in t_rep["per_class"]]}, ds.class_names,
                                  "Accuracy per class before and after Tucker (no repair)"), use_container_width=True)
    st.dataframe(pd.DataFrame([{"layer": k, "ranks": ", ".join(map(str, v))} for k, v in info["ranks"].items()]),
                 hide_index=True)

with repair_tab:
    methods = st.multiselect("Repairs", ["uniform", "gaussian", "kegnet", "best"],
                             default=["uniform", "gaussian", "kegnet", "best"], key="cmp_methods",
                             format_func=lambda m: "T+vizcore's best" if m == "best" else comp.REPAIR_LABELS[m])
    defaults = comp.RepairConfig().for_input(ds.input_shape)  # a table's or an image's, as the CLI's
    state.follow_defaults(cmp_n=defaults.n, cmp_kn=defaults.kegnet_n, cmp_epochs=defaults.epochs,
                          cmp_kepochs=defaults.kegnet_epochs, cmp_ksteps=defaults.kegnet_steps)
    c1, c2, c3, c4, c5 = st.columns(5)
    n = int(c1.number_input("Synthetic inputs per repair", 200, 100_000, step=1000, key="cmp_n",
                            help="noise rows or images of T+Uniform, T+Gaussian and the best repair"))
    kn = int(c2.number_input("KegNet's inputs", 200, 100_000, step=1000, key="cmp_kn",
                             help="made by KegNet's generators, an equal share each: T+KegNet trains on them all"))
    epochs = int(c3.number_input("Fine-tuning epochs", 1, 500, key="cmp_epochs",
                                 help="on noise and on the best repair's inputs"))
    kepochs = int(c4.number_input("Epochs on KegNet's inputs", 1, 500, key="cmp_kepochs",
                                  help="the teacher is sure of KegNet's inputs: long fine-tuning on them alone pulls "
                                       "the student away from the real data"))
    ksteps = int(c5.number_input("KegNet steps per generator", 10, 50_000, step=100, key="cmp_ksteps"))
    engine_steps = None
    if not ds.is_tabular:
        state.follow_defaults(cmp_esteps=defaults.engine_steps)
        engine_steps = int(st.columns(4)[0].number_input(
            "Steps of the best repair", 10, 50_000, step=500, key="cmp_esteps",
            help=f"T+vizcore's best trains the compressed model in the distillation engine with the Student lab's "
                 f"default method ({defaults.best}: KegNet's images and a generator trained against the student) and "
                 f"feature matching"))
    real_select = st.checkbox(
        "Pick each repair's epoch on real validation data (the seed's protocol; NOT data-free)", key="cmp_real_select",
        help="KegNet's code keeps the epoch (the compressed start included) most accurate on a real validation "
             "split; vizcore's default judges them on synthetic inputs instead: the agreement with the teacher, or, "
             "for an image model's best repair, the closeness to its softmax on pairs of KegNet's images blended")
    save = st.checkbox("Save the last repaired model to the workspace", key="cmp_save")
    repair_config = comp.RepairConfig(n=n, kegnet_n=kn, epochs=epochs, kegnet_epochs=kepochs, kegnet_steps=ksteps,
                                      engine_steps=engine_steps, select="real" if real_select else "synthetic")
    go_at, estimate_at, estimate_info = st.columns([2, 1, 3])
    if go_at.button("Compress and repair in the background", type="primary", disabled=not methods, key="cmp_go"):
        name = f"{entry.card.name}-x{ratio:g}-{methods[-1]}" if save else None
        comp.start_compression_job(entry.id, dataset=ds.name, ratio=ratio, methods=tuple(methods),
                                   config=repair_config, save_as=name)
        st.rerun()

    def describe(est: dict[str, float]) -> str:
        parts = ", ".join(f"{comp.repair_label(m, ds.input_shape, repair_config)} {s / 60:.1f}" for m, s in est.items())
        return (f"Estimated {sum(est.values()) / 60:.1f} min on this machine ({parts} min; a short probe of each "
                "synthesis and of the fine-tuning).")

    estimate_button("cmp_estimate", (entry.id, ratio, tuple(methods), repair_config),
                    lambda: comp.estimate_repair_seconds(model, small, methods, repair_config,
                                                         input_shape=ds.input_shape,
                                                         class_names=list(ds.class_names), dataset=ds.name),
                    describe, estimate_at, estimate_info, disabled=not methods)

    def show(job) -> None:
        res = job.result or {}
        rows = res.get("rows", [])
        if not rows:
            return
        st.dataframe(pd.DataFrame([{"approach": r["approach"], "accuracy": f"{r['accuracy']:.2%}",
                                    "compression": f"{r['compression']:.2f}x", "seconds": r["seconds"]} for r in rows]),
                     hide_index=True)
        st.plotly_chart(approach_bars({r["approach"]: r["per_class_recall"] for r in rows}, res["class_names"]),
                        use_container_width=True, key=f"cmp-bars-{job.id}")
        if res.get("saved"):
            st.caption(f"Saved as `{res['saved']}`: pick it in the sidebar to open it on every page.")

    job_panel(comp.JOB_KIND, show)

with kegnet_tab:
    st.caption("KegNet trains generators that turn a class and a noise vector z into inputs the model classifies as "
               "that class. Below: each class at z = 0 and averaged over z, per generator, and a walk of the label "
               "from one class to another (seed 004's qualitative figures). For a table, each row is a generated "
               "feature vector in standard deviations.")
    k1, k2, k3 = st.columns(3)
    state.new_classes("kg_a", ds.class_names, 0)
    walk_a = k1.selectbox("Walk from class", range(ds.num_classes), format_func=lambda i: ds.class_names[i], key="kg_a")
    b = min(5, ds.num_classes - 1)
    walk_b = k2.selectbox("to class", range(ds.num_classes), index=0 if state.new_classes("kg_b", ds.class_names, b) else b,
                          format_func=lambda i: ds.class_names[i], key="kg_b")
    steps = int(k3.number_input("Steps per generator", 10, 20_000, 400, step=100, key="kg_steps"))
    if st.button("Train KegNet's generators in the background", key="kg_go"):
        comp.start_kegnet_pictures_job(entry.id, walk=(walk_a, walk_b), steps=steps)
        st.rerun()
    features = ds.feature_names if ds.is_tabular else None

    def show_pictures(job) -> None:
        res = job.result or {}
        if "zero" not in res:
            return
        view = st.radio("Show", ["z = 0", "averaged over z", "latent walk"], horizontal=True, key=f"kg-view-{job.id}")
        key = {"z = 0": "zero", "averaged over z": "mean", "latent walk": "walk"}[view]
        pics = torch.tensor(res[key])
        a, b = res["walk_classes"]
        names = ([f"{round(100 * w)}% {ds.class_names[b]}" for w in res["walk_weights"]] if key == "walk"
                 else list(ds.class_names))
        cols = st.columns(2) if features is not None else [st.container()]
        for g in range(len(pics)):
            with cols[g % len(cols)]:
                st.plotly_chart(generator_figure(pics[g], names, features, f"generator {g + 1}"),
                                use_container_width=True, key=f"kg-{job.id}-{key}-{g}")
        if key == "walk":
            st.caption(f"From {ds.class_names[a]} (left / top) to {ds.class_names[b]}, z = 0.")

    job_panel("kegnet-pictures", show_pictures, limit=2)
