"""Model files: card round trip, the shipped zoo's numbers, and uploads that are safe and checked."""

import io
import json
import os
import pickle

import pytest
import torch
from safetensors.torch import save as st_save

from vizcore import zoo
from vizcore.data import load_dataset
from vizcore.metrics import evaluate_model, predict_logits
from vizcore.models import build_model


def test_save_load_round_trip(digits, digits_linear):
    card = zoo.ModelCard(name="rt", dataset="digits", arch="linear", input_shape=[1, 8, 8],
                         class_names=digits.class_names, seed=0, metrics={"accuracy": 0.5})
    entry = zoo.save_model(digits_linear, card)
    assert entry.id == "user:rt" and [e.id for e in zoo.list_models() if e.id.startswith("user:")] == ["user:rt"]
    loaded = zoo.load_model("user:rt")
    assert torch.equal(predict_logits(loaded, digits.test_x), predict_logits(digits_linear, digits.test_x))
    assert zoo.get_entry("rt").card == card
    assert not any(p.requires_grad for p in loaded.parameters())


def test_zoo_cards_are_reproducible():
    """`python -m vizcore evaluate` recomputes each shipped card's accuracy (digits and Yale: quick)."""
    entries = [e for e in zoo.list_models(include_user=False) if e.card.dataset in ("digits", "yale-faces")]
    assert {e.card.arch for e in entries} >= {"linear", "mlp", "cnn", "lenet_faces"}
    for e in entries:
        ds = load_dataset(e.card.dataset)
        got = evaluate_model(zoo.load_model(e), ds.test_x, ds.test_y, ds.class_names)["accuracy"]
        assert got == pytest.approx(e.card.metrics["accuracy"], abs=1e-9), e.id
        assert e.card.command.startswith("python -m vizcore train") and e.card.train_seconds > 0


def test_shipped_zoo_is_complete():
    have = {(e.card.dataset, e.card.arch) for e in zoo.list_models(include_user=False)}
    want = {("digits", a) for a in ("linear", "mlp", "cnn")} | {("yale-faces", "lenet_faces")} | {
        ("fashion-mnist", a) for a in ("linear", "mlp", "cnn", "cnn_s", "cnn_l", "cnn_tiny")}
    assert want <= have
    for e in zoo.list_models(include_user=False):
        per = e.card.metrics["per_class"]
        assert len(per) == len(e.card.class_names) and {"precision", "recall", "f1"} <= set(per[0])


class _Exploit:
    """Unpickling this runs os.system: a real malicious payload."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path, digits):
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"fc1.weight": _Exploit(marker)}, buf)
    with pytest.raises(zoo.ModelFileError, match="refused"):
        zoo.import_model(buf.getvalue(), "evil", digits, "linear")
    legacy = pickle.dumps({"w": _Exploit(marker)}, protocol=2)
    with pytest.raises(zoo.ModelFileError, match="refused"):
        zoo.read_state_dict(legacy)
    assert not marker.exists(), "the payload ran"
    assert not list(zoo.user_models_dir().iterdir())


def test_state_dict_and_safetensors_uploads(digits, digits_linear):
    sd = {k: v.clone() for k, v in digits_linear.state_dict().items()}
    buf = io.BytesIO()
    torch.save(sd, buf)
    e1 = zoo.import_model(buf.getvalue(), "from-pt", digits, "linear")
    e2 = zoo.import_model(st_save(sd), "from-st", digits, "linear")
    want = evaluate_model(digits_linear, digits.test_x, digits.test_y, digits.class_names)["accuracy"]
    assert e1.card.metrics["accuracy"] == e2.card.metrics["accuracy"] == want
    assert e1.weights.suffix == ".safetensors"  # stored as safetensors whatever came in


def test_torchscript_upload(digits, digits_cnn):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.trace(digits_cnn, digits.test_x[:2]), buf)
    e = zoo.import_model(buf.getvalue(), "ts", digits)
    assert e.card.format == "torchscript"
    loaded = zoo.load_model(e)
    assert torch.allclose(predict_logits(loaded, digits.test_x), predict_logits(digits_cnn, digits.test_x), atol=1e-5)


def test_misfit_says_what_fits(digits):
    fm = build_model("linear", (1, 28, 28), 10)
    with pytest.raises(zoo.ModelFileError, match=r"do not fit 'linear' for digits \(input \[1, 8, 8\], 10 classes\)"):
        zoo.import_model(st_save(fm.state_dict()), "wrong", digits, "linear")
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(build_model("linear", (1, 8, 8), 3)), buf)
    with pytest.raises(zoo.ModelFileError, match=r"outputs \[1, 3\], not \[1, 10\] \(the dataset has 10 classes\)"):
        zoo.import_model(buf.getvalue(), "three", digits)


@pytest.mark.parametrize("payload,msg", [
    (b"hello world", "not a model file"),
    (b"\x0d\x00\x00\x00\x00\x00\x00\x00{garbage....}", "not a valid safetensors"),
    (json.dumps({"a": 1}).encode(), "not a model file"),
])
def test_files_that_are_not_models(digits, payload, msg):
    with pytest.raises(zoo.ModelFileError, match=msg):
        zoo.import_model(payload, "x", digits, "linear")


def test_bad_names_and_zoo_protection():
    with pytest.raises(zoo.ModelFileError, match="must start with"):
        zoo.check_name("../escape")
    with pytest.raises(zoo.ModelFileError, match="cannot be deleted"):
        zoo.delete_model(zoo.list_models(include_user=False)[0])
