"""Prediction gradients: the whole network for one image (maps ringed by PG, edges by the PG they carry), which
feature maps push a class, and a per-filter browser a click on the diagram opens."""

import pandas as pd
import streamlit as st
import torch

from ui import state, static_chart
from ui.charts import clickable_figure, live_chart
from ui.lookahead import AFTER_RERUN, LookAhead
from ui.pg_inputs import pick_class, pick_image
from vizcore.core.layers import conv_layers, dense_layers
from vizcore.explain import gradients as G
from vizcore.explain.knockout import class_images, normalize_mask
from vizcore.explain.network import network_flow
from vizcore.plots import gradients as P
from vizcore.plots.network import network_figure

st.title("Prediction gradients")
st.caption("PG(a) = ∂y_c/∂a: how much each unit pushes the prediction of class c (Lo 2016, chapter 3). "
           "A map's ring and an edge's thickness grow with the PG they carry.")

ds, entry, model = state.require()
layers = conv_layers(model)
if not layers and ds.is_tabular and len(dense_layers(model)) > 1:  # a table's MLP: PG of its dense units
    from vizcore.plots.compression import feature_bars, feature_heatmap

    hidden = dense_layers(model)[:-1]
    c1, c2 = st.columns(2)
    target = pick_class(ds, "pg_tab_class", "Class", container=c1)
    output = c2.radio("y is the", G.OUTPUTS, key="pg_tab_output", format_func={"prob": "probability", "logit": "logit"}.get)
    if not (ds.train_y == target).any():
        st.warning(f"No training rows of class {ds.class_names[target]}.")
        st.stop()
    x, _ = class_images(ds.train_x, ds.train_y, target)
    pg = G.class_average_pg(model, x, target, layers=hidden, output=output)
    width = max(v.numel() for v in pg.values())
    grid = torch.full((len(hidden), width), float("nan"))
    for i, name in enumerate(hidden):
        grid[i, :pg[name].numel()] = pg[name].flatten()
    st.plotly_chart(feature_heatmap(grid, [str(u) for u in range(width)], hidden,
                                    f"Mean PG of '{ds.class_names[target]}' for each dense unit (columns: units)"),
                    key="pg_tab_units")
    grad = G.input_gradient(model, x, target, output=output).mean(0)
    st.plotly_chart(feature_bars(grad[None], ds.feature_names, [ds.class_names[target]],
                                 "Mean gradient with respect to each input feature"), key="pg_tab_features")
    st.caption(f"Averaged over {len(x)} training rows of {ds.class_names[target]}. Knock units out on *Knockout*.")
    st.stop()
model_key = state.model_key(entry)
mask = normalize_mask(model, state.knockout_of(entry))  # the Knockout page's mask, when made for this model


@st.cache_data(show_spinner="Averaging prediction gradients over the class…", max_entries=32)
def class_average(model_id: str, mtime: float, dataset: str, target: int, output: str) -> tuple[int, dict]:
    """Mean PG maps over the class's training images, as the Knockout page ranks filters (the test images judge)."""
    d = state.get_dataset(dataset)
    x, _ = class_images(d.train_x, d.train_y, target)
    return len(x), G.class_average_pg(state.get_model(model_id, mtime), x, target, output=output)


@st.cache_data(show_spinner=False, max_entries=128)
def flow(model_key: tuple, dataset: str, idx: int, target: int, output: str, norm: str, mask_key: tuple, _image):
    return network_flow(model, _image, target, output=output, norm=norm, mask=dict(mask_key))


def open_clicked_map() -> None:
    """A click on a conv map of the diagram opens it in the per-filter browser (called once per click, before the
    rerun, so the diagram drawn next frames the map; a second click on the same map opens it again)."""
    data = (st.session_state.get("pg_network") or {}).get("clicked")
    if data and data[0] in layers:
        st.session_state["pg_browse_layer"], st.session_state["pg_browse_filter"] = data[0], int(data[1])


c1, c3, c4 = st.columns([2, 1, 1])
modes = ["One image", "Class average"] if layers else ["One image"]
mode = c1.radio("Explain", modes, horizontal=True, key="pg_mode")
output = c3.radio("y is the", G.OUTPUTS, key="pg_output", format_func={"prob": "probability", "logit": "logit"}.get)
norm = c4.selectbox("Filter score", G.NORMS, key="pg_norm", format_func={"fro": "Frobenius", "l1": "L1", "max": "max"}.get)
if not layers:
    st.info(f"{entry.id} has no convolutional layers: the diagram shows its dense units only. Pick a CNN in the "
            "sidebar for feature maps, or see pixel gradients on *Looks like* and *Perturb*.")


def ranking_table(scores, target: int) -> None:
    ranking = G.rank_filters(scores)
    k = st.slider("Filters shown at each end", 1, min(20, len(ranking)), min(5, len(ranking)), key="pg_topk")
    table = pd.DataFrame([{"end": "highest", "layer": n, "filter": i, "score": s} for n, i, s in ranking[:k]]
                         + [{"end": "lowest", "layer": n, "filter": i, "score": s} for n, i, s in ranking[::-1][:k]])
    st.dataframe(table, hide_index=True, key="pg_ranking", column_config={"score": st.column_config.NumberColumn(format="%.4g")})
    st.download_button("Scores as JSON", data=pd.Series({n: s.tolist() for n, s in scores.items()}).to_json(),
                       file_name=f"pg-{ds.name}-{target}.json", key="pg_download")


