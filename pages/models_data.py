"""Models & data: train a teacher in the background, upload a model or a dataset, manage your models."""

import shlex

import streamlit as st

from ui import state
from ui.jobs_panel import job_panel
from vizcore import data, zoo
from vizcore.core import jobs
from vizcore.models import ARCHITECTURES
from vizcore.train import default_model_name, recipe_config, train_teacher
from vizcore.core.workspace import atomic_write, workspace

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
        go = st.form_submit_button("Start training", type="primary")
    if go:
        label = data.dataset_label(dname)
        name = name.strip() or default_model_name(dname, arch)
        try:
            train_ds = state.get_dataset(dname)
            zoo.check_name(name)
        except (data.DatasetError, zoo.ModelFileError) as e:
            st.error(str(e))
        else:
            cfg = recipe_config(arch, len(train_ds.train_x), epochs=epochs, lr=lr, batch_size=batch, optimizer=opt,
                                seed=int(seed))
            command = " ".join(["python -m vizcore train", "--dataset", shlex.quote(dname), "--arch", arch, "--name",
                                shlex.quote(name), "--epochs", str(cfg.epochs), "--lr", str(cfg.lr), "--batch-size",
                                str(cfg.batch_size), "--optimizer", cfg.optimizer, "--seed", str(cfg.seed)])
            work = jobs.job_call(train_teacher, train_ds, arch, cfg, name, command=command)
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
                 f"(input {list(ds.input_shape)}, {ds.num_classes} classes). Checkpoints are never unpickled: "
                 "TorchScript, safetensors, or a state dict read with `weights_only=True`.")
        with st.form("upload_model", clear_on_submit=False):
            kind = st.radio("What is it?", ["Weights for a zoo architecture", "TorchScript model"], key="up_kind",
                            horizontal=True)
            up_arch = st.selectbox("Architecture (for weights)", list(ARCHITECTURES), key="up_arch")
            f = st.file_uploader("Model file", type=["safetensors", "pt", "pth", "ts"], key="up_model_file")
            up_name = st.text_input("Name", key="up_model_name", placeholder="my-model")
            ok = st.form_submit_button("Add model", type="primary")
        if ok:
            if f is None or not up_name.strip():
                st.error("Choose a file and give the model a name.")
            else:
                try:
                    e = zoo.import_model(f.getvalue(), up_name.strip(), ds,
                                         None if kind == "TorchScript model" else up_arch)
                except zoo.ModelFileError as err:
                    st.error(str(err))
                else:
                    state.flash(f"Added `{e.id}` (test accuracy {e.card.metrics['accuracy']:.2%} on {ds.name}); "
                                "it is now selected in the sidebar.", model=e.id)

with data_tab:
    st.write("An `.npz` with `x` (images: N×H×W, N×H×W×C or N×C×H×W; uint8 or floats in [0, 1]), `y` (labels "
             "0..K-1) and optionally `class_names`, `x_test`, `y_test`. For an image folder (one sub-folder per "
             "class) use the CLI: `--dataset image-folder:PATH`.")
    with st.form("upload_data"):
        f = st.file_uploader("Dataset (.npz)", type=["npz"], key="up_data_file")
        dn = st.text_input("Name", key="up_data_name", placeholder="my-data")
        ok = st.form_submit_button("Add dataset", type="primary")
    if ok:
        if f is None or not dn.strip():
            st.error("Choose a file and give the dataset a name.")
        else:
            try:
                zoo.check_name(dn.strip())
                new = data.load_npz(f.getvalue(), name=dn.strip())
            except (data.DatasetError, zoo.ModelFileError) as err:
                st.error(str(err))
            else:
                path = atomic_write(workspace() / "datasets" / f"{dn.strip()}.npz", f.getvalue())
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
            zoo.delete_model(e)
            st.rerun()
