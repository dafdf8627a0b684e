"""Looks like: the most characteristic feature of an image, and what in it makes it look like another class."""

import streamlit as st

from ui import state
from ui.pg_inputs import pick_class, pick_image
from vizcore.explain import gradients as G
from vizcore.plots import gradients as P

st.title("Looks like")
st.caption("The unit with the highest prediction gradient marks the filter and region that matter most for a class "
           "(Lo 2016, sections 4.3.1–4.3.2). Taken for another class B, it shows what makes the image look like B.")

ds, entry, model = state.require()
state.require_images(ds, "“What makes A look like B” compares feature maps of images")

c1, c2 = st.columns([2, 1])
idx, image, true_class = pick_image(ds, "ll_img", container=c1)
choices = G.layer_choices(model)
layer = c2.selectbox("Layer", choices, key="ll_layer",
                     format_func=lambda n: "input pixels (∂y/∂x)" if n == "input" else n)
other = pick_class(ds, "ll_other", "Looks like class B", default=(true_class + 1) % ds.num_classes, container=c2)
threshold = c2.slider("Region: PG above this share of the peak", 0.1, 0.9, 0.5, 0.05, key="ll_threshold")

r = G.looks_like(model, image, true_class, other, layer=layer, threshold=threshold)
A, B = ds.class_names[true_class], ds.class_names[other]
if r.own.flat or r.feature.flat:
    st.warning(f"Every prediction gradient in {layer} is zero for this image: the model is saturated here "
               "(softmax at 0 or 1), so no region stands out. Try y = logit-free layers such as 'input', "
               "another image, or a better-trained model.")


def describe(f: G.Feature) -> str:
    where = "pixel" if f.layer == "input" else f"{f.layer} filter #{f.filter}"
    return f"{where}, unit ({f.row}, {f.col}): PG {f.pg:.3g} · filter score {f.filter_score:.3g}"


cols = st.columns(4)
with cols[0]:
    st.plotly_chart(P.overlay(image, r.own.heat, r.own.box, title=f"Most '{A}' (its own class)", size=280),
                    key="ll_own")
    st.caption(describe(r.own))
with cols[1]:
    st.plotly_chart(P.overlay(image, r.feature.heat, r.feature.box, title=f"Most like '{B}'", size=280),
                    key="ll_other_fig")
    st.caption(describe(r.feature))
with cols[2]:
    st.plotly_chart(P.overlay(image, r.heat_a, title=f"same filter, PG of '{A}'", diverging=True, size=280),
                    key="ll_heat_a")
with cols[3]:
    st.plotly_chart(P.overlay(image, r.diff, r.feature.box, title=f"'{B}' minus '{A}'", diverging=True, size=280),
                    key="ll_diff")
    st.caption("Red: pushes towards B more than towards A; blue: the reverse.")
if layer != "input":
    with st.expander(f"All {layer} filters for this image"):
        st.plotly_chart(P.map_grid(r.feature.maps, title="filter outputs", highlight=r.feature.filter),
                        key="ll_maps")
        st.plotly_chart(P.map_grid(r.feature.pgs, diverging=True, highlight=r.feature.filter,
                                   title=f"PG maps for '{B}'"), key="ll_pgs")
