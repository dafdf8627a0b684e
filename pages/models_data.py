"""Models & data: train a teacher in the background, upload a model or a dataset, manage your models."""

import shlex

import streamlit as st

from ui import state
from ui.jobs_panel import job_panel
from vizcore import data, zoo
from vizcore.core import jobs
from vizcore.models import ARCHITECTURES
from vizcore.train import default_model_name, recipe_config, train_teacher

# What a page action can meet from a file or name a user gave; shown as one line, never a traceback.
EXPECTED = (zoo.ModelFileError, data.DatasetError, OSError, MemoryError)


def one_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [type(e).__name__])[0]
    return text[:400] + ("…" if len(text) > 400 else "")


def import_upload(f, name: str, what: str, add):
    """``add(bytes, name)`` on an uploaded file; a one-line error (never a traceback) and None when it fails."""
    if f is None or not name.strip():
        st.error(f"Choose a file and give the {what} a name.")
        return None
    try:
        with st.spinner(f"Checking the {what}…"):
            return add(f.getvalue(), name.strip())
    except EXPECTED as err:
        st.error(one_line(err))
    except Exception as err:  # an upload is untrusted input: never a traceback, whatever it is
        st.error(f"could not use this file ({type(err).__name__}: {one_line(err)})")
    return None


ds, entry, _ = state.current()
st.title("Models & data")
state.show_flash()
train_tab, model_tab, data_tab, mine_tab = st.tabs(["Train a teacher", "Upload a model", "Upload a dataset", "Your models"])

with train_tab:
    st.write("Train a zoo architecture on a dataset; it runs in the background and appears in the sidebar when done.")
    with st.form("train_form"):
        c = st.columns(3)
        choices = state.dataset_choices()
        current = st.session_state.get(state.DATASET_KEY)
        dname = c[0].selectbox("Dataset", choices, index=choices.index(current) if current in choices else 0,
                               format_func=state.label, key="train_dataset")
        arch = c[1].selectbox("Architecture", list(ARCHITECTURES), index=list(ARCHITECTURES).index("cnn"), key="train_arch")
        name = c[2].text_input("Name", value="", placeholder="DATASET-ARCH", key="train_name")
        c = st.columns(5)
        recipe = "the architecture's recipe (assets/models/train_zoo.sh)"
        epochs = c[0].number_input("Epochs", 1, 5000, None, placeholder="recipe", help=recipe, key="train_epochs")
        lr = c[1].number_input("Learning rate", 1e-5, 1.0, None, format="%.4f", placeholder="recipe", help=recipe,
                               key="train_lr")
        batch = c[2].number_input("Batch size", 8, 4096, None, placeholder="recipe", help=recipe, key="train_batch")
        opt = c[3].selectbox("Optimizer", ["adam", "sgd"], index=None, placeholder="recipe", help=recipe, key="train_opt")
        seed = c[4].number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
        replace = st.checkbox("Replace a model of mine with the same name", key="train_overwrite")
        go = st.form_submit_button("Start training", type="primary")
    if go:
        label = data.dataset_label(dname)
        name = name.strip() or default_model_name(dname, arch)
        try:
            train_ds = state.get_dataset(dname)
            zoo.check_name(name)
            if not replace and any(e.id == f"user:{name}" for e in zoo.list_models()):
                raise zoo.ModelExists(f"a model named '{name}' exists: choose another name or tick 'Replace'")
        except EXPECTED as e:
            st.error(one_line(e))
        else:
            cfg = recipe_config(arch, len(train_ds.train_x), epochs=epochs, lr=lr, batch_size=batch, optimizer=opt,
                                seed=int(seed))
            command = " ".join(["python -m vizcore train", "--dataset", shlex.quote(dname), "--arch", arch, "--name",
                                shlex.quote(name), "--epochs", str(cfg.epochs), "--lr", str(cfg.lr), "--batch-size",
                                str(cfg.batch_size), "--optimizer", cfg.optimizer, "--seed", str(cfg.seed)])
            work = jobs.job_call(train_teacher, train_ds, arch, cfg, name, command=command, overwrite=replace)
            jobs.start_job("train", f"{name} ({arch} on {label})", work, {"dataset": dname, "arch": arch, **cfg.to_dict()})
            st.toast(f"Training {name} started")

    def show(j: jobs.JobInfo) -> None:
        st.write(f"Saved as `{j.result['model_id']}` · test accuracy **{j.result['accuracy']:.2%}** — pick it in the sidebar.")

    job_panel("train", show)

