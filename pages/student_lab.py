"""Student lab: make a synthetic dataset from the teacher alone, train students on it, compare class by class."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import streamlit as st

from ui import state
from ui.jobs_panel import estimate_button, job_panel
from vizcore.distill import presets, protocol
from vizcore.distill.methods import (
    BUDGET_RULE,
    DEFAULT_ENGINE,
    DEFAULT_METHOD,
    DEFAULT_N,
    METHOD_DEFAULTS,
    default_steps,
    estimate_seconds,
    is_online,
    needs_engine,
)
from vizcore.distill.seed_tables import SEED000_ARCH, SEED_PRESETS, preset_config, seed_rows
from vizcore.distill.students import SKLEARN_STUDENTS, STUDENT_KINDS, StudentConfig
from vizcore.distill.synthesis import KEGNET_METHODS, METHOD_LABELS, SynthesisConfig
from vizcore.plots.common import confusion_heatmap
from vizcore.plots.students import (
    accuracy_vs_size,
    agreement_curves,
    f1_curves,
    synthetic_gallery,
)

st.title("Student lab")
st.caption("Generate images from the teacher alone, train new models (students) on them, and compare them with the "
           "teacher and with the same student trained on real images. Students are selected on synthetic data; "
           "the real test set is read once, for the final report.")

ds, entry, model = state.require()

new_tab, runs_tab = st.tabs(["New run", "Runs and comparison"])


def synthesis_options(method: str) -> dict:
    """The options of one method, read from widgets."""
    opts: dict = {}
    c1, c2, c3 = st.columns(3)
    opts["n"] = int(c1.number_input("Images kept (an online method's memory bank)" if is_online(method) else
                                    "Synthetic images", 10, 200_000, DEFAULT_N, step=500, key="sl_n"))
    opts["seed"] = int(c2.number_input("Seed", 0, 10_000, 0, key="sl_seed"))
    if method in ("mixed-am", "generator-am", "pixel-am"):
        d = {"threshold": 0.99, "threshold_max": None, "max_steps": 150, "pre_steps": 30,
             **METHOD_DEFAULTS.get(method, {})}  # the measured setting of each method
        opts["threshold"] = c3.slider("Threshold T", 0.5, 0.999, d["threshold"], key=f"sl_T_{method}")
        if st.checkbox("Random T in [T, 0.99] per " + ("image" if method == "pixel-am" else "generator batch")
                       + " (seed 000 appendix A)", d["threshold_max"] is not None, key=f"sl_randT_{method}"):
            opts["threshold"] = min(opts["threshold"], 0.9)
            opts["threshold_max"] = 0.99
        a, b = st.columns(2)
        opts["max_steps"] = int(a.number_input("Max ascent steps" + ("" if method == "pixel-am" else " per generator"),
                                               5, 2000, d["max_steps"], key=f"sl_steps_{method}"))
        opts["pre_steps"] = int(b.number_input("Max attraction-repulsion steps", 0, 500, d["pre_steps"],
                                               key=f"sl_pre_{method}"))
    if method == "mixed-am":
        st.caption("T and the steps above drive the generator half; the pixel half starts from a blank image with "
                   "T drawn per image in 0.5–0.99 (the setting measured best).")
    if method == "pixel-am":
        opts["start"] = st.radio("Start", ["blank", "noise"], horizontal=True, key="sl_start_image",
                                 help="blank (seed 003): pictures keep the dark background of real images and teach "
                                      "pixel-based students far better; noise: textured pictures")
    if method == "generator-am":
        opts["loss2"] = st.checkbox("Loss_2: keep features away from real images (seed 000 4.1.2)", key="sl_loss2")
        if opts["loss2"]:
            st.warning("Loss_2 reads the real training images of each class, so this set is **not data-free**.")
    elif method == "online":
        st.caption("Trains online, the teacher in the loop: a generator starting from blank pictures makes the images "
                   "that the student currently gets wrong (DFAD), kept confident and spread over every class "
                   "(DAFL); the student learns the teacher's logits on them and on replayed past images and, when both "
                   "are CNNs, the teacher's attention maps (ZSKT). The budget "
                   "below is the whole run: there is no separate synthesis step.")
    elif method == "dfad":
        st.caption("DFAD trains online: a generator makes the images that the student currently gets wrong, while "
                   "the student learns the teacher's logits on them (the budget below is the game's length).")
    elif method == "kegnet-online":
        st.caption("KegNet's generators (seed 004) first make a fixed set; then a generator in the loop, starting from "
                   "blank pictures, makes the images the student currently gets wrong (DFAD), kept confident and "
                   "spread over every class (DAFL). The student learns the teacher's logits on fresh, replayed and "
                   "KegNet images and, when both are CNNs, where the teacher looks in each picture (its attention "
                   "maps: attention transfer, ZSKT); the budget below is the training.")
    if method in KEGNET_METHODS:
        steps = METHOD_DEFAULTS.get(method, {}).get("train_steps", SynthesisConfig.train_steps)
        opts["train_steps"] = int(c3.number_input("Training steps per generator", 10, 20_000, steps,
                                                  key=f"sl_train_steps_{method}"))
        a, b = st.columns(2)
        opts["generators"] = int(a.number_input("Generators", 1, 10, 5, key="sl_gens"))
        opts["beta"] = b.number_input("Diversity weight beta (blank: paper default)", 0.0, 10.0, value=None, key="sl_beta")
    elif method == "class-averages":
        st.warning("Class averages are computed from the real training images: this set is **not data-free**.")
    return opts


def estimate_time(key: str, cfg, button_at, info_at, disabled: bool = False) -> None:
    """An *Estimate time* button for run ``cfg``; its estimate stays shown while the settings stay the same."""
    estimate_button(key, cfg, lambda: estimate_seconds(cfg, model),
                    lambda s: f"Estimated {s / 60:.1f} min on this machine (a short probe of synthesis and training).",
                    button_at, info_at, disabled)


with new_tab:
    st.markdown(f"**Teacher:** `{entry.id}` ({entry.card.arch}, test accuracy on its card "
                f"{entry.card.metrics.get('accuracy', 0):.1%}) · **dataset:** {ds.name}")
    # a table's teacher: the methods that make feature rows (KegNet's dense generators, seed 004, alone or before the
    # default's row generator in the loop)
    methods = list(KEGNET_METHODS) if ds.is_tabular else list(METHOD_LABELS)
    method = st.selectbox("Synthesis method", methods, methods.index(DEFAULT_METHOD) if DEFAULT_METHOD in methods else 0,
                          format_func=METHOD_LABELS.get, key="sl_method")
    kinds = [k for k in STUDENT_KINDS if not ds.is_tabular or not k.startswith(("cnn", "lenet"))]
    opts = synthesis_options(method)
    st.subheader("Students")
    s1, s2, s3 = st.columns(3)
    archs = s1.multiselect("Architectures", kinds, default=[entry.card.arch] if entry.card.arch in kinds else kinds[:1],
                           key="sl_students", help="CNN_ID = the teacher's architecture; cnn_s smaller, cnn_l larger; "
                                                   "svm and rf are scikit-learn models (hard labels)")
    labels = s2.radio("Labels", ["soft", "hard"], horizontal=True, key="sl_labels",
                      help="soft: the teacher's softmax (KL); hard: its argmax")
    # a generator in the loop lives inside the engine: there is nothing to switch off
    use_engine = needs_engine(method) or st.toggle(
        "Engine: the teacher's logits on every batch (augmented, relabelled; the default)", True, key="sl_engine",
        help="off: students learn the stored labels for a number of epochs, as the seeds do")
    if use_engine:
        state.follow_defaults(sl_budget=default_steps(ds.input_shape))  # a teacher with another default budget
        steps = int(s3.number_input("Budget: engine steps per student", 10, 100_000, step=500, key="sl_budget",
                                    help=f"default: {BUDGET_RULE}"))
        engine = replace(DEFAULT_ENGINE, steps=steps)
        epochs = 20
    else:
        engine = None
        epochs = int(s3.number_input("Epochs", 1, 500, 20, key="sl_epochs"))
    relabel = not use_engine and not ds.is_tabular and st.checkbox("Teacher in the loop: rescale each batch's brightness and let the teacher label it afresh",
                          value=method == "pixel-am", key=f"sl_relabel_{method}",
                          help="data-free (only the teacher and the synthetic images). It lifts students of the dim "
                               "pixel-AM pictures by 8-12 points on Fashion-MNIST and does not help the others. SVM "
                               "and random forest are fitted once and learn the stored labels")
    most = protocol.local_processes()
    processes = 1 if most < 2 else int(s3.number_input(
        "Processes", 1, most, 1, key="sl_processes",
        help="more than 1: torchrun shares the run out between local processes (one per GPU, else the CPU cores split "
             "between them): the same synthetic set, a student as good; one job, one progress bar, one Cancel"))
    b1, b2 = st.columns(2)
    baseline = b1.checkbox("Real-data baseline of the same size", value=True, key="sl_baseline")
    fixed = not is_online(method)  # an online method keeps no fixed set to take prototypes or subsets from
    bias_only = fixed and not ds.is_tabular and b2.checkbox(
        "Extreme compression: visualizations as weights, biases trained (seed 003 sec. 10)", key="sl_bias_only")
    sweep = "" if not fixed else st.text_input(
        "Accuracy against size: also train the first student on the first N images (optional)",
        placeholder="e.g. 200, 500, 1000", key="sl_sizes",
        help="each size also trains the same student on that many real images (seed 000 Table 2)")
    active = [j for j in protocol.list_runs() if j["state"] in ("queued", "running")]
    try:
        sizes = protocol.parse_sizes(sweep)
        cfg = protocol.DistillConfig(
            teacher=entry.id, dataset=ds.name, synthesis=SynthesisConfig(method=method, **opts),
            students=tuple(StudentConfig(arch=a, labels=labels, epochs=epochs,
                                         relabel=relabel and a not in SKLEARN_STUDENTS) for a in archs),
            baseline=baseline, sizes=sizes, preset="bias-only" if bias_only else "", engine=engine)
        problem = None if archs else "Choose at least one student architecture."
    except ValueError as e:
        cfg, problem = None, str(e)
    if problem:
        st.error(problem)
    e1, e2 = st.columns([1, 3])
    estimate_time("sl_estimate", cfg, e1, e2, disabled=bool(problem))
    if st.button("Start run", type="primary", key="sl_start", disabled=bool(problem) or bool(active),
                 help="one run at a time" if active else None):
        if processes > 1:
            protocol.start_parallel_run(cfg, processes)
        else:
            protocol.start_run(cfg)
        st.rerun()

    def show_result(job):
        r = job.result
        st.success(f"Best student {r['best_student']}: {r['best_accuracy']:.1%} test accuracy, "
                   f"{r['best_ratio']:.1%} of the teacher's {r['teacher_accuracy']:.1%}"
                   + (f"; real-data baseline {r['baseline_accuracy']:.1%}" if r.get("baseline_accuracy") is not None else "")
                   + ". Compare it on *Runs and comparison*.")

    def show_live(job):
        path = protocol.run_dir(job.id) / "live.json"
        if path.exists():
            st.plotly_chart(agreement_curves(json.loads(path.read_text())), key=f"sl_live_{job.id}")

    job_panel(protocol.JOB_KIND, show_result, limit=3, show_active=show_live)

    with st.expander("Seed 003 preset (d): a class-subset teacher, and one class's visualization swapped in"):
        st.caption("Trains two-class teachers of the teacher's architecture on real images (class vs one other "
                   "class, class vs all), retrains each from its two visualizations, then swaps its visualization "
                   "of the class into the teacher's 10 visualizations and trains a 10-class student on them.")
        names = list(entry.card.class_names)
        p1, p2 = st.columns(2)
        a, b = (3, 4) if len(names) > 4 else (0, 1)
        cls = p1.selectbox("Class", range(len(names)), 0 if state.new_classes("sl_sub_cls", names, a) else a,
                           format_func=names.__getitem__, key="sl_sub_cls")
        versus = p2.selectbox("Versus", range(len(names)), 0 if state.new_classes("sl_sub_vs", names, b) else b,
                              format_func=names.__getitem__, key="sl_sub_vs")
        if cls == versus:
            st.error("Choose two different classes.")
        if st.button("Start preset (d)", key="sl_sub_start", disabled=cls == versus):
            presets.start_subset_run(entry.id, ds.name, cls, versus)
            st.rerun()

        def show_subset(job):
            st.dataframe(pd.DataFrame(job.result["two_class"]), hide_index=True, key=f"sl_sub_two_{job.id}")
            st.dataframe(pd.DataFrame(job.result["ten_class"]).drop(columns=["f1"]), hide_index=True,
                         key=f"sl_sub_ten_{job.id}")

        job_panel(presets.JOB_KIND, show_subset, limit=1)

    with st.expander("Seed 000's tables on this teacher: Tables 1, 2, 6 and 7 with the paper's settings"):
        table = st.selectbox("Table", list(SEED_PRESETS), format_func=lambda k: SEED_PRESETS[k].title,
                             key="sl_seed_table")
        p = SEED_PRESETS[table]
        n_seed = int(st.number_input(f"Synthetic images (the seed: {p.seed_figures.get('size', max(p.sizes or [p.n])):,}; "
                                     "fewer run faster)", 100, 200_000, p.n, step=1000, key="sl_seed_n"))
        seed_cfg = preset_config(table, entry.id, ds.name, entry.card.arch, n=n_seed)
        st.caption(f"{seed_cfg.synthesis.method}, T {seed_cfg.synthesis.threshold}"
                   + (f"–{seed_cfg.synthesis.threshold_max}" if seed_cfg.synthesis.threshold_max else "")
                   + f", {p.labels} labels, students "
                   + ", ".join(f"{s.arch} ({SEED000_ARCH.get(s.arch, s.arch)})" for s in seed_cfg.students)
                   + (f", sizes {', '.join(map(str, seed_cfg.sizes))} beside real subsets" if seed_cfg.sizes else
                      ", each beside the same student on real images")
                   + ". The result is a run on *Runs and comparison*, next to the seed's MNIST figures.")
        t1, t2, t3 = st.columns([1, 1, 3])
        estimate_time("sl_seed_estimate", seed_cfg, t1, t3)
        if t2.button(f"Start {table}", key="sl_seed_start", disabled=bool(active), help="one run at a time" if active else None):
            protocol.start_run(seed_cfg)
            st.rerun()


with runs_tab:
    rows = protocol.list_runs()
    done = [r for r in rows if r["state"] == "done"]
    if not rows:
        st.info("No runs yet: start one on *New run*.")
        st.stop()
    table = pd.DataFrame(rows)
    show = [c for c in ("id", "state", "teacher", "method", "n", "students", "teacher_accuracy", "best_accuracy",
                        "baseline_accuracy", "synthesis_seconds", "seconds") if c in table]
    st.dataframe(table[show], hide_index=True, width="stretch")
    if not done:
        st.stop()
    chosen = st.multiselect("Runs to compare", [r["id"] for r in done], default=[done[0]["id"]], key="sl_compare",
                            format_func=lambda i: next(f"{r['id']} · {r['method']} x{r['n']}" for r in done if r["id"] == i))
    if not chosen:
        st.info("Pick at least one finished run.")
        st.stop()
    reports = {rid: protocol.load_report(rid) for rid in chosen}
    series, acc_rows = protocol.compare_reports(reports)
    st.plotly_chart(f1_curves(series), key="sl_f1")
    st.dataframe(pd.DataFrame(acc_rows), hide_index=True, width="stretch")

    rid = st.selectbox("Details of run", chosen, key="sl_detail")
    rep = reports[rid]
    st.caption(f"Synthesis: {rep['synthesis']['seconds']:.1f} s, {rep['synthesis']['n']} images"
               + (" — used real training data (not data-free)" if rep["synthesis"]["used_real_data"] else "")
               + f"; whole run {rep['seconds']:.1f} s.")
    models = {f"{s['name']}": s["report"] for s in rep["students"] + rep["baselines"]}
    models[f"{rep['teacher']['id']} (teacher)"] = rep["teacher"]["report"]
    left, right = st.columns(2)
    which = left.selectbox("Confusion matrix of", list(models), key="sl_confusion_model")
    left.plotly_chart(confusion_heatmap(models[which]["confusion"], rep["class_names"], title=which), key="sl_confusion")
    with right:
        per = pd.DataFrame(protocol.report_rows(rep))
        st.dataframe(per[per["model"] == which.removesuffix(" (teacher)")].drop(columns=["role"]), hide_index=True,
                     height=380)
    if rep.get("live"):
        st.plotly_chart(agreement_curves(rep["live"]), key="sl_live_done")
    if rep["sweep"]:
        st.plotly_chart(accuracy_vs_size(rep["sweep"], rep["teacher"]["accuracy"]), key="sl_sweep")
    if (table := rep["config"].get("preset")) in SEED_PRESETS:
        st.markdown(f"**{SEED_PRESETS[table].title}**: this run (teacher {rep['teacher']['accuracy']:.2%}) beside "
                    f"the seed's MNIST figures (teacher {SEED_PRESETS[table].seed_figures['teacher']} %), in %")
        st.dataframe(seed_rows(table, rep), hide_index=True, key="sl_seed_rows")
    d1, d2, d3 = st.columns(3)
    d1.download_button("Per-class table (CSV)", protocol.report_csv(rep), f"{rid}.csv", "text/csv", key="sl_csv")
    d2.download_button("Report (JSON)", json.dumps(rep, indent=1), f"{rid}.json", "application/json", key="sl_json")
    npz = protocol.run_dir(rid) / "synthetic.npz"
    d3.download_button("Synthetic set (.npz)", npz.read_bytes(), f"{rid}-synthetic.npz", key="sl_npz")

    @state.fragment
    def gallery():
        per_class = st.slider("Images per class", 1, 10, 4, key="sl_gallery_n")
        synth = protocol.load_synthetic(rid)
        if synth.images.dim() == 2:  # feature rows: each class's mean synthetic row, in standard deviations
            from vizcore.explain.visualize import class_averages
            from vizcore.plots.compression import feature_heatmap

            means = class_averages(synth.images, synth.labels, len(synth.class_names))
            st.plotly_chart(feature_heatmap(means, ds.feature_names or [str(i) for i in range(means.shape[1])],
                                            synth.class_names, "Mean synthetic row per teacher label"), key="sl_gallery")
            return
        st.plotly_chart(synthetic_gallery(synth.images, synth.probs, synth.class_names, per_class), key="sl_gallery")
        st.caption("Title: the teacher's label and its softmax probability (the soft label's top entry).")

    st.subheader("Synthetic images")
    gallery()
