"""Hostile uploads (tests/hostile_corpus.py): each gets its specific one-line refusal, touches nothing outside the
workspace, writes nothing into it, and leaves the process healthy. Models that only the confined child process
can judge run there with small limits; the rest of their checks are also asserted in-process."""

import io
import json
import os
import re
import subprocess
import sys
import threading
import time

import pytest
import torch
from conftest import ROOT
from hostile_corpus import (
    CASES,
    BatchDependent,
    CountsCalls,
    MutatesWeights,
    NaNOutput,
    NoParameters,
    ValueSizedAllocation,
    make_victim,
    png_bomb,
    run_case,
    snapshot,
)

from vizcore import data, torchscript, zoo
from vizcore.cli import main
from vizcore.core.layers import model_device
from vizcore.models import build_model

SMALL = torchscript.SandboxLimits(memory_bytes=2**30, cpu_seconds=3, wall_seconds=120, probe_batch=32)
# Reach the child process end to end (each costs a Python + torch start); the other child cases are judged by the
# same functions in-process below.
END_TO_END = {"ts-12gb-allocation", "ts-constant-output", "ts-no-parameters", "ts-cpu-hog"}


def _workspace_files(home):
    return sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file() and p.parent.name != "locks")


def _healthy():
    assert torch.ones(3).sum().item() == 3.0
    assert zoo.load_model("zoo:digits-linear")(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


@pytest.mark.parametrize("case", [c for c in CASES if not c.child or c.name in END_TO_END], ids=lambda c: c.name)
def test_hostile_case(case, tmp_path, digits, workspace):
    victim = make_victim(tmp_path)
    before = snapshot(victim)
    outcome, message = run_case(case, victim, digits, SMALL)
    assert snapshot(victim) == before, "a file outside the workspace was created or changed"
    if case.expect:
        assert outcome == "refused" and re.search(case.expect, message), message
        assert "\n" not in message.strip() and "Traceback" not in message
        assert _workspace_files(workspace) == [], "a refused upload wrote to the workspace"
    else:
        assert outcome == "accepted", message
    _healthy()


def _loaded(module):
    buf = io.BytesIO()
    torch.jit.save(torch.jit.script(module), buf)
    torchscript.inspect_archive(buf.getvalue())  # these pass the archive scan: only the graph walk or run catches them
    return torch.jit.load(io.BytesIO(buf.getvalue()))


@pytest.mark.parametrize("module,msg", [
    (MutatesWeights(), r"changes the model's own weights in place \(aten::add_\)"),
    (ValueSizedAllocation(), r"turns tensor values into numbers \(aten::Int\)"),
    (CountsCalls(), r"uses prim::SetAttr \(changing the model's own state\)"),
])
def test_graph_walk_names_the_op(module, msg):
    assert re.search(msg, torchscript.graph_message(_loaded(module)))


@pytest.mark.parametrize("module,msg", [
    (BatchDependent(), "depends on the other images in its batch"),
    (NaNOutput(), "not finite"),
])
def test_fit_check_runs_batches_of_one_and_several(module, msg):
    model = _loaded(module)
    assert torchscript.graph_message(model) is None
    assert msg in zoo.fit_message(model, (1, 8, 8), 10)


@pytest.mark.parametrize("arch", ["linear", "mlp", "cnn", "cnn_s", "cnn_l", "cnn_tiny", "lenet_faces"])
def test_every_zoo_architecture_passes_as_torchscript(arch):
    """The allowlist is not so strict that ordinary classifiers fail: scripted and traced zoo models pass."""
    shape = (1, 60, 60) if arch == "lenet_faces" else (1, 28, 28)
    m = build_model(arch, shape, 10, seed=0)
    for sm in (torch.jit.script(m), torch.jit.trace(m, torch.zeros(2, *shape))):
        buf = io.BytesIO()
        torch.jit.save(sm, buf)
        model = torchscript.load_checked(buf.getvalue())
        assert zoo.fit_message(model, shape, 10, probe_batch=8) is None


def test_model_device_without_parameters():
    assert model_device(NoParameters()) == torch.device("cpu")
    assert model_device(torch.nn.BatchNorm2d(3, affine=False)) == torch.device("cpu")


def test_torchscript_models_are_checked_again_when_loaded(tmp_path, digits, workspace):
    """A .pt placed in the workspace by hand is scanned before torch.jit.load, like an upload."""
    from hostile_corpus import Prints, _script

    card = zoo.ModelCard(name="planted", dataset="digits", arch="torchscript", input_shape=[1, 8, 8],
                         class_names=digits.class_names, format="torchscript")
    entry = zoo.save_model(torch.jit.script(NoParameters()), card)
    assert zoo.load_model(entry)(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    entry.weights.write_bytes(_script(Prints()))
    (entry.weights.parent / "planted.json").write_text(json.dumps(card.to_dict()))  # an older-layout card beside it
    with pytest.raises(zoo.ModelFileError, match=r"prim::Print"):
        zoo.load_model("user:planted")


# ------------------------------------------------------------------------------------- the workspace


def test_existing_name_needs_overwrite_and_replacing_removes_the_other_format(digits, digits_linear):
    from safetensors.torch import save as st_save

    zoo.import_model(st_save(digits_linear.state_dict()), "mine", digits, "linear")
    with pytest.raises(zoo.ModelExists, match="a model named 'mine' exists"):
        zoo.import_model(st_save(digits_linear.state_dict()), "mine", digits, "linear")
    card = zoo.ModelCard(name="mine", dataset="digits", arch="torchscript", input_shape=[1, 8, 8],
                         class_names=digits.class_names, format="torchscript")
    with pytest.raises(zoo.ModelExists):
        zoo.save_model(torch.jit.script(NoParameters()), card)
    e = zoo.save_model(torch.jit.script(NoParameters()), card, overwrite=True)
    files = sorted(p.name for p in zoo.user_models_dir().iterdir())
    assert files == ["mine.pt"] and e.weights.name == "mine.pt"
    got, model = zoo.open_model("user:mine")
    assert got.format == "torchscript" and not list(model.parameters())


def test_dataset_name_needs_overwrite(workspace):
    from hostile_corpus import X, Y, _npz

    path, ds = data.import_npz(_npz(x=X, y=Y), "mine")
    with pytest.raises(data.DatasetError, match="a dataset named 'mine' exists"):
        data.import_npz(_npz(x=X[:20], y=Y[:20]), "mine")
    data.import_npz(_npz(x=X[:20], y=Y[:20]), "mine", overwrite=True)
    assert len(data.load_dataset(f"npz:{path}").train_x) == 15


def test_old_card_and_weights_pairs_still_load(digits, digits_linear):
    """Workspaces from before one-file models keep working (the zoo ships in that layout)."""
    from safetensors.torch import save as st_save

    folder = zoo.user_models_dir()
    (folder / "old.safetensors").write_bytes(st_save(digits_linear.state_dict()))
    (folder / "old.json").write_text(json.dumps(zoo.ModelCard(name="old", dataset="digits", arch="linear",
                                                              input_shape=[1, 8, 8],
                                                              class_names=digits.class_names).to_dict()))
    model = zoo.load_model("user:old")
    assert torch.equal(model(digits.test_x[:5]), digits_linear(digits.test_x[:5]))


WRITER = """
import sys, torch
from vizcore import zoo
from vizcore.models import build_model
tag, n = sys.argv[1], int(sys.argv[2])
model = build_model("linear", (1, 8, 8), 10)
for p in model.parameters():
    torch.nn.init.constant_(p, 1.0 if tag == "A" else 2.0)
fmt = "safetensors" if tag == "A" else "torchscript"
if fmt == "torchscript":
    model = torch.jit.script(model)
card = zoo.ModelCard(name="race", dataset="digits", arch="linear", input_shape=[1, 8, 8],
                     class_names=[str(i) for i in range(10)], format=fmt, notes=tag)
print("ready", flush=True)
for _ in range(n):
    zoo.save_model(model, card, overwrite=True)
"""


def test_two_writers_and_many_readers_never_see_a_torn_model(workspace, tmp_path):
    """Two processes replace one name (alternating formats) while 4 threads load it: no load fails and every
    card is paired with its own weights."""
    env = {**os.environ, "VIZCORE_HOME": str(workspace), "PYTHONPATH": str(ROOT)}
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [subprocess.Popen([sys.executable, str(script), tag, "30"], env=env, stdout=subprocess.PIPE)
             for tag in ("A", "B")]
    for p in procs:
        assert p.stdout.readline().strip() == b"ready"
    while not any(p.suffix in (".pt", ".safetensors") for p in zoo.user_models_dir().iterdir()):
        time.sleep(0.05)
    loads, failures = [0], []

    def reader():
        x = torch.zeros(1, 1, 8, 8)
        while any(p.poll() is None for p in procs):
            try:
                card, model = zoo.open_model("user:race")
                want = 1.0 if card.notes == "A" else 2.0
                out = model(x)  # bias only, = its writer's constant
                if not torch.all(out == want) or card.format != ("safetensors" if card.notes == "A" else "torchscript"):
                    failures.append(f"card {card.notes} with weights {out[0, 0].item()}")
                loads[0] += 1
            except Exception as e:  # any failed load is what this test counts
                failures.append(repr(e))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [p.wait() for p in procs] == [0, 0]
    assert failures == [] and loads[0] > 20
    assert len([p for p in zoo.user_models_dir().iterdir() if not p.name.startswith(".")]) == 1


# ------------------------------------------------------------------------------------- the CLI


def _cli(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_imports_use_the_same_checks(capsys, tmp_path, digits_linear):
    from hostile_corpus import X, Y, _npz, npz_label_1e9
    from safetensors.torch import save as st_save

    (tmp_path / "w.safetensors").write_bytes(st_save(digits_linear.state_dict()))
    code, out, _ = _cli(capsys, "zoo", "import", str(tmp_path / "w.safetensors"), "--dataset", "digits", "--arch",
                        "linear", "--json")
    assert code == 0 and json.loads(out)["id"] == "user:w"
    code, _, err = _cli(capsys, "zoo", "import", str(tmp_path / "w.safetensors"), "--dataset", "digits", "--arch",
                        "linear", "--json")
    assert code == 2 and "error: a model named 'w' exists" in err
    code, out, _ = _cli(capsys, "zoo", "import", str(tmp_path / "w.safetensors"), "--dataset", "digits", "--arch",
                        "linear", "--overwrite", "--json")
    assert code == 0
    (tmp_path / "good.npz").write_bytes(_npz(x=X, y=Y))
    code, out, _ = _cli(capsys, "data", "import", str(tmp_path / "good.npz"), "--json")
    assert code == 0 and json.loads(out)["classes"] == 4
    (tmp_path / "bad.npz").write_bytes(npz_label_1e9())
    code, out, err = _cli(capsys, "data", "import", str(tmp_path / "bad.npz"), "--name", "bad", "--json")
    assert code == 2 and out == "" and err.startswith("error: bad: labels run up to 1000000000")
    code, _, err = _cli(capsys, "data", "import", str(tmp_path / "good.npz"), "--name", "ok\n")
    assert code == 2 and "must start with" in err


def test_png_bomb_in_an_image_folder_is_a_clear_error(capsys, tmp_path):
    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        (tmp_path / c / "0.png").write_bytes(png_bomb())
    code, _, err = _cli(capsys, "train", "--dataset", f"image-folder:{tmp_path}", "--arch", "linear")
    assert code == 2 and err.startswith("error: ") and "decompression bomb" in err