AHEAD_KEEP = 2  # the image shown and the one before it
# the classes worked out ahead for the image shown once the person changes classes: every class of a 10-class model,
# the most probable of a larger one (bench/latency.py: a class change took a median 225 ms when each was worked out
# anew, 186-213 ms with only the flows worked out ahead, the diagram drawn on the change)
CLASSES_AHEAD = 10


def diagram(f, idx: int, target: int, true_class: int, selected) -> str:
    """The network diagram of one image's flow, titled with what the model says, as the SVG the page shows (made
    here, so that the look-ahead makes it in the background too)."""
    verdict = "right" if f.predicted == true_class else f"wrong: {ds.class_names[f.predicted]}"
    title = (f"PG of '{ds.class_names[target]}' for test image #{idx} ({ds.class_names[true_class]}; "
             f"the model says {ds.class_names[f.predicted]} {float(f.probs[f.predicted]):.0%}, {verdict})")
    return static_chart.clickable(network_figure(f, ds.class_names, title=title, selected=selected).to_dict())


@state.fragment
def one_image() -> None:
    """Everything that depends on the image and class; a change reruns this fragment only."""
    i1, i2 = st.columns([2, 1])
    idx, image, true_class = pick_image(ds, "pg_img", container=i1)
    target = pick_class(ds, "pg_target", "Gradient of class", default=true_class, container=i2)
    args = (model_key, ds.name, idx, target, output, "l1" if norm == "l1" else "fro",
            tuple((k, tuple(v)) for k, v in mask.items()))
    selected = browsed()
    # the look-ahead made this flow and diagram while the person looked at the previous image or at another class of
    # this one, or they were shown a step ago (a step back, against the direction the look-ahead went)
    ahead = st.session_state.setdefault("_pg_ahead", LookAhead(keep=AHEAD_KEEP))
    f, svg = ahead.take((args, selected)) or (None, None)
    if f is None:
        f = flow(*args, image)
        if selected is None and layers:  # a first run: the browser's default map, so the diagram frames it
            selected = open_default_map(f)
        svg = diagram(f, idx, target, true_class, selected)
    ahead.remember((args, selected), (f, svg))
    clickable_figure(svg, "pg_network", on_click=open_clicked_map)
    notes = ["Click a feature map to open it in the per-filter browser below."] if layers else []
    if mask:
        notes.append(f"Grey crossed maps: knocked out on the *Knockout* page ({sum(map(len, mask.values()))} "
                     "filters); the diagram, the ranking and the browser show the network without them.")
    st.caption(" ".join(notes) + " Edges: the strongest PG paths between layers; rings: PG score per layer max.")
    if not layers:
        return
    # the flow's own maps: the network the diagram draws, knocked-out filters included (their PG is 0)
    pg = {lay.name: lay.pg_maps for lay in f.layers if lay.name in layers}
    acts = {lay.name: lay.acts for lay in f.layers if lay.name in layers}
    left, right = st.columns([2, 3])
    with left:
        st.subheader("Ranking")
        ranking_table(G.filter_scores(pg, norm), target)
    with right:
        st.subheader("Per-filter browser")
        browser(pg, acts, image, target)
    shown, st.session_state["_pg_shown"] = st.session_state.get("_pg_shown"), (idx, target)
    other_classes = shown is not None and shown[0] == idx and shown[1] != target  # the person changes classes
    ahead.start(look_ahead_jobs(ahead, args, true_class, f, other_classes), after=AFTER_RERUN)


def look_ahead_jobs(ahead: LookAhead, args: tuple, true_class: int, f, other_classes: bool) -> list:
    """What the person will probably ask for next, worked out (flow and diagram) while they look at this image: the
    next image of the class and, when they have just changed the class (``other_classes``), first this image for
    each other class (:func:`classes_ahead`), else after it this image's next class only: a person stepping through
    images steps on, and more work would compete with their next step (the first class change after image steps
    took about 230 ms, worked out on the change, against 100-110 ms taken from the look-ahead; bench/latency.py)."""
    idx, target, output, norm, mask_key = args[2:]
    selected = browsed()  # the map the browser holds now

    def both(i: int, c: int):
        g = network_flow(model, ds.test_x[i], c, output=output, norm=norm, mask=dict(mask_key))
        if ahead.unwanted():  # the person asked for something else: leave the GIL to their rerun
            raise RuntimeError("not wanted")
        return g, diagram(g, i, c, true_class, selected)
    nxt = next_image(idx, true_class)
    jobs = [] if nxt is None else [((args[:2] + (nxt,) + args[3:], selected), lambda: both(nxt, target))]
    if other_classes:  # before the next image: a person who changes the class changes it again first
        jobs[:0] = [((args[:3] + (c,) + args[4:], selected), lambda c=c: both(idx, c))
                    for c in classes_ahead(f.probs, target)]
    elif target + 1 < len(f.probs):  # after it, this image's next class: a teacher going through the classes
        jobs.append(((args[:3] + (target + 1,) + args[4:], selected), lambda: both(idx, target + 1)))
    return jobs


