"""Perturb: nudge an image towards a chosen class along ∂y_B/∂x and see how far it has to go."""

import streamlit as st

from ui import state
from ui.jobs_panel import latest_job
from ui.pg_inputs import pick_class, pick_image
from vizcore.explain import perturb as A
from vizcore.core import jobs
from vizcore.plots import gradients as P
from vizcore.plots.common import image_grid

KIND = "perturb-sweep"

st.title("Perturb")
st.caption("x′ = clip(x + ε·g/‖g‖) with g = ∂y_B/∂x moves an image towards class B (Lo 2016, section 4.4). "
           "The iterated variant takes several smaller steps, recomputing g each time.")

ds, entry, model = state.require()
state.require_images(ds, "Targeted perturbations change an image's pixels and show them")


def parse_eps(text: str) -> tuple[float, ...] | None:
    try:
        eps = tuple(float(t) for t in text.replace(",", " ").split())
        return A.PerturbConfig(eps=eps).eps
    except ValueError:
        st.error("Step sizes: give non-negative numbers separated by commas, e.g. `0, 1, 2, 4, 8`.")
        return None


c1, c2 = st.columns([2, 1])
idx, image, true_class = pick_image(ds, "pt_img", container=c1)
target = pick_class(ds, "pt_target", "Push towards class", default=(true_class + 1) % ds.num_classes, container=c2)
eps_text = c2.text_input("Step sizes (L2 distance)", "0, 1, 2, 4, 8", key="pt_eps")
steps = c2.number_input("Iterations per step size", 1, 50, 1, key="pt_steps")
eps = parse_eps(eps_text)
if eps is None:
    st.stop()

strip = A.perturbation_strip(model, image, true_class, target, eps, steps=int(steps))
T, B = ds.class_names[true_class], ds.class_names[target]
titles = [f"ε={e:g}<br>{T[:10]} {t:.0%} · {B[:10]} {b:.0%}" for e, t, b in zip(strip.eps, strip.true_conf, strip.target_conf)]
st.plotly_chart(image_grid(strip.images, titles, cols=len(eps), size=150,
                           highlight=[p == target for p in strip.predicted]), key="pt_strip")
st.caption(f"Confidence in the true class ({T}) and the target ({B}); a red frame marks images now predicted as {B}.")

st.subheader("Every class towards every class")
s1, s2, s3 = st.columns([1, 1, 2])
per_class = s1.number_input("Test images per class", 1, 200, 10, key="pt_per_class")
sweep_steps = s2.number_input("Iterations", 1, 20, 1, key="pt_sweep_steps")


config = {"model": entry.id, "dataset": ds.name, "eps": list(eps), "steps": int(sweep_steps), "per_class": int(per_class)}
if s3.button("Run the sweep", type="primary", key="pt_run"):
    cfg = A.PerturbConfig(eps=eps, steps=int(sweep_steps), per_class=int(per_class))
    jobs.start_job(KIND, f"{entry.id} on {ds.name}: {per_class}/class, ε {eps_text}",
                   jobs.job_call(A.perturbation_sweep, model, ds.test_x, ds.test_y, cfg), config)


def show_sweep(done: jobs.JobInfo) -> None:
    r = A.SweepResult.from_dict(done.result)
    st.caption(f"{done.title} · {r.n_images} images, accuracy before pushing {r.base_accuracy:.1%}")
    e = st.select_slider("Step size shown in the matrix", r.eps, value=r.eps[-1], key="pt_matrix_eps")
    m1, m2 = st.columns(2)
    m1.plotly_chart(P.success_matrix(r.success[r.eps.index(e)], ds.class_names, e), key="pt_matrix")
    m2.plotly_chart(P.perturbation_curves(r.eps, r.error, r.success_rate, r.target_success,
                                          [ds.class_names[t] for t in r.targets]), key="pt_curves")


latest_job(KIND, show_sweep, match=lambda j: j.config.get("model") == entry.id and j.config.get("dataset") == ds.name,
           empty="No sweep for this model yet: it pushes every test image picked towards every other class.")
