"""Every loader on real files: shapes, ranges, splits, and the messages for missing or bad input."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from vizcore import data


def _check(ds, shape, classes):
    assert ds.input_shape == shape and ds.num_classes == classes
    for x in (ds.train_x, ds.test_x):
        assert x.dtype == torch.float32 and float(x.min()) >= 0 and float(x.max()) <= 1
    assert set(ds.train_y.unique().tolist()) == set(range(classes))


def test_digits_split_is_fixed_and_stratified(digits):
    _check(digits, (1, 8, 8), 10)
    assert (len(digits.train_x), len(digits.test_x)) == (1347, 450)
    again = data.load_digits()
    assert torch.equal(again.test_x, digits.test_x) and torch.equal(again.train_y, digits.train_y)
    counts = torch.bincount(digits.test_y)
    assert counts.min() >= 43 and counts.max() <= 46


def test_fashion_mnist_through_torchvision(shared_datasets, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", shared_datasets / "missing")
    ds = data.load_dataset("fashion-mnist", root=shared_datasets / "fashion-mnist")
    _check(ds, (1, 28, 28), 10)
    assert (len(ds.train_x), len(ds.test_x)) == (60000, 10000)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert "torchvision.datasets.FashionMNIST" in ds.source
    # torchvision's raw layout was staged in the workspace, the read-only source untouched
    assert (data.workspace_data() / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").exists()


def test_missing_dataset_lists_places_and_fetch_command(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "data_roots", lambda root=None: [tmp_path / "a", tmp_path / "b"])
    with pytest.raises(data.DatasetNotFound) as e:
        data.load_dataset("mnist")
    msg = str(e.value)
    assert str(tmp_path / "a") in msg and str(tmp_path / "b") in msg
    assert "python -m vizcore data fetch mnist" in msg
    with pytest.raises(data.DatasetNotFound, match="cifar10"):
        data.load_dataset("cifar10")
    assert "mnist" not in data.available() and "digits" in data.available()


def test_yale_faces(shared_datasets):
    ds = data.load_yale(shared_datasets / "yalefaces")
    _check(ds, (1, 60, 60), 15)
    assert (len(ds.train_x), len(ds.test_x)) == (123, 42)
    assert torch.bincount(ds.test_y).min() >= 2  # every identity is in the test split
    assert set(ds.test_tags) <= set(data.YALE_CONDITIONS) and len(ds.train_tags) == 123
    assert ds.class_names[14] == "subject15"
    small = data.load_yale(shared_datasets / "yalefaces", size=(32, 30))
    assert small.input_shape == (1, 32, 30)


def test_yale_missing_says_where(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "data_roots", lambda root=None: [tmp_path])
    with pytest.raises(data.DatasetNotFound, match="subjectNN.condition"):
        data.load_yale()


def _write_folder(root, mode):
    rng = np.random.default_rng(0)
    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(6):
            shape = (12, 10) if mode == "L" else (12, 10, 3)
            Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(root / c / f"{i}.png")


@pytest.mark.parametrize("mode,channels", [("L", 1), ("RGB", 3)])
def test_image_folder(tmp_path, mode, channels):
    _write_folder(tmp_path, mode)
    ds = data.load_dataset(f"image-folder:{tmp_path}")
    assert ds.class_names == ["cat", "dog"] and ds.input_shape == (channels, 12, 10)
    assert len(ds.train_x) + len(ds.test_x) == 12


def test_image_folder_rejects_a_fake_image(tmp_path):
    _write_folder(tmp_path, "L")
    (tmp_path / "dog" / "fake.png").write_bytes(b"this is not a png")
    with pytest.raises(data.DatasetError, match="fake.png"):
        data.load_image_folder(tmp_path)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_npz_round_trip_and_explicit_test_split():
    x = (np.arange(40 * 6 * 5) % 256).astype(np.uint8).reshape(40, 6, 5)
    y = np.arange(40) % 4
    ds = data.load_npz(_npz(x=x, y=y, class_names=np.array(["a", "b", "c", "d"]), x_test=x[:8], y_test=y[:8]), name="t")
    assert ds.class_names == ["a", "b", "c", "d"] and ds.input_shape == (1, 6, 5)
    assert torch.allclose(ds.train_x[3, 0], torch.from_numpy(x[3]).float() / 255)
    assert len(ds.test_x) == 8
    split = data.load_npz(_npz(x=x, y=y))
    assert len(split.train_x) == 30 and len(split.test_x) == 10


@pytest.mark.parametrize("payload,msg", [
    (b"not a zip at all", "not a readable .npz"),
    (_npz(images=np.zeros((4, 3, 3))), "may hold only x.npy, y.npy, class_names.npy, x_test.npy, y_test.npy"),
    (_npz(x=np.zeros((4, 3, 3))), "must hold arrays 'x' and 'y'"),
    (_npz(x=np.zeros((4, 3, 3)), y=np.arange(5) % 2), "4 images but 5 labels"),
    (_npz(x=np.array([{"a": 1}] * 4, dtype=object), y=np.zeros(4, int)), "holds Python objects"),
    (_npz(x=-np.ones((8, 3, 3)), y=np.arange(8) % 2), "0..255 or in \\[0, 1\\]"),
])
def test_npz_bad_input_is_explained(payload, msg):
    with pytest.raises(data.DatasetError, match=msg):
        data.load_npz(payload)


def test_unknown_dataset_name():
    with pytest.raises(data.DatasetError, match="known: digits"):
        data.load_dataset("imagenet")