def classes_ahead(probs: torch.Tensor, target: int) -> list[int]:
    """The image's other classes in the order a person probably asks for them: the next and the previous one in the
    picker (its arrow keys, a teacher going through the classes in turn), then the most probable. Most probable
    first, a person going through the classes in turn waited at the second change too (bench/latency.py: 230 ms,
    the class still being worked out behind the others)."""
    near = [c for c in (target + 1, target - 1) if 0 <= c < len(probs)]
    return near + [c for c in probs.argsort(descending=True)[:CLASSES_AHEAD].tolist() if c != target and c not in near]


def strongest_map(pg: dict, layer: str) -> int:
    """The map of ``layer`` with the highest PG score (the per-filter browser's default)."""
    return int(G.filter_scores({layer: pg[layer]}, norm)[layer].argmax())


def open_default_map(f) -> tuple[str, int]:
    """Open the per-filter browser's default, the first conv layer's strongest map for this flow, before the browser
    is drawn (it draws what is open); returns it as :func:`browsed` does."""
    st.session_state["pg_browse_layer"] = layers[0]
    st.session_state["pg_browse_filter"] = strongest_map({lay.name: lay.pg_maps for lay in f.layers}, layers[0])
    return browsed()


def browsed() -> tuple[str, int] | None:
    """The map open in the per-filter browser (the diagram frames it), None before the page's first diagram."""
    if layers and st.session_state.get("pg_browse_layer") in layers:
        return st.session_state["pg_browse_layer"], int(st.session_state.get("pg_browse_filter", 0))
    return None


def next_image(idx: int, c: int) -> int | None:
    """The test image of class ``c`` one step on from ``idx`` in the direction the person last stepped."""
    same = torch.nonzero(ds.test_y == c).flatten().tolist()
    pos = same.index(idx)
    last, st.session_state["_pg_last"] = st.session_state.get("_pg_last"), (c, pos)
    k = pos - 1 if last is not None and last[0] == c and last[1] > pos else pos + 1
    return same[k] if 0 <= k < len(same) else None


def browser(pg, acts, image, target: int) -> None:
    b1, b2 = st.columns([1, 2])
    layer = b1.selectbox("Layer", layers, key="pg_browse_layer")
    n = len(pg[layer])
    if not 0 <= st.session_state.get("pg_browse_filter", 0) < n:
        st.session_state["pg_browse_filter"] = strongest_map(pg, layer)
    f = int(b1.number_input(f"Filter (0–{n - 1})", 0, n - 1, key="pg_browse_filter"))
    heat = G.pixel_saliency(pg[layer][None, f:f + 1], "max", size=tuple(image.shape[-2:]))[0]
    red = f"red pushes '{ds.class_names[target]}' up"
    if b1.toggle("Hover values", key="pg_hover", help="Draw these maps as interactive charts: hover shows each "
                 "map's number and value. Pictures redraw faster when the image or the class changes."):
        live_chart(b1, P.overlay(image, heat, title=f"{layer} #{f}: PG", diverging=True, size=260),
                   "pg_overlay")
        with b2:
            live_chart(st, P.map_grid(acts[layer], title=f"{layer}: filter outputs", highlight=f), "pg_acts_grid")
            live_chart(st, P.map_grid(pg[layer], diverging=True, highlight=f, title=f"{layer}: PG maps ({red})"),
                       "pg_pg_grid")
        return
    pic, zmax = P.overlay_picture(image, heat)
    b1.image(pic, caption=f"{layer} #{f}: PG on the input ({red}; ±{zmax:.3g})", width="stretch")
    with b2:
        pic, _ = P.map_grid_picture(acts[layer], highlight=f)
        st.image(pic, caption=f"{layer}: filter outputs, each map on its own scale (dark low, yellow high)",
                 width="stretch")
        pic, zmax = P.map_grid_picture(pg[layer], diverging=True, highlight=f)
        st.image(pic, caption=f"{layer}: PG maps on one scale, blue −{zmax:.3g} to red +{zmax:.3g} ({red})",
                 width="stretch")


if mode == "One image":
    one_image()
else:
    target = pick_class(ds, "pg_avg_class", "Class")
    if not (ds.train_y == target).any():
        st.warning(f"No training images of class {ds.class_names[target]}.")
        st.stop()
    n, pg = class_average(*model_key, ds.name, target, output)
    scores = G.filter_scores(pg, norm)
    left, right = st.columns([3, 2])
    left.plotly_chart(P.network_diagram(scores, highlight=mask, title=f"PG of '{ds.class_names[target]}' for the "
                                        f"mean over {n} training images of {ds.class_names[target]}"),
                      key="pg_scores_diagram")
    if mask:
        left.caption("Red crosses: filters knocked out on the *Knockout* page.")
    with right:
        ranking_table(scores, target)
