"""Students, the data-free protocol, runs as jobs and the run store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from conftest import ROOT, assert_untouched, weights_snapshot
from vizcore.core import jobs
from vizcore.distill import protocol, students
from vizcore.distill.students import StudentConfig, bias_only_student, train_student
from vizcore.distill.synthesis import SynthesisConfig, synthesize
from vizcore.zoo import ModelCard, save_model

AM = SynthesisConfig(method="generator-am", n=120, images_per_generator=12, max_steps=40, pre_steps=3, threshold=0.9)


@pytest.fixture(scope="module")
def synth(digits, digits_cnn):
    return synthesize(digits_cnn, AM, input_shape=digits.input_shape, class_names=digits.class_names)


def agreement(student, teacher, x) -> float:
    from vizcore.metrics import predict_logits

    return float((student.predict(x) == predict_logits(teacher, x).argmax(1).numpy()).mean())


@pytest.mark.parametrize("arch,labels,floor", [("linear", "soft", 0.25), ("cnn_s", "soft", 0.4), ("svm", "hard", 0.2)])
def test_student_from_synthetic_set_agrees_with_teacher_far_above_chance(digits, digits_cnn, synth, arch, labels, floor):
    s = train_student(synth, StudentConfig(arch=arch, labels=labels, epochs=30, lr=0.01, batch_size=32))
    # real test images were never seen; chance agreement on 10 classes is about 0.1 (SVMs learn least from
    # visualizations, as in seed 000 Table 1, and a linear student little more on 120 images)
    assert agreement(s, digits_cnn, digits.test_x) > floor
    assert 0 <= s.selection["score"] <= 1


@pytest.mark.parametrize("arch", ["svm", "rf"])
def test_sklearn_students_are_blind_to_image_brightness(synth, digits, arch):
    """Synthetic pictures are dimmer than real ones; scikit-learn students see each image at unit norm."""
    s = train_student(synth, StudentConfig(arch=arch, labels="hard"))
    x = digits.test_x[:200]
    assert (s.predict(x) == s.predict(0.3 * x)).mean() > 0.99


def test_selection_keeps_the_best_holdout_checkpoint(synth):
    s = train_student(synth, StudentConfig(arch="linear", epochs=10, checkpoints=5, lr=0.01, batch_size=32))
    hist = s.selection["history"]
    assert len(hist) == 5 and s.selection["score"] == max(hist)
    _, ho = students.holdout_split(len(synth), 0.1, 0)
    hold = synth.subset(ho)
    agree, neg_ce = students.selection_score(s.model, hold.images, hold.labels, hold.probs)
    assert agree == pytest.approx(max(hist)) and -neg_ce == pytest.approx(s.selection["cross_entropy"])


def test_bias_only_student_trains_only_the_biases(synth):
    protos = protocol._prototypes(synth)
    s = bias_only_student(protos, synth, StudentConfig(arch="linear", epochs=5, lr=0.1, batch_size=32))
    assert torch.equal(s.model.fc1.weight, protos.flatten(1))  # bit-identical
    assert float(s.model.fc1.bias.detach().abs().sum()) > 0  # the biases moved from zero
    assert [n for n, p in s.model.named_parameters() if p.requires_grad] == ["fc1.bias"]


def test_protocol_reads_the_test_split_once_after_every_model_is_final(digits, digits_cnn, monkeypatch):
    events: list[str] = []
    fitted = []
    real_fit = students.fit_student

    def counting_fit(*a, **kw):
        s = real_fit(*a, **kw)
        fitted.append(s)
        events.append("fit")
        return s

    monkeypatch.setattr(protocol, "fit_student", counting_fit)
    monkeypatch.setattr(students, "fit_student", counting_fit)

    def load_test():
        events.append("test")
        return digits.test_x, digits.test_y

    def load_train():
        events.append("train")
        return digits.train_x, digits.train_y

    cfg = protocol.DistillConfig("t", "digits", SynthesisConfig(method="generator-am", n=30, batch_size=15, max_steps=10),
                             (StudentConfig(arch="linear", epochs=2), StudentConfig(arch="rf")), sizes=(10,))
    before = weights_snapshot(digits_cnn)
    rep = protocol.run_distillation(digits_cnn, cfg, class_names=digits.class_names, input_shape=digits.input_shape,
                                load_test=load_test, load_train=load_train)
    assert_untouched(digits_cnn, before)
    # 2 students + 2 baselines + 1 synthetic and 1 real size-sweep model, all fitted before the one test read
    assert events.count("test") == 1 and events[-1] == "test" and events.count("fit") == 6
    assert rep["teacher"]["accuracy"] > 0.8 and len(rep["students"]) == 2 and len(rep["baselines"]) == 2
    assert rep["students"][0]["report"]["n"] == len(digits.test_y)


def test_one_real_baseline_per_architecture(digits, digits_cnn):
    """Two settings of one architecture (stored labels, teacher in the loop) share one real-data baseline."""
    cfg = protocol.DistillConfig("t", "digits", SynthesisConfig(method="uniform-noise", n=60),
                             (StudentConfig(arch="linear", epochs=1), StudentConfig(arch="linear", epochs=1, relabel=True),
                              StudentConfig(arch="rf")), baseline=True)
    rep = protocol.run_distillation(digits_cnn, cfg, class_names=digits.class_names, input_shape=digits.input_shape,
                                load_test=lambda: (digits.test_x, digits.test_y),
                                load_train=lambda: (digits.train_x, digits.train_y))
    assert [s["name"] for s in rep["students"]] == ["linear-soft", "linear-relabel", "rf"]
    assert [b["name"] for b in rep["baselines"]] == ["linear (real data)", "rf (real data)"]


def test_data_free_run_never_reads_real_training_data(digits, digits_cnn):
    def forbidden():
        raise AssertionError("the real training split was read")

    cfg = protocol.DistillConfig("t", "digits", SynthesisConfig(method="generator-am", n=20, batch_size=10, max_steps=5),
                             (StudentConfig(arch="linear", epochs=1),), baseline=False)
    rep = protocol.run_distillation(digits_cnn, cfg, class_names=digits.class_names, input_shape=digits.input_shape,
                                load_test=lambda: (digits.test_x, digits.test_y), load_train=forbidden)
    assert rep["baselines"] == [] and rep["synthesis"]["used_real_data"] is False


@pytest.fixture
def teacher_id(digits_cnn, digits, workspace):
    card = ModelCard(name="tiny-digits", dataset="digits", arch="cnn_s", input_shape=list(digits.input_shape),
                     class_names=digits.class_names, metrics={"accuracy": 0.9})
    return save_model(digits_cnn, card).id


def test_cancel_mid_run_leaves_no_half_written_artifact(teacher_id):
    cfg = protocol.DistillConfig(teacher_id, "digits", SynthesisConfig(n=2000, images_per_generator=10, max_steps=500, threshold=0.9999),
                             (StudentConfig(arch="linear", epochs=1),), baseline=False)
    job = protocol.start_run(cfg)
    while jobs.get_job(job.id).progress <= 0:
        time.sleep(0.05)
    jobs.cancel_job(job.id)
    final = jobs.wait_job(job.id)
    assert final.state == "cancelled"
    assert sorted(p.name for p in final.dir.iterdir()) == ["cancel", "job.json"]
    assert [r["state"] for r in protocol.list_runs()] == ["cancelled"]


def test_finished_run_reopens_in_a_new_process(teacher_id, workspace):
    cfg = protocol.DistillConfig(teacher_id, "digits", SynthesisConfig(n=20, batch_size=10, max_steps=5),
                             (StudentConfig(arch="linear", epochs=1),), baseline=False)
    job = protocol.start_run(cfg, wait=True)
    assert job.state == "done"
    code = ("import json; from vizcore.distill import protocol; r = protocol.list_runs()[0]; rep = protocol.load_report(r['id']); "
            "s = protocol.load_synthetic(r['id']); print(json.dumps([r['state'], rep['students'][0]['accuracy'], len(s)]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**os.environ, "VIZCORE_HOME": str(workspace)})
    state, acc, n = json.loads(out.stdout)
    assert state == "done" and n == 20
    assert acc == protocol.load_report(job.id)["students"][0]["accuracy"]
    assert protocol.DistillConfig.from_dict(jobs.get_job(job.id).config) == cfg
    csv = protocol.report_csv(protocol.load_report(job.id))
    assert csv.splitlines()[0] == "role,model,class,precision,recall,f1,support" and len(csv.splitlines()) == 1 + 2 * 10


def test_cli_distill_prints_the_issue_figures(teacher_id, capsys):
    from vizcore.cli import main
    from vizcore.distill.methods import DEFAULT_METHOD

    assert main(["distill", "--teacher", teacher_id, "--n", "20", "--train-steps", "5", "--student", "linear",
                 "--budget", "10", "--epochs", "1", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert {"teacher_accuracy", "students", "baselines", "synthesis_seconds", "seconds"} <= set(out)
    assert out["method"] == DEFAULT_METHOD and out["students"][0]["name"] == "linear-engine"
    assert "10 engine steps per student; estimated" in captured.err  # the budget and its estimate, before the run
    assert len(out["students"][0]["f1"]) == 10 and out["baselines"][0]["name"] == "linear (real data)"
    assert main(["distill", "--teacher", teacher_id, "--method", "pixel-am", "--n", "20", "--steps", "5", "--no-engine",
                 "--student", "linear,rf", "--relabel", "--no-baseline", "--epochs", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in out["students"]] == ["linear-relabel", "rf"]  # forests are fitted once
    assert main(["distill", "--teacher", teacher_id, "--student", "resnet"]) == 2
    assert "unknown student" in capsys.readouterr().err


def test_cli_presets_print_seed000_tables(teacher_id, capsys):
    """Table 1: one synthetic set, the teacher's architecture and seed 000's other students, each with its
    real-data baseline; Table 2: accuracy against size with real subsets of the same sizes."""
    from vizcore.cli import main
    from vizcore.distill.seed_tables import TABLE1_STUDENTS

    common = ["--teacher", teacher_id, "--method", "pixel-am", "--steps", "5", "--epochs", "1", "--json"]
    assert main(["distill-preset", "table1", "--n", "60", *common]) == 0
    t1 = json.loads(capsys.readouterr().out)
    assert t1["method"] == "pixel-am" and t1["n"] == 60 and t1["seed_figures"]["rows"]["CNN_ID"] == [99.30, 95.51]
    names = [s["name"] for s in t1["students"]]
    assert names[0] == "cnn_s-hard" and {"mlp3-hard", "rf", "svm"} <= set(names)  # the card says cnn_s; T1: hard
    assert len(names) == len(set(names)) == len(set(TABLE1_STUDENTS) | {"cnn_s"})
    assert [b["name"] for b in t1["baselines"]] == [f"{n.split('-')[0]} (real data)" for n in names]
    assert main(["distill-preset", "table2", "--n", "450", *common]) == 0
    t2 = json.loads(capsys.readouterr().out)
    assert [r["size"] for r in t2["sweep"]] == [400, 450] and all(r["real"] is not None for r in t2["sweep"])


def test_presets_default_to_the_papers_settings(teacher_id):
    """A preset run as a user runs it uses the settings that reproduce its paper; any option overrides."""
    from vizcore import zoo
    from vizcore.cli import build_parser
    from vizcore.cli.distill_cmd import preset_configs
    from vizcore.distill.seed_tables import SEED003_SYNTHESIS
    from vizcore.distill.students import SEED003_STUDENT

    entry = zoo.get_entry(teacher_id)

    def configs(*argv):
        return preset_configs(build_parser().parse_args(["distill-preset", *argv, "--teacher", teacher_id]), entry)
    [t7] = configs("table7")
    assert (t7.synthesis.method, t7.synthesis.threshold, t7.synthesis.threshold_max) == ("generator-am", 0.9, 0.99)
    assert t7.students[0].labels == "soft" and t7.engine is None and t7.sizes == (400, 4000, 12_000)
    [t6] = configs("table6", "--n", "5000")
    assert t6.students[0].labels == "hard" and t6.synthesis.threshold_max == 0.99 and t6.sizes == (400, 4000, 5000)
    [t1] = configs("table1")
    assert t1.synthesis.threshold == 0.99 and t1.synthesis.threshold_max is None and t1.students[0].labels == "hard"
    vis, *_ = configs("seed003")
    assert vis.synthesis == SEED003_SYNTHESIS and vis.preset == "bias-only"
    assert vis.students[0] == SEED003_STUDENT.__class__(**{**SEED003_STUDENT.__dict__, "arch": "cnn_s"})
    assert configs("seed003", "--lr", "0.5")[0].students[0].lr == 0.5


def test_brightness_relabel_rescales_each_image_and_asks_the_teacher(synth, digits_cnn):
    dim = synth.images[:32] * 0.2
    x, t = students.brightness_relabel(digits_cnn, temperature=2.0, seed=5)(dim)
    assert x.min() >= 0 and x.max() <= 1
    factor = x.flatten(1).sum(1) / dim.flatten(1).sum(1)
    peak = dim.flatten(1).amax(1)
    assert torch.allclose(x, (dim * factor[:, None, None, None]).clamp(0, 1), atol=1e-5)
    assert (factor >= 1 - 1e-5).all() and (factor <= 1 / peak + 1e-4).all() and factor.std() > 0.1
    with torch.no_grad():
        assert torch.allclose(t, (digits_cnn(x) / 2.0).softmax(1))
    x2, _ = students.brightness_relabel(digits_cnn, temperature=2.0, seed=5)(dim)
    assert torch.equal(x, x2)


def test_relabel_teaches_the_teacher_view_of_bright_images(digits, digits_cnn, synth):
    """On a dim synthetic set (as activation maximization from blank gives), a student that keeps the teacher
    in its loop agrees with it on real images far better than one trained on the stored labels alone."""
    from dataclasses import replace

    from vizcore.distill.synthesis import label_with_teacher

    dim = synth.images * 0.1
    labels, logits, probs = label_with_teacher(digits_cnn, dim)
    dark = replace(synth, images=dim, labels=labels, logits=logits, probs=probs)
    cfg = StudentConfig(arch="cnn_s", epochs=40, lr=0.01, batch_size=32)
    plain = train_student(dark, cfg)
    looped = train_student(dark, replace(cfg, relabel=True), teacher=digits_cnn)
    assert looped.name == "cnn_s-relabel"
    assert agreement(looped, digits_cnn, digits.test_x) > agreement(plain, digits_cnn, digits.test_x) + 0.1


def test_relabel_needs_a_torch_student_a_teacher_and_bounded_images(synth, digits_cnn):
    from dataclasses import replace

    with pytest.raises(ValueError, match="fitted once"):
        StudentConfig(arch="rf", relabel=True)
    with pytest.raises(ValueError, match="pass the teacher"):
        train_student(synth, StudentConfig(arch="linear", relabel=True, epochs=1))
    with pytest.raises(ValueError, match="unbounded"):
        train_student(replace(synth, images=synth.images - 0.5), StudentConfig(arch="linear", relabel=True, epochs=1),
                      teacher=digits_cnn)
