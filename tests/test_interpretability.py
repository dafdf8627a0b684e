"""Seed 000's fooling-example and hidden-message rates on hand-made prediction arrays, recognizability by
independent judges on a tiny model whose answer is known, and the interpretability CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vizcore.explain.interpretability import (NO_ANSWER, agreement, difficulty, fooling_examples, hidden_messages,
                                              interpretability_table, judges_for, recognizability, zoo_judges)

# 6 images; the teacher h says 0 1 2 3 4 5
H = np.array([0, 1, 2, 3, 4, 5])
# three members of S: image 0 all agree; image 1 one disagrees (1 of 3: no); image 2 two disagree on DIFFERENT
# classes (2 of 3: yes); image 3 all disagree (yes); image 4 two disagree on the same class (yes);
# image 5: one answered and agrees, two did not answer (no)
S = np.array([[0, 0, 0],
              [1, 1, 9],
              [2, 7, 8],
              [9, 9, 9],
              [4, 6, 6],
              [5, NO_ANSWER, NO_ANSWER]])
HS = np.array([0, 1, 2, 8, 4, 5])  # h_s agrees with h except on image 3


def test_fooling_examples_follow_definition_4_1():
    assert fooling_examples(H, S).tolist() == [False, False, True, True, True, False]
    # a strict half is not a majority: 2 members, one disagrees
    assert fooling_examples([0], [[0, 1]]).tolist() == [False]
    assert fooling_examples([0], [[1, 1]]).tolist() == [True]
    # an image no member answered is not a fooling example; one answer that disagrees is a majority of one
    assert fooling_examples([0, 0], [[NO_ANSWER, NO_ANSWER], [3, NO_ANSWER]]).tolist() == [False, True]


def test_hidden_messages_follow_definition_4_2():
    # image 3 is a fooling example, but h_s disagrees with h there: no hidden message
    assert hidden_messages(H, HS, S).tolist() == [False, False, True, False, True, False]
    with pytest.raises(ValueError, match="h_s"):
        hidden_messages(H, HS[:3], S)


def test_difficulty_reports_rates_and_agreement_with_named_members():
    room = np.array([0, 1, NO_ANSWER, 0, 0, 0])  # a room's tally as one more member
    rep = difficulty(H, {"cnn_s": S[:, 0], "mlp": S[:, 1], "room": room}, HS)
    assert rep["n"] == 6
    assert rep["agreement"]["cnn_s"] == pytest.approx(5 / 6)
    assert rep["agreement"]["mlp"] == pytest.approx(2 / 5)  # image 5 not answered
    assert rep["agreement"]["room"] == pytest.approx(2 / 5)
    # of those who answered, more than half of (cnn_s, mlp, room) disagree with h on images 3 and 4 only
    # (image 2: one of two answers disagrees; image 5: one of two)
    assert rep["fooling_rate"] == pytest.approx(2 / 6)
    assert rep["hidden_rate"] == pytest.approx(1 / 6)  # image 4 (h_s disagrees with h on 3)
    assert rep["h_s_agreement"] == pytest.approx(5 / 6)
    plain = difficulty(H, S)
    assert list(plain["agreement"]) == ["S1", "S2", "S3"] and "hidden_rate" not in plain
    assert agreement([0, 1], [NO_ANSWER, NO_ANSWER]) is None
    with pytest.raises(ValueError, match="shape"):
        difficulty(H, S[:4])


def test_recognizability_per_judge_mean_and_min():
    r = recognizability([0, 0, 1, 1], {"a": np.array([0, 0, 1, 1]), "b": np.array([0, 1, 1, 0])})
    assert r == {"per_judge": {"a": 1.0, "b": 0.5}, "mean": 0.75, "min": 0.5}


def test_recognizability_of_a_linear_teachers_weight_rows_is_known(digits_linear):
    """A judge that IS a linear model: its own (positive part of the) weight rows are recognized by it;
    the same rows shown to a judge that reverses the classes are never recognized."""
    w = digits_linear.fc1.weight.detach().reshape(10, 1, 8, 8).clamp(min=0)
    images = w / w.amax((1, 2, 3), keepdim=True)
    labels = torch.arange(10)
    flip = torch.nn.Sequential(digits_linear, torch.nn.Linear(10, 10, bias=False))
    with torch.no_grad():
        flip[1].weight.copy_(torch.eye(10).roll(1, 0))  # class k's logit shows up as class k+1
    from vizcore.explain.interpretability import predictions

    ans = predictions({"self": digits_linear, "shifted": flip}, images)
    r = recognizability(labels, ans)
    assert r["per_judge"]["shifted"] == 0.0
    assert r["per_judge"]["self"] >= 0.9
    t = interpretability_table(digits_linear, {"shifted": flip}, {"rows": images}, h_s=digits_linear)
    assert t["sets"]["rows"]["fooling_rate"] == 1.0 and t["sets"]["rows"]["hidden_rate"] == 1.0


def test_judges_exclude_the_teacher_and_fall_back_to_a_quick_judge(digits):
    entries = zoo_judges("zoo:digits-cnn", digits)
    ids = [e.id for e in entries]
    assert "zoo:digits-cnn" not in ids and {"zoo:digits-linear", "zoo:digits-mlp"} <= set(ids)
    from vizcore.data import Dataset

    small = Dataset("tiny-set", digits.train_x[:200], digits.train_y[:200], digits.test_x[:100], digits.test_y[:100],
                    list(digits.class_names), "test")
    judges, line = judges_for(None, small, quick=False)
    assert judges == {} and "no independent judge" in line
    judges, line = judges_for(None, small)
    assert list(judges) == ["quick judge"] and "trained here" in line


def test_cli_interpretability_json(capsys):
    from vizcore.cli import main

    rc = main(["interpretability", "--model", "zoo:digits-cnn", "--per-class", "2", "--real", "200",
               "--hs-epochs", "3", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    sets = out["sets"]
    assert set(sets) == {"real test images", "visualizations (page default)", "generator AM (IMGS)",
                         "generator AM + Loss_2 (IMGS+L)"}
    assert sets["real test images"]["n"] == 200 and sets["visualizations (page default)"]["n"] == 20
    for rep in sets.values():
        assert 0 <= rep["hidden_rate"] <= rep["fooling_rate"] <= 1
    assert set(out["S"]) == {"zoo:digits-linear", "zoo:digits-mlp"}
    assert main(["interpretability", "--model", "zoo:digits-cnn", "--real", "0"]) == 2


def _toy_faces(seed: int = 0):
    """8x8 'faces': each of 6 people is a fixed random pattern, lit from the left, the right or the front
    (a brightness ramp), 12 pictures each; every fourth picture is a test picture."""
    g = torch.Generator().manual_seed(seed)
    people = torch.rand(6, 1, 8, 8, generator=g)
    ramp = torch.linspace(-0.4, 0.4, 8).expand(8, 8)
    light = torch.stack([-ramp, ramp, torch.zeros(8, 8)])[:, None]
    person = torch.arange(6).repeat_interleave(12)
    task = torch.arange(3).repeat(24)
    x = (0.5 * people[person] + 0.25 + light[task] + 0.05 * torch.randn(72, 1, 8, 8, generator=g)).clamp(0, 1)
    test = torch.arange(72) % 4 == 0
    return x, task, person, test


def test_leakage_experiment_on_toy_faces():
    from vizcore.distill.leakage import LeakageConfig, leakage_experiment

    x, task, person, test = _toy_faces()
    cfg = LeakageConfig(arch="cnn_tiny", n_synthetic=20, epochs=150, seed=0)
    out = leakage_experiment(x, task, person, test, ["left", "right", "front"], cfg)
    teams = [set(r["people"]) for r in out["teams"]]
    assert teams[0].isdisjoint(teams[1]) and teams[0] | teams[1] == set(range(6))
    for r in out["teams"]:
        assert r["test_images"] == 9 and r["train_images"] == 27 and sum(r["synthetic_class_counts"]) == 20
        assert r["task_real"] >= 0.8  # lighting is easy
        assert r["identifier_real"] >= 0.8  # three fixed patterns per team are easy to tell apart
        assert 0 <= r["identifier_synthetic"] <= 1 and 0 <= r["student_synthetic"] <= 1
    assert out["chance"] == {"task_balanced_accuracy": 1 / 3, "identifier": 0.5}


def test_leakage_needs_condition_tags(digits):
    from vizcore.distill.leakage import LeakageConfig, identity_leakage

    with pytest.raises(ValueError, match="condition tags"):
        identity_leakage(digits, LeakageConfig(arch="cnn_tiny"))
    with pytest.raises(ValueError, match="data-free"):
        LeakageConfig(method="class-averages")
