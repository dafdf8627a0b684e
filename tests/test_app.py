"""AppTest: the shell, Overview and Models & data pages, driven like a user would."""

import io
import os

import numpy as np
import torch
from streamlit.testing.v1 import AppTest

from vizcore.core import jobs
from vizcore import zoo

from conftest import APP


def _app():
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception
    return at


def _select(at, label, value):
    box = next(s for s in at.sidebar.selectbox if s.label == label)
    box.set_value(value).run()
    assert not at.exception


def test_starts_with_a_real_dataset_and_a_trained_model():
    at = _app()
    values = {s.label: s.value for s in at.sidebar.selectbox}
    assert values["Dataset"] in ("fashion-mnist", "digits")
    entry = zoo.get_entry(values["Model"])
    shown = {m.label: m.value for m in at.metric}
    assert shown["Test accuracy"] == f"{entry.card.metrics['accuracy']:.2%}"
    assert shown["Model card says"] == shown["Test accuracy"]


def test_switching_dataset_filters_models():
    at = _app()
    _select(at, "Dataset", "digits")
    models = next(s for s in at.sidebar.selectbox if s.label == "Model").options
    assert models and all(zoo.get_entry(m.split("  ·  ")[0]).card.input_shape == [1, 8, 8] for m in models)
    _select(at, "Model", "zoo:digits-linear")
    assert {m.label: m.value for m in at.metric}["Architecture"] == "linear"
    at.toggle(key="overview_only_wrong").set_value(True).run()
    assert not at.exception and any("misclassified" in c.value for c in at.caption)


def test_a_fragment_run_that_finds_the_sidebar_changed_reruns_the_whole_app(monkeypatch):
    """A sidebar change can reach the server as a rerun of a running fragment only (seen in Chromium on Prediction
    gradients: the picker said digits, the page went on with Fashion-MNIST); the pages' fragments then rerun the app."""
    from ui import state

    class Rerun(Exception):
        pass

    def rerun(scope):
        reruns.append(scope)
        raise Rerun

    reruns, bodies, session = [], [], {}
    monkeypatch.setattr(state.st, "fragment", lambda f, **kwargs: f)  # the body as a fragment run would call it
    monkeypatch.setattr(state.st, "rerun", rerun)
    monkeypatch.setattr(state.st, "session_state", session)

    @state.fragment
    def body():
        bodies.append(dict(session))

    body()  # no page drawn in this session yet (a quiz participant's screen): the fragment runs
    session.update({state.DATASET_KEY: "fashion-mnist", state.MODEL_KEY: "zoo:fashion-mnist-cnn",
                    state.DRAWN_KEY: ("fashion-mnist", "zoo:fashion-mnist-cnn")})
    body()  # the selection the page was drawn with
    assert len(bodies) == 2 and reruns == []
    session[state.DATASET_KEY] = "digits"
    try:
        body()
    except Rerun:
        pass
    assert reruns == ["app"] and len(bodies) == 2  # the whole app reruns, the stale body does not draw


def test_the_sidebar_records_the_selection_each_page_is_drawn_with():
    from ui import state

    at = _app()
    assert at.session_state[state.DRAWN_KEY] == (at.session_state[state.DATASET_KEY], at.session_state[state.MODEL_KEY])
    _select(at, "Dataset", "digits")
    assert at.session_state[state.DRAWN_KEY] == ("digits", at.session_state[state.MODEL_KEY])
    assert zoo.get_entry(at.session_state[state.MODEL_KEY]).card.input_shape == [1, 8, 8]


def _upload(name, payload):
    """An uploaded file as Streamlit hands it to a page (AppTest cannot drive file_uploader itself)."""
    from streamlit.runtime.uploaded_file_manager import UploadedFile, UploadedFileRec

    return UploadedFile(UploadedFileRec(file_id=name, name=name, type="application/octet-stream", data=payload), None)


class _Exploit:
    def __reduce__(self):
        return os.system, ("touch /tmp/vizcore-pwned-by-test",)


