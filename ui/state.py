"""The sidebar's dataset and model selection, shared by every page through ``st.session_state``.

Datasets and models are loaded once per process with ``st.cache_resource`` and shared by every browser
session, so nothing here or in the pages may change them: vizcore functions attach hooks only for the
length of a call, under the model's lock.
"""

from __future__ import annotations

import functools

import streamlit as st
import torch

from vizcore import data, zoo
from vizcore.data import Dataset

DATASET_KEY, MODEL_KEY = "dataset_name", "model_id"
DRAWN_KEY = "_drawn_selection"  # the (dataset, model) the page was last drawn with
PREFERRED = ("fashion-mnist", "digits")


@st.cache_resource(show_spinner="Loading dataset…")
def get_dataset(name: str) -> Dataset:
    return data.load_dataset(name)


def model_key(entry: zoo.ModelEntry) -> tuple[str, float]:
    """(model id, mtime of its weights file): the first arguments of every cached function that uses a model,
    which loads it with :func:`get_model` (so a replaced file is reloaded)."""
    return entry.id, entry.weights.stat().st_mtime


@st.cache_resource(show_spinner="Loading model…")
def get_model(model_id: str, mtime: float) -> torch.nn.Module:
    """The model of ``model_id``; ``mtime`` (of its weights file) keys the cache so replaced files reload."""
    return zoo.load_model(model_id)


@st.cache_data(show_spinner=False)
def available_datasets() -> list[str]:
    return data.available()


def dataset_choices() -> list[str]:
    """Registry datasets found on this machine, then datasets the user uploaded to the workspace."""
    uploads = sorted(f"npz:{p}" for p in data.uploaded_datasets_dir().glob("*.npz"))
    return available_datasets() + uploads


def label(name: str) -> str:
    return name.split("/")[-1].removesuffix(".npz") + " (uploaded)" if name.startswith("npz:") else name


def default_dataset(choices: list[str]) -> str:
    return next((c for c in PREFERRED if c in choices), choices[0])


def fitting_models(ds: Dataset) -> list[zoo.ModelEntry]:
    """The models that fit ``ds``: those trained on it first."""
    entries = [e for e in zoo.list_models() if zoo.fits(e, ds)]
    return [e for e in entries if e.card.dataset == ds.name] + [e for e in entries if e.card.dataset != ds.name]


def default_model(entries: list[zoo.ModelEntry]) -> zoo.ModelEntry:
    return next((e for e in entries if e.card.arch == "cnn"), entries[0])


def preload() -> None:
    """Load the dataset and model that a new session opens with into the caches every session shares, so the first
    page does not wait for them (:mod:`ui.warmup` calls this once the server answers)."""
    ds = get_dataset(default_dataset(dataset_choices()))
    if entries := fitting_models(ds):
        get_model(*model_key(default_model(entries)))


def sidebar() -> tuple[Dataset | None, zoo.ModelEntry | None]:
    """Draw the dataset and model pickers; return the current choice (models filtered to what fits)."""
    for key, value in st.session_state.pop("_select", {}).items():
        if value:
            st.session_state[key] = value
    choices = dataset_choices()
    if st.session_state.get(DATASET_KEY) not in choices:
        st.session_state[DATASET_KEY] = default_dataset(choices)
    name = st.sidebar.selectbox("Dataset", choices, key=DATASET_KEY, format_func=label)
    st.session_state[DRAWN_KEY] = _selection()
    try:
        ds = get_dataset(name)
    except data.DatasetError as e:
        st.sidebar.error(str(e))
        return None, None
    same = fitting_models(ds)
    if not same:
        st.sidebar.warning(f"No model fits {ds.name} (input {list(ds.input_shape)}, {ds.num_classes} classes). "
                           "Train or upload one on *Models & data*.")
        return ds, None
    ids = [e.id for e in same]
    if st.session_state.get(MODEL_KEY) not in ids:
        st.session_state[MODEL_KEY] = default_model(same).id
    by_id = {e.id: e for e in same}
    mid = st.sidebar.selectbox("Model", ids, key=MODEL_KEY, format_func=lambda i: model_label(by_id[i]))
    st.session_state[DRAWN_KEY] = _selection()
    entry = by_id[mid]
    st.sidebar.caption(model_caption(entry))
    return ds, entry


KNOCKOUT_MASK, KNOCKOUT_OWNER = "knockout_mask", "_knockout_mask_model"


def share_knockout(entry: zoo.ModelEntry, mask: dict[str, list[int]]) -> None:
    """Keep the Knockout page's mask ({layer: [filter indices]}) for the other pages, with the model it was made for."""
    st.session_state[KNOCKOUT_MASK], st.session_state[KNOCKOUT_OWNER] = mask, model_key(entry)


def knockout_of(entry: zoo.ModelEntry) -> dict[str, list[int]]:
    """The Knockout page's mask when it was made for ``entry`` (these weights), else none: another model with the
    same layer names would otherwise lose filters picked by a ranking of a different network."""
    if st.session_state.get(KNOCKOUT_OWNER) != model_key(entry):
        return {}
    return st.session_state.get(KNOCKOUT_MASK) or {}


