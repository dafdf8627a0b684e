"""Tabular data (seed 004's UCI sets, csv:PATH), the mlp10 teacher, and standardization that travels with a model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vizcore import data, zoo
from vizcore.models import build_model, count_parameters
from vizcore.train import TrainConfig, train_teacher


@pytest.mark.parametrize("name,features,classes,sizes", [
    ("uci-shuttle", 9, 7, (38062, 5438, 14500)),
    ("uci-pendigits", 16, 10, (6557, 937, 3498)),
    ("uci-letter", 16, 26, (14000, 2000, 4000)),
])
def test_uci_loaders_on_real_files(shared_datasets, name, features, classes, sizes):
    ds = data.load_dataset(name, root=shared_datasets)
    assert ds.is_tabular and ds.input_shape == (features,) and ds.num_classes == classes
    assert (len(ds.train_x), len(ds.val_x), len(ds.test_x)) == sizes  # seed 004's split sizes
    assert len(ds.feature_names) == features
    # standardized on the training split only: zero mean / unit std there, not exactly on the test split
    assert ds.train_x.mean(0).abs().max() < 1e-4
    std = ds.train_x.std(0)
    assert ((std - 1).abs() < 1e-3).all() | (std < 1e-6).all()
    assert set(ds.train_y.unique().tolist()) <= set(range(classes))


def test_uci_labels_and_raw_values_match_the_files(shared_datasets):
    ds = data.load_dataset("uci-letter", root=shared_datasets)
    last = (shared_datasets / "uci_letter_recognition" / "letter-recognition.data").read_text().splitlines()[-1].split(",")
    assert ds.class_names[int(ds.test_y[-1])] == last[0]  # the file's last 4,000 rows are the test split
    raw = np.asarray([last[1:]], dtype=np.float32)
    assert torch.allclose(data.standardize_rows(raw, ds.standardize), ds.test_x[-1:], atol=1e-5)
    shuttle = data.load_dataset("uci-shuttle", root=shared_datasets)
    assert torch.bincount(shuttle.test_y).tolist() == [11478, 13, 39, 2155, 809, 4, 2]  # PROVENANCE.txt


def test_csv_label_named_or_last(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3)) * [1, 10, 100] + [0, 5, -50]
    y = np.array(["cat", "dog"] * 20)
    path = tmp_path / "t.csv"
    path.write_text("a,kind,b,c\n" + "\n".join(f"{r[0]},{k},{r[1]},{r[2]}" for r, k in zip(x, y)))
    ds = data.load_dataset(f"csv:{path}?label=kind")
    assert ds.class_names == ["cat", "dog"] and ds.feature_names == ["a", "b", "c"]
    assert len(ds.train_x) + len(ds.test_x) == 40 and ds.train_x.mean(0).abs().max() < 1e-5
    plain = tmp_path / "p.csv"
    plain.write_text("\n".join(f"{r[0]},{r[1]},{i % 3}" for i, r in enumerate(x)))
    ds2 = data.load_dataset(f"csv:{plain}")
    assert ds2.class_names == ["0", "1", "2"] and ds2.input_shape == (2,)
    with pytest.raises(data.DatasetError, match="no column 'nope'"):
        data.load_dataset(f"csv:{path}?label=nope")
    bad = tmp_path / "bad.csv"
    bad.write_text("1,2,a\n3,x,b\n")
    with pytest.raises(data.DatasetError, match="must be a number"):
        data.load_dataset(f"csv:{bad}")


def test_mlp10_is_seed_004s_teacher():
    m = build_model("mlp10", (16,), 10)
    linears = [n for n, l in m.named_children() if isinstance(l, torch.nn.Linear)]
    assert len(linears) == 11 and all(getattr(m, n).out_features == 128 for n in linears[:-1])
    assert sum(isinstance(l, torch.nn.ELU) for l in m.children()) == 10
    assert sum(isinstance(l, torch.nn.Dropout) for l in m.children()) == 10
    assert count_parameters(m) == 16 * 128 + 128 + 9 * (128 * 128 + 128) + 128 * 10 + 10
    with pytest.raises(Exception, match="needs images"):
        build_model("cnn", (16,), 10)


def test_standardization_round_trips_with_the_model(tmp_path):
    """A model trained on a table keeps its statistics: raw rows prepared from the card predict like the dataset's."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4)) * [3, 0.1, 50, 1] + [10, -2, 400, 0]
    y = (x[:, 0] > 10).astype(int)
    path = tmp_path / "t.csv"
    path.write_text("\n".join(",".join(map(str, r)) + f",{k}" for r, k in zip(x, y)))
    ds = data.load_dataset(f"csv:{path}")
    entry = train_teacher(ds, "mlp", TrainConfig(epochs=2, batch_size=16), name="tab")
    card = zoo.get_entry("user:tab").card
    assert card.preprocessing["standardize"] == ds.standardize and card.preprocessing["feature_names"] == ds.feature_names
    model = zoo.load_model(entry)
    prepared = zoo.prepare_rows(card, x)
    expected = data.standardize_rows(x, ds.standardize)
    assert torch.allclose(prepared, expected)
    assert torch.allclose(model(prepared), model(expected))
    with pytest.raises(data.DatasetError, match="4 features"):
        zoo.prepare_rows(card, x[:, :3])