def _models_page(monkeypatch, files: dict):
    """Open Models & data with file_uploader returning ``files[key]``."""
    import streamlit as st

    real = st.file_uploader

    def fake(label, *a, key=None, **k):
        real(label, *a, key=key, **k)
        return files.get(key)

    monkeypatch.setattr(st, "file_uploader", fake)
    at = _app()
    _select(at, "Dataset", "digits")
    at.switch_page("pages/models_data.py").run()
    assert not at.exception
    return at


def test_malicious_checkpoint_upload_is_refused(monkeypatch):
    buf = io.BytesIO()
    torch.save({"fc1.weight": _Exploit()}, buf)
    at = _models_page(monkeypatch, {"up_model_file": _upload("evil.pt", buf.getvalue())})
    at.text_input(key="up_model_name").input("evil")
    at.selectbox(key="up_arch").set_value("linear")
    at.button[[b.label for b in at.button].index("Add model")].click().run()
    assert any("refused" in e.value for e in at.error)
    assert not os.path.exists("/tmp/vizcore-pwned-by-test")
    assert not any(e.id == "user:evil" for e in zoo.list_models())


def test_model_that_does_not_fit_gets_a_message(monkeypatch):
    from safetensors.torch import save

    from vizcore.models import build_model

    wrong = save(build_model("linear", (1, 28, 28), 10).state_dict())
    at = _models_page(monkeypatch, {"up_model_file": _upload("w.safetensors", wrong)})
    at.text_input(key="up_model_name").input("wrong")
    at.selectbox(key="up_arch").set_value("linear")
    at.button[[b.label for b in at.button].index("Add model")].click().run()
    assert any("input [1, 8, 8], 10 classes" in e.value for e in at.error)


def test_bad_and_good_dataset_uploads(monkeypatch, workspace):
    files = {"up_data_file": _upload("bad.npz", b"PK\x03\x04 not really")}
    at = _models_page(monkeypatch, files)
    at.text_input(key="up_data_name").input("bad")
    at.button[[b.label for b in at.button].index("Add dataset")].click().run()
    assert any("not a readable .npz" in e.value for e in at.error)
    buf = io.BytesIO()
    np.savez(buf, x=np.random.default_rng(0).integers(0, 255, (40, 6, 6), dtype=np.uint8), y=np.arange(40) % 2)
    files["up_data_file"] = _upload("good.npz", buf.getvalue())
    at.text_input(key="up_data_name").input("tiny")
    at.button[[b.label for b in at.button].index("Add dataset")].click().run()
    assert not at.error and (workspace / "datasets" / "tiny.npz").exists()
    box = next(s for s in at.sidebar.selectbox if s.label == "Dataset")
    assert box.value.endswith("tiny.npz") and any("now selected" in s.value for s in at.success)


def test_training_job_from_the_page_appears_in_the_picker(monkeypatch):
    at = _models_page(monkeypatch, {})
    at.selectbox(key="train_dataset").set_value("digits")
    at.selectbox(key="train_arch").set_value("linear")
    at.text_input(key="train_name").input("page-lin")
    at.number_input(key="train_epochs").set_value(2)
    at.button[[b.label for b in at.button].index("Start training")].click().run()
    assert not at.exception
    job = jobs.list_jobs("train")[0]
    assert jobs.wait_job(job.id, timeout=120).state == "done"
    at.run()
    models = next(s for s in at.sidebar.selectbox if s.label == "Model").options
    assert any(o.startswith("user:page-lin") for o in models)
    card = zoo.get_entry("user:page-lin").card
    assert card.command.startswith("python -m vizcore train --dataset digits --arch linear --name page-lin --epochs 2")


def test_an_existing_model_is_replaced_only_with_the_box_ticked(monkeypatch, digits_linear):
    from safetensors.torch import save

    at = _models_page(monkeypatch, {"up_model_file": _upload("w.safetensors", save(digits_linear.state_dict()))})

    def add():
        at.text_input(key="up_model_name").input("twice")
        at.selectbox(key="up_arch").set_value("linear")
        at.button[[b.label for b in at.button].index("Add model")].click().run()
        assert not at.exception

    add()
    assert not at.error and zoo.get_entry("user:twice")
    add()
    assert [e.value for e in at.error] == ["a model named 'twice' exists; choose another name or replace it "
                                           "explicitly (the Replace box, --overwrite)"]
    at.checkbox(key="up_model_overwrite").check()
    add()
    assert not at.error and any("Added `user:twice`" in s.value for s in at.success)


