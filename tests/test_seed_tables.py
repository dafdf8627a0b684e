"""Seed 000's tables as presets: the run each table makes, and its figures beside the seed's."""

from vizcore.distill.seed_tables import SEED_PRESETS, preset_config, seed_rows


def test_a_preset_config_keeps_the_papers_settings():
    t1 = preset_config("table1", "zoo:x", "digits", "cnn")
    assert [s.arch for s in t1.students] == ["cnn", "mlp3", "rf", "svm", "cnn_s", "cnn_l", "cnn_tiny"]
    assert t1.sizes == () and t1.synthesis.threshold == 0.99 and t1.synthesis.n == SEED_PRESETS["table1"].n
    assert {s.labels for s in t1.students} == {"hard"} and t1.preset == "table1"
    t7 = preset_config("table7", "zoo:x", "digits", "mlp", n=5000)  # fewer images: the sizes above them are dropped
    assert [s.arch for s in t7.students] == ["mlp"] and t7.students[0].labels == "soft"
    assert t7.sizes == (400, 4000, 5000) and (t7.synthesis.threshold, t7.synthesis.threshold_max) == (0.90, 0.99)


def _student(arch, acc):
    return {"config": {"arch": arch}, "accuracy": acc}


def test_seed_rows_put_a_run_beside_the_seeds_figures():
    t1 = {"students": [_student("cnn", 0.9), _student("svm", 0.5)], "baselines": [_student("cnn", 0.99)]}
    assert seed_rows("table1", t1) == [
        {"student": "CNN_ID", "ours: synthetic": 90.0, "ours: real": 99.0, "seed: visualizations": 95.51,
         "seed: real (BASE)": 99.30},
        {"student": "SVM", "ours: synthetic": 50.0, "ours: real": None, "seed: visualizations": 39.71,
         "seed: real (BASE)": 94.04}]
    t7 = {"sweep": [{"size": 4000, "synthetic": 0.8, "real": 0.95}, {"size": 777, "synthetic": 0.5, "real": None}]}
    assert seed_rows("table7", t7) == [
        {"images": 4000, "ours: synthetic": 80.0, "ours: real": 95.0, "seed: synthetic": 94.93, "seed: real": None},
        {"images": 777, "ours: synthetic": 50.0, "ours: real": None, "seed: synthetic": None, "seed: real": None}]