with model_tab:
    if ds is None:
        st.info("Pick a dataset in the sidebar first: an upload is checked against it.")
    else:
        st.write(f"The model is checked against the sidebar's dataset, **{ds.name}** "
                 f"(input {list(ds.input_shape)}, {ds.num_classes} classes). Weights (safetensors, or a state dict "
                 "read with `weights_only=True`) for a zoo architecture, or TorchScript, which is first checked in a "
                 "confined process: pure tensor operations only, no loops, files or printing.")
        with st.form("upload_model", clear_on_submit=False):
            kind = st.radio("What is it?", ["Weights for a zoo architecture", "TorchScript model"], key="up_kind",
                            horizontal=True)
            up_arch = st.selectbox("Architecture (for weights)", list(ARCHITECTURES), key="up_arch")
            f = st.file_uploader("Model file", type=["safetensors", "pt", "pth", "ts"], key="up_model_file")
            up_name = st.text_input("Name", key="up_model_name", placeholder="my-model")
            up_replace = st.checkbox("Replace a model of mine with the same name", key="up_model_overwrite")
            ok = st.form_submit_button("Add model", type="primary")
        e = ok and import_upload(f, up_name, "model", lambda raw, name: zoo.import_model(
            raw, name, ds, None if kind == "TorchScript model" else up_arch, overwrite=up_replace))
        if e:
            state.flash(f"Added `{e.id}` (test accuracy {e.card.metrics['accuracy']:.2%} on {ds.name}); "
                        "it is now selected in the sidebar.", model=e.id)

with data_tab:
    st.write("An `.npz` with only `x` (images: N×H×W, N×H×W×C or N×C×H×W with 1 or 3 channels; uint8 or finite "
             "floats in [0, 1]), `y` (integer labels 0..K-1, 2 ≤ K ≤ 1000) and optionally `class_names`, `x_test`, "
             "`y_test`. For an image folder (one sub-folder per class) use the CLI: `--dataset image-folder:PATH`.")
    with st.form("upload_data"):
        f = st.file_uploader("Dataset (.npz)", type=["npz"], key="up_data_file")
        dn = st.text_input("Name", key="up_data_name", placeholder="my-data")
        dn_replace = st.checkbox("Replace a dataset with the same name", key="up_data_overwrite")
        ok = st.form_submit_button("Add dataset", type="primary")
    added = ok and import_upload(f, dn, "dataset",
                                 lambda raw, name: data.import_npz(raw, name, overwrite=dn_replace))
    if added:
        path, new = added
        state.available_datasets.clear()
        state.get_dataset.clear()
        state.flash(f"Added {dn.strip()}: {len(new.train_x)} train / {len(new.test_x)} test images of shape "
                    f"{list(new.input_shape)}, {new.num_classes} classes; it is now selected in the sidebar.",
                    dataset=f"npz:{path}")

with mine_tab:
    mine = [e for e in zoo.list_models() if e.id.startswith("user:")]
    if not mine:
        st.caption(f"No models of yours yet (they live in {zoo.user_models_dir()}).")
    for e in mine:
        c = st.columns([4, 2, 2, 1])
        c[0].write(f"`{e.id}` · {e.card.arch} · {e.card.dataset}")
        c[1].write(f"accuracy {e.card.metrics.get('accuracy', 0):.2%}")
        c[2].write(e.card.notes or "trained here")
        if c[3].button("Delete", key=f"del-{e.id}"):
            try:
                zoo.delete_model(e)
            except EXPECTED as err:
                st.error(one_line(err))
            else:
                st.rerun()