def _selection() -> tuple:
    return st.session_state.get(DATASET_KEY), st.session_state.get(MODEL_KEY)


def fragment(func=None, **kwargs):
    """``st.fragment`` for the pages: a run of the fragment that finds the sidebar's dataset or model changed since
    the page was drawn reruns the whole app instead. A sidebar change made while a fragment is running can reach
    the server as a rerun of that fragment only (Streamlit 1.67: the Dataset picker showed digits while the page
    went on drawing Fashion-MNIST, tests/test_page_gradients.py)."""
    def wrap(f):
        @functools.wraps(f)
        def run(*args, **kw):
            drawn = st.session_state.get(DRAWN_KEY)
            if drawn is not None and _selection() != drawn:
                st.rerun(scope="app")
            return f(*args, **kw)
        return st.fragment(run, **kwargs)
    return wrap(func) if func is not None else wrap


def model_label(entry: zoo.ModelEntry) -> str:
    return f"{entry.id}  ·  {entry.card.metrics.get('accuracy', 0):.1%}"


def model_caption(entry: zoo.ModelEntry) -> str:
    return f"{entry.card.arch} trained on {entry.card.dataset} · input {entry.card.input_shape}"


def is_default(ds: Dataset, entry: zoo.ModelEntry) -> bool:
    """Whether (``ds``, ``entry``) is the selection a new session opens with."""
    return ds.name == default_dataset(dataset_choices()) and entry.id == default_model(fitting_models(ds)).id


@st.cache_data(show_spinner="Evaluating on the test split…", max_entries=32)
def evaluation(model_id: str, mtime: float, dataset_name: str) -> dict:
    """The model's classification report on the dataset's test split, plus its predictions (cached on disk)."""
    from vizcore.metrics import test_report

    return test_report(get_model(model_id, mtime), zoo.get_entry(model_id).weights, get_dataset(dataset_name))


def flash(message: str, dataset: str | None = None, model: str | None = None) -> None:
    """Rerun with ``dataset``/``model`` selected in the sidebar and ``message`` shown as a success note."""
    st.session_state["_flash"] = message
    st.session_state["_select"] = {DATASET_KEY: dataset, MODEL_KEY: model}
    st.rerun()


def show_flash() -> None:
    if msg := st.session_state.pop("_flash", None):
        st.success(msg)


def require() -> tuple[Dataset, zoo.ModelEntry, torch.nn.Module]:
    """:func:`current`, or an explanation and the end of the page when no dataset or fitting model is chosen."""
    ds, entry, model = current()
    if ds is None or entry is None or model is None:
        st.info("Pick a dataset and a model that fits it in the sidebar (train or upload one on *Models & data*).")
        st.stop()
    return ds, entry, model


def current() -> tuple[Dataset | None, zoo.ModelEntry | None, torch.nn.Module | None]:
    """(dataset, model entry, model) chosen in the sidebar; the model is the shared cached instance."""
    ds, entry = st.session_state.get("_dataset"), st.session_state.get("_entry")
    try:
        model = get_model(*model_key(entry)) if entry else None
    except (zoo.ModelFileError, OSError) as e:  # deleted or replaced meanwhile, or no longer passes its checks
        st.error(f"{entry.id}: {str(e).splitlines()[0]}")
        return ds, None, None
    return ds, entry, model


def require_images(ds, what: str) -> None:
    """Stop a page that works on images with one line when the sidebar's dataset is a table."""
    if ds.is_tabular:
        st.info(f"{what}; this model reads rows of a table. Prediction gradients of its dense units are on "
                "*Prediction gradients*, unit knockouts on *Knockout*.")
        st.stop()


def follow_defaults(**defaults) -> None:
    """Call before drawing the widgets keyed by ``defaults``' names: whenever these defaults are not the ones they were
    last given (the user picked a teacher with other defaults), set the widgets to them; a user's edits stand otherwise."""
    marker = "_defaults_" + "_".join(sorted(defaults))
    if st.session_state.get(marker) != defaults:
        st.session_state[marker] = defaults
        st.session_state.update(defaults)


def new_classes(key: str, names, value) -> bool:
    """Call before drawing widget ``key`` whose options are the classes ``names``: when they are not the classes it
    was last drawn with (the user switched model or dataset), set it to ``value`` and return True.

    A keyed widget keeps its identity when only its options change, so the browser would go on showing the old
    dataset's label (and the page would use its index); a value set here is sent to the browser. When this returns
    True the caller passes no default of its own to the widget (Streamlit warns about both in one run)."""
    seen, names = st.session_state.get(f"_classes_{key}"), list(names)
    st.session_state[f"_classes_{key}"] = names
    if seen is None or seen == names or key not in st.session_state:
        return False
    st.session_state[key] = value
    return True
