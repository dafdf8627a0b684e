"""Seed 003 preset (d): class-subset teachers and one swapped class visualization."""

from __future__ import annotations

import json

import torch

from conftest import assert_untouched, weights_snapshot
from vizcore.distill.presets import PIXEL_AM, _swap, binary_task, class_subset_preset
from vizcore.distill.synthesis import synthesize
from vizcore.train import TrainConfig
from vizcore.zoo import ModelCard, save_model


def test_binary_tasks_are_one_class_against_another_or_a_balanced_rest(digits):
    x, y = binary_task((digits.train_x, digits.train_y), 3, 4)
    assert len(x) == int((digits.train_y == 3).sum() + (digits.train_y == 4).sum())
    assert int((y == 0).sum()) == int((digits.train_y == 3).sum())
    x, y = binary_task((digits.train_x, digits.train_y), 3, None)
    assert int((y == 0).sum()) == int((y == 1).sum()) == int((digits.train_y == 3).sum())


def test_swap_replaces_one_image_and_relabels_it_with_the_ten_class_teacher(digits, digits_linear):
    base = synthesize(digits_linear, PIXEL_AM, input_shape=digits.input_shape, class_names=digits.class_names)
    new = torch.rand(*digits.input_shape)
    swapped = _swap(base, 3, new, digits_linear)
    assert torch.equal(swapped.images[3], new) and torch.equal(swapped.images[:3], base.images[:3])
    assert torch.equal(swapped.images[4:], base.images[4:])
    assert torch.allclose(swapped.logits[3], digits_linear(new[None])[0].detach(), atol=1e-5)
    assert torch.equal(swapped.logits[4:], base.logits[4:])


def test_preset_d_trains_on_visualizations_and_reads_the_test_split_once_at_the_end(digits, digits_linear):
    events = []

    def recorded(name, split):
        return lambda: events.append(name) or split

    before = weights_snapshot(digits_linear)
    out = class_subset_preset(digits_linear, "linear", class_names=digits.class_names, input_shape=digits.input_shape,
                              load_train=recorded("train", (digits.train_x, digits.train_y)),
                              load_test=recorded("test", (digits.test_x, digits.test_y)),
                              teacher_training=TrainConfig(epochs=30, lr=0.01, batch_size=64))
    assert_untouched(digits_linear, before)
    assert events == ["train", "test"]
    assert [r["task"] for r in out["two_class"]] == ["3 vs 4", "3 vs all"]
    for r in out["two_class"]:  # two visualizations retrain a two-class model (seed 003: 99.7 % on 3 vs 4)
        assert r["teacher_accuracy"] > 0.9 and r["student_accuracy"] > 0.9
    names = [r["training set"] for r in out["ten_class"]]
    assert names == ["10-class visualizations", "10-class, 3 swapped from 3 vs 4", "10-class, 3 swapped from 3 vs all"]
    assert out["ten_class"][0]["ratio"] > 0.9 and all(len(r["f1"]) == 10 for r in out["ten_class"])


FAKE = {"class": 5, "versus": 6, "teacher_accuracy": 0.9,
        "two_class": [{"task": "5 vs 6", "teacher_accuracy": 1.0, "student_accuracy": 0.99}],
        "ten_class": [{"training set": "10-class visualizations", "accuracy": 0.9, "ratio": 1.0, "f1": [0.9] * 10}]}


def fake_preset(calls):
    def preset(teacher, arch, **kw):
        calls.append((arch, kw["cls"], kw["versus"], kw["teacher_training"].epochs))
        return FAKE
    return preset


def test_cli_preset_d_runs_the_preset_as_a_job_with_the_chosen_classes(digits, digits_linear, workspace, capsys,
                                                                       monkeypatch):
    from vizcore.core import jobs
    from vizcore.distill import presets
    from vizcore.cli import main

    calls = []
    monkeypatch.setattr(presets, "class_subset_preset", fake_preset(calls))  # the computation is tested above
    card = ModelCard(name="tiny-linear", dataset="digits", arch="linear", input_shape=list(digits.input_shape),
                     class_names=digits.class_names, metrics={"accuracy": 0.9}, hyperparameters={"epochs": 7})
    tid = save_model(digits_linear, card).id
    assert main(["distill-preset", "seed003-subset", "--teacher", tid, "--class", "5", "--versus", "6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == FAKE
    assert calls == [("linear", 5, 6, 7)]  # the two-class teachers are trained like the teacher (its card)
    assert [j.state for j in jobs.list_jobs(presets.JOB_KIND)] == ["done"]
    assert main(["distill-preset", "seed003-subset", "--teacher", tid, "--class", "5", "--versus", "5"]) == 2
    assert "two different classes" in capsys.readouterr().err