def test_the_warm_up_loads_what_a_new_session_opens_with(monkeypatch):
    """ui.serve's warm-up (state.preload) loads the sidebar's default dataset and model into the shared caches: the
    first page then loads neither again."""
    from ui import state

    state.get_dataset.clear()
    state.get_model.clear()
    loads = {"dataset": [], "model": []}
    real_dataset, real_model = state.data.load_dataset, state.zoo.load_model

    def load_dataset(name, **kw):
        loads["dataset"] += [] if kw else [name]  # decoding into the cache calls it again with cache=False
        return real_dataset(name, **kw)

    monkeypatch.setattr(state.data, "load_dataset", load_dataset)
    monkeypatch.setattr(state.zoo, "load_model", lambda mid: loads["model"].append(mid) or real_model(mid))
    state.preload()
    assert len(loads["dataset"]) == 1 and len(loads["model"]) == 1
    at = _app()
    values = {s.label: s.value for s in at.sidebar.selectbox}
    assert loads == {"dataset": [values["Dataset"]], "model": [values["Model"]]}  # the page loaded nothing new


def _draw_saved(rec):
    from ui.first_page import show_saved

    show_saved(rec, "Overview")


def test_the_overview_saves_the_first_page_a_new_server_draws_without_torch(monkeypatch):
    """The default Overview saves its record; a server whose warm-up is still importing PyTorch draws that record
    (every widget disabled) and reruns into the live page when the warm-up ends. A changed weights file voids it."""
    import threading

    from ui import first_page, warmup

    at = _app()
    rec = first_page.load()
    assert rec is not None and rec["model"] == at.sidebar.selectbox[1].value
    live = {m.label: m.value for m in at.metric}
    assert {label: value for label, value, _ in rec["metrics"]} == live
    assert rec["strip"] and rec["per_class"] and rec["confusion"]

    saved = AppTest.from_function(_draw_saved, args=(rec,), default_timeout=60)
    saved.run()
    assert not saved.exception
    assert {m.label: m.value for m in saved.metric} == live
    assert all(w.disabled for w in [*saved.sidebar.selectbox, *saved.toggle, *saved.slider])
    assert any("Starting PyTorch" in c.value for c in saved.caption)
    # its charts are pictures (a fresh browser draws them without fetching Plotly's script first)
    assert len(saved.get("image")) == 3 and not saved.get("plotly_chart")

    drawn = []
    real = first_page.show_saved

    def show_saved(rec, title):  # the warm-up ends once the saved page is drawn: no race with a slow machine
        drawn.append(title)
        real(rec, title)
        warmup._done.set()

    monkeypatch.setattr(first_page, "show_saved", show_saved)
    warmup._done.clear()  # a served app's first session, while the warm-up imports
    timer = threading.Timer(60.0, warmup._done.set)  # never left waiting if the saved page is not drawn
    timer.start()
    try:
        at = _app()
    finally:
        timer.cancel()
        warmup._done.set()
    assert drawn == ["Overview"]  # the saved page first, then the live page after the rerun
    assert not at.toggle[0].disabled and {m.label: m.value for m in at.metric} == live
    assert not any("Starting PyTorch" in c.value for c in at.caption)




def test_a_saved_first_page_is_void_once_its_weights_change(tmp_path):
    from ui import first_page

    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"x")
    rec = {"weights": {"path": str(weights), "mtime": weights.stat().st_mtime}, "metrics": []}
    first_page.save(rec)
    assert first_page.load() == rec
    os.utime(weights, (0, 1))  # another file under the same name
    assert first_page.load() is None
    first_page.path().write_text("{not json")
    assert first_page.load() is None
