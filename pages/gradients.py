"""Prediction gradients: which feature maps push the prediction of a class, for one image or a whole class."""

import pandas as pd
import streamlit as st

from ui import state
from ui.pg_inputs import pick_class, pick_image
from vizcore.explain import gradients as G
from vizcore.explain.knockout import class_images
from vizcore.core.layers import conv_layers
from vizcore.plots import gradients as P

st.title("Prediction gradients")
st.caption("PG(a) = ∂y_c/∂a: how much each unit pushes the prediction of class c (Lo 2016, chapter 3). "
           "A filter's score is the norm of its PG map; brighter circles push harder.")

ds, entry, model = state.require()
layers = conv_layers(model)
if not layers:
    st.info(f"{entry.id} has no convolutional layers, so there are no feature maps to score. "
            "Pick a CNN in the sidebar, or see pixel gradients on *Looks like* and *Perturb*.")
    st.stop()


@st.cache_data(show_spinner="Averaging prediction gradients over the class…", max_entries=32)
def class_average(model_id: str, mtime: float, dataset: str, target: int, output: str) -> tuple[int, dict]:
    """Mean PG maps over the class's training images, as the Knockout page ranks filters (the test images judge)."""
    d = state.get_dataset(dataset)
    x, _ = class_images(d.train_x, d.train_y, target)
    return len(x), G.class_average_pg(state.get_model(model_id, mtime), x, target, output=output)


c1, c2, c3, c4 = st.columns([2, 2, 1, 1])
mode = c1.radio("Explain", ["One image", "Class average"], horizontal=True, key="pg_mode")
output = c3.radio("y is the", G.OUTPUTS, key="pg_output", format_func={"prob": "probability", "logit": "logit"}.get)
norm = c4.selectbox("Filter score", G.NORMS, key="pg_norm", format_func={"fro": "Frobenius", "l1": "L1", "max": "max"}.get)

if mode == "One image":
    idx, image, true_class = pick_image(ds, "pg_img", container=c2)
    target = pick_class(ds, "pg_target", "Gradient of class", default=true_class)
    pg = G.prediction_gradients(model, image[None], target, output=output)
    pg = {k: v[0] for k, v in pg.items()}
    acts = {k: v[0] for k, v in G.activations(model, image[None]).items()}
    subject = f"test image #{idx} ({ds.class_names[true_class]})"
else:
    target = pick_class(ds, "pg_avg_class", "Class", container=c2)
    if not (ds.train_y == target).any():
        st.warning(f"No training images of class {ds.class_names[target]}.")
        st.stop()
    n, pg = class_average(*state.model_key(entry), ds.name, target, output)
    subject = f"the mean over {n} training images of {ds.class_names[target]}"

scores = G.filter_scores(pg, norm)
mask = st.session_state.get("knockout_mask") or {}
left, right = st.columns([3, 2])
with left:
    st.plotly_chart(P.network_diagram(scores, highlight=mask,
                                      title=f"PG of '{ds.class_names[target]}' for {subject}"), key="pg_network")
    if any(mask.values()):
        st.caption("Red crosses: filters knocked out on the *Knockouts* page.")
with right:
    ranking = G.rank_filters(scores)
    k = st.slider("Filters shown at each end", 1, min(20, len(ranking)), min(5, len(ranking)), key="pg_topk")
    table = pd.DataFrame([{"end": "highest", "layer": n, "filter": i, "score": s} for n, i, s in ranking[:k]]
                         + [{"end": "lowest", "layer": n, "filter": i, "score": s} for n, i, s in ranking[::-1][:k]])
    st.dataframe(table, hide_index=True, key="pg_ranking", column_config={"score": st.column_config.NumberColumn(format="%.4g")})
    st.download_button("Scores as JSON", data=pd.Series({n: s.tolist() for n, s in scores.items()}).to_json(),
                       file_name=f"pg-{ds.name}-{target}.json", key="pg_download")

if mode == "One image":
    st.subheader("Per-filter browser")

    @st.fragment
    def browser():
        b1, b2 = st.columns([1, 3])
        layer = b1.selectbox("Layer", layers, key="pg_browse_layer")
        n = len(pg[layer])
        f = b1.number_input(f"Filter (0–{n - 1})", 0, n - 1, int(scores[layer].argmax()), key="pg_browse_filter")
        names = [f"#{i}" for i in range(n)]
        with b2:
            st.plotly_chart(P.map_grid(acts[layer], names, title=f"{layer}: filter outputs", highlight=int(f)),
                            key="pg_acts_grid")
            st.plotly_chart(P.map_grid(pg[layer], names, diverging=True, highlight=int(f),
                                       title=f"{layer}: PG maps (red pushes '{ds.class_names[target]}' up)"),
                            key="pg_pg_grid")
        heat = G.pixel_saliency(pg[layer][None, int(f):int(f) + 1], "max", size=tuple(image.shape[-2:]))[0]
        with b1:
            st.plotly_chart(P.overlay(image, heat, title=f"{layer} #{int(f)} PG on the input", diverging=True,
                                      size=260), key="pg_overlay")

    browser()
