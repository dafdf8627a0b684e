"""Overview: the chosen model's card, layers and how well it does on the chosen dataset's test split."""

import streamlit as st

from ui import first_page, state
from vizcore.models import count_parameters, layer_table
from vizcore.plots.common import confusion_heatmap, image_grid, per_class_bars

st.title("Overview")
ds, entry, model = state.require()

card = entry.card
key = state.model_key(entry)
report = state.evaluation(*key, ds.name)
card_acc = card.metrics.get("accuracy")
record = {
    "dataset": ds.name, "model": entry.id, "model_label": state.model_label(entry),
    "sidebar_caption": state.model_caption(entry), "tabular": ds.is_tabular,
    "weights": {"path": str(entry.weights), "mtime": key[1]},
    "metrics": [("Test accuracy", f"{report['accuracy']:.2%}", f"on the {report['n']} test images of {ds.name}"),
                ("Model card says", "—" if card_acc is None else f"{card_acc:.2%}",
                 "accuracy recorded when the model was trained; reproduce with the CLI command below"),
                ("Parameters", f"{count_parameters(model):,}", None), ("Architecture", card.arch, None)],
    "warning": None if card.dataset == ds.name else (
        f"This model was trained on **{card.dataset}**; it is evaluated here on **{ds.name}** because their shapes fit."),
    "per_class": per_class_bars(report["per_class"]),
    "confusion": confusion_heatmap(report["confusion"], ds.class_names),
}
only_wrong, n_show = first_page.draw(record)
pred, names = report["pred"], ds.class_names
idx = [i for i in range(report["n"]) if not only_wrong or pred[i] != int(ds.test_y[i])][:n_show]
if idx and ds.is_tabular:  # a table: its rows, in standard deviations from the training mean
    values = ds.test_x[idx].numpy().round(2).tolist()
    st.dataframe([{"true": names[int(ds.test_y[i])], "predicted": names[pred[i]], **dict(zip(ds.feature_names, v))}
                  for i, v in zip(idx, values)], hide_index=True)
    st.caption("Features are standardized with the training split's mean and standard deviation, which the model "
               "card keeps, so raw rows can be prepared the same way (`vizcore.zoo.prepare_rows`).")
elif idx:
    wrong = [pred[i] != int(ds.test_y[i]) for i in idx]
    titles = [f"{names[int(ds.test_y[i])][:10]}→{names[pred[i]][:10]}" if w else names[pred[i]][:14]
              for i, w in zip(idx, wrong)]
    strip = image_grid(ds.test_x[idx], titles, cols=10, highlight=wrong)
    st.plotly_chart(strip, key="strip")
    if not only_wrong and n_show == first_page.STRIP_DEFAULT and "_first_page_saved" not in st.session_state \
            and state.is_default(ds, entry):  # what the next server start shows while it imports PyTorch
        first_page.save({**record, "strip": strip.to_json(),
                         **{k: record[k].to_json() for k in ("per_class", "confusion")}})
        st.session_state["_first_page_saved"] = True
    st.caption("Title: predicted class; misclassified images are framed in red and titled true→predicted.")
else:
    st.success("No misclassified test images.")

with st.expander("Layers", expanded=False):
    # a Markdown table: st.dataframe would import pandas (3 s) on the first page, delaying the figures above
    st.markdown("| layer | type | output shape | parameters |\n| --- | --- | --- | ---: |\n" + "\n".join(
        f"| {r['name']} | {r['type']} | {r['output_shape']} | {r['parameters']:,} |" for r in layer_table(model, ds.input_shape)))
with st.expander("Model card", expanded=False):
    st.write(f"**{card.name}** · {card.arch} · trained on {card.dataset} · seed {card.seed} · "
             f"{card.train_seconds or '?'} s of training")
    if card.command:
        st.code(card.command, language="bash")
        st.caption(f"Reproduce its test accuracy: `python -m vizcore evaluate --model {entry.id}`")
    st.json({"hyperparameters": card.hyperparameters, "created": card.created, "format": card.format,
             **({"compression": card.compression} if card.compression else {}),
             **({"preprocessing": card.preprocessing} if card.preprocessing else {})}, expanded=False)
