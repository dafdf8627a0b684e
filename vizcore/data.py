"""Dataset registry: every source becomes one :class:`Dataset` of float tensors.

Images are ``(N, C, H, W)`` float32 in [0, 1]; tables (the UCI sets of seed 004, ``csv:PATH``) are ``(N, F)``
float32 standardized with the training split's mean and standard deviation, which travel with the dataset
(``Dataset.standardize``) and with every model trained on it (its card's ``preprocessing``), so raw rows are
standardized the same way later (:func:`standardize_rows`). Labels are ``(N,)`` int64. Loaders read local files
only, unless the caller asks for a download (``download=True``), so nothing here touches the network by surprise.
"""

from __future__ import annotations

import gzip
import os
import shutil
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SEED_SPLIT = 0
TORCHVISION_SETS = {
    "fashion-mnist": "FashionMNIST",
    "mnist": "MNIST",
    "cifar10": "CIFAR10",
    "svhn": "SVHN",
}
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
UCI_SETS = ("uci-shuttle", "uci-pendigits", "uci-letter")
YALE_CONDITIONS = (
    "centerlight", "glasses", "happy", "leftlight", "noglasses", "normal",
    "rightlight", "sad", "sleepy", "surprised", "wink",
)
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm"}


class DatasetError(ValueError):
    """A dataset could not be loaded; the message says why and what to do."""


class DatasetNotFound(DatasetError):
    """The files of a dataset are not on this machine."""


@dataclass
class Dataset:
    """Train/test tensors of one classification task: images ``(N, C, H, W)`` or feature rows ``(N, F)``.

    ``train_tags``/``test_tags`` hold an optional per-image tag (the lighting or expression condition of a
    Yale face, for instance). A table carries ``feature_names``, the ``standardize`` statistics its rows were
    scaled with (``{"mean": [...], "std": [...]}`` of the training split) and, where its source defines one, a
    validation split (``val_x``/``val_y``) held out of ``train_x``.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    class_names: list[str]
    source: str
    value_range: tuple[float, float] = (0.0, 1.0)
    train_tags: list[str] | None = None
    test_tags: list[str] | None = None
    notes: dict[str, str] = field(default_factory=dict)
    feature_names: list[str] | None = None
    standardize: dict | None = None
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x.ndim not in (2, 4):
                raise DatasetError(f"{self.name}: {split} data must be images (N, C, H, W) or rows (N, F), "
                                   f"got {tuple(x.shape)}")
            if len(x) != len(y):
                raise DatasetError(f"{self.name}: {len(x)} {split} images but {len(y)} labels")
        if self.train_x.shape[1:] != self.test_x.shape[1:]:
            raise DatasetError(f"{self.name}: train and test images differ in shape")
        if len(self.train_x) == 0 or len(self.test_x) == 0:
            raise DatasetError(f"{self.name}: the train and test splits must both hold images")
        top = int(max(self.train_y.max(), self.test_y.max()))
        if top >= len(self.class_names) or int(min(self.train_y.min(), self.test_y.min())) < 0:
            raise DatasetError(f"{self.name}: labels run 0..{top} but there are {len(self.class_names)} class names")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def is_tabular(self) -> bool:
        return self.train_x.ndim == 2

    @property
    def preprocessing(self) -> dict:
        """What a model card keeps so a user's raw rows can be prepared like this dataset's (empty for images)."""
        if not self.is_tabular:
            return {}
        return {"feature_names": list(self.feature_names or []), "standardize": self.standardize}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def summary(self) -> dict:
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "classes": self.num_classes,
            "train": len(self.train_x),
            "test": len(self.test_x),
            "source": self.source,
        }


# ---------------------------------------------------------------------------------------------- helpers


def _stratified_split(x: np.ndarray, y: np.ndarray, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(tr), np.sort(te)


def _to_tensor(images: np.ndarray, scale: float) -> torch.Tensor:
    """(N, H, W) or (N, H, W, C) numbers -> (N, C, H, W) float32 in [0, 1]."""
    arr = np.asarray(images, dtype=np.float32) / scale
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3) and arr.shape[1] not in (1, 3):
        arr = arr.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(arr))


def workspace_data() -> Path:
    """The workspace folder where downloads and torchvision's staged raw files go."""
    from vizcore.core.workspace import workspace

    return workspace() / "data"


def data_roots(root: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for dataset files, in order: the argument, ``$VIZCORE_DATA``, the workspace cache,
    and the ``shared/datasets`` folder beside this checkout (a development convenience, never required)."""
    roots = []
    if root:
        roots.append(Path(root).expanduser())
    if os.environ.get("VIZCORE_DATA"):
        roots.append(Path(os.environ["VIZCORE_DATA"]).expanduser())
    roots.append(workspace_data())
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    return roots


# ---------------------------------------------------------------------------------------------- loaders


def load_digits() -> Dataset:
    """scikit-learn's bundled 8x8 digits, 75 % / 25 % split stratified by class (seed 0)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = d.images.astype(np.float32)
    y = d.target.astype(np.int64)
    tr, te = _stratified_split(x, y, 0.25, SEED_SPLIT)
    return Dataset(
        name="digits",
        train_x=_to_tensor(x[tr], 16.0), train_y=torch.from_numpy(y[tr]),
        test_x=_to_tensor(x[te], 16.0), test_y=torch.from_numpy(y[te]),
        class_names=[str(i) for i in range(10)],
        source="scikit-learn load_digits (bundled)",
    )


def _idx_candidates(roots: list[Path], folder: str) -> list[Path]:
    """Places that may hold the raw IDX files of an (Fashion-)MNIST set."""
    plain = "fashion-mnist" if folder == "FashionMNIST" else "mnist"
    out = [p for r in roots for p in (r / folder / "raw", r / plain, r)]
    if folder == "FashionMNIST":
        out.append(DEBIAN_FASHION_MNIST)
    return list(dict.fromkeys(out))


_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _has_idx(p: Path) -> bool:
    return all((p / n).exists() or (p / (n + ".gz")).exists() for n in _IDX_FILES)


def _stage_idx(src: Path, cache: Path, folder: str) -> Path:
    """Unpack IDX files from ``src`` into ``cache/folder/raw``, the layout torchvision reads; returns ``cache``."""
    raw = cache / folder / "raw"
    if raw.resolve() == src.resolve():
        return cache
    raw.mkdir(parents=True, exist_ok=True)
    for name in _IDX_FILES:
        dst = raw / name
        if dst.exists():
            continue
        tmp = dst.with_suffix(f".tmp{os.getpid()}")
        if (src / name).exists():
            shutil.copyfile(src / name, tmp)
        else:
            with gzip.open(src / (name + ".gz"), "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout)
        tmp.replace(dst)
    return cache


def _find_local(name: str, roots: list[Path]) -> tuple[Path | None, list[Path]]:
    """(folder holding the files or None, every folder searched)."""
    folder = TORCHVISION_SETS[name]
    if folder in ("FashionMNIST", "MNIST"):
        cands = _idx_candidates(roots, folder)
        ok = _has_idx
    else:
        sub = "cifar-10-batches-py" if name == "cifar10" else "svhn"
        cands = [r / sub for r in roots]
        ok = (lambda p: (p / "data_batch_1").exists()) if name == "cifar10" else (lambda p: (p / "test_32x32.mat").exists())
    for i, c in enumerate(cands):
        if ok(c):
            return c, cands[: i + 1]
    return None, cands


def _fetch_hint(name: str) -> str:
    return f"python -m vizcore data fetch {name}   (needs internet; add --root DIR to choose where)"


def load_torchvision(name: str, root: str | os.PathLike | None = None, download: bool = False) -> Dataset:
    """MNIST, Fashion-MNIST, CIFAR-10 or SVHN through torchvision's own dataset classes.

    Files are looked for in :func:`data_roots` (and Debian's ``/usr/share/datasets/fashion-mnist``); they are
    downloaded (into ``root`` or the workspace) only when ``download`` is true.
    """
    import torchvision.datasets as tvd

    folder = TORCHVISION_SETS[name]
    found, searched = _find_local(name, data_roots(root))
    if found is None and not download:
        where = "\n  ".join(str(p) for p in searched)
        raise DatasetNotFound(f"{name}: no local copy found. Searched:\n  {where}\nFetch it with:\n  {_fetch_hint(name)}")
    if found is None:
        tv_root = Path(root).expanduser() if root else workspace_data()
    elif folder in ("FashionMNIST", "MNIST"):
        tv_root = _stage_idx(found, workspace_data(), folder)
    else:
        tv_root = found.parent if name == "cifar10" else found
    if name == "svhn" and found is None:
        tv_root = tv_root / "svhn"
    tv_root.mkdir(parents=True, exist_ok=True)
    cls = getattr(tvd, folder)
    try:
        if name == "svhn":
            tr = cls(str(tv_root), split="train", download=download)
            te = cls(str(tv_root), split="test", download=download)
            tr_y, te_y, classes = tr.labels, te.labels, [str(i) for i in range(10)]
        else:
            tr = cls(str(tv_root), train=True, download=download)
            te = cls(str(tv_root), train=False, download=download)
            tr_y, te_y, classes = tr.targets, te.targets, [c.split(" - ")[-1] for c in tr.classes]
    except RuntimeError as e:  # torchvision's "Dataset not found or corrupted"
        raise DatasetNotFound(f"{name}: torchvision could not read {tv_root}: {e}\nFetch it with:\n  {_fetch_hint(name)}") from e
    return Dataset(
        name=name,
        train_x=_to_tensor(np.asarray(tr.data), 255.0), train_y=torch.as_tensor(np.asarray(tr_y), dtype=torch.int64),
        test_x=_to_tensor(np.asarray(te.data), 255.0), test_y=torch.as_tensor(np.asarray(te_y), dtype=torch.int64),
        class_names=classes, source=f"torchvision.datasets.{folder} at {found or tv_root}",
    )


def _open_image(path: Path):
    """``Image.open`` of a file that must be an image of at most Pillow's ``MAX_IMAGE_PIXELS`` (its decompression
    bomb warning is an error here), loaded, or :class:`DatasetError`."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(path)
            im.load()
            return im
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise DatasetError(f"{path}: too large, a decompression bomb? ({e})") from e
    except (OSError, ValueError, SyntaxError) as e:  # UnidentifiedImageError is an OSError
        raise DatasetError(f"{path} is not an image Pillow can read ({e})") from e


def _read_grey(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with _open_image(path) as im:
        return np.asarray(im.convert("L").resize((size[1], size[0]), Image.BILINEAR), dtype=np.float32)


def yale_dir(root: str | os.PathLike | None = None) -> Path:
    """The folder holding ``subjectNN.condition`` files, searched as for every dataset."""
    searched = []
    for r in data_roots(root):
        for cand in (r, r / "yalefaces", r / "yalefaces" / "yalefaces"):
            searched.append(cand)
            if (cand / "subject01.normal").exists():
                return cand
    where = "\n  ".join(str(p) for p in searched)
    raise DatasetNotFound(
        "yale-faces: no folder with subjectNN.condition files found. Searched:\n  " + where +
        "\nThe Yale Face Database is not downloadable automatically: place its files in one of these folders "
        "(or pass --data-root)."
    )


def load_yale(root: str | os.PathLike | None = None, size: tuple[int, int] = (60, 60), test_size: float = 0.25) -> Dataset:
    """Yale faces: 15 identities x 11 conditions, grey, resized (60x60 as in seed 002 section 4.1), split
    75 % / 25 % stratified by identity (seed 0). The condition of each image is kept as its tag."""
    folder = yale_dir(root)
    files = sorted(p for p in folder.iterdir() if p.name.startswith("subject") and "." in p.name)
    images, labels, tags = [], [], []
    for p in files:
        subject, condition = p.name.split(".", 1)
        if condition not in YALE_CONDITIONS:
            continue
        images.append(_read_grey(p, size))
        labels.append(int(subject.removeprefix("subject")) - 1)
        tags.append(condition)
    if not images:
        raise DatasetError(f"yale-faces: {folder} holds no readable subjectNN.condition images")
    x, y = np.stack(images), np.asarray(labels, dtype=np.int64)
    tr, te = _stratified_split(x, y, test_size, SEED_SPLIT)
    n_id = int(y.max()) + 1
    return Dataset(
        name="yale-faces",
        train_x=_to_tensor(x[tr], 255.0), train_y=torch.from_numpy(y[tr]),
        test_x=_to_tensor(x[te], 255.0), test_y=torch.from_numpy(y[te]),
        class_names=[f"subject{i + 1:02d}" for i in range(n_id)],
        source=f"Yale faces at {folder}",
        train_tags=[tags[i] for i in tr], test_tags=[tags[i] for i in te],
    )


def load_image_folder(path: str | os.PathLike, size: tuple[int, int] | None = None, test_size: float = 0.25) -> Dataset:
    """One sub-folder per class of images Pillow reads; grey if every image is grey, else RGB.

    Images are resized to ``size`` (default: the first image's size); the split is stratified (seed 0).
    """
    from PIL import Image

    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"image-folder: {root} is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if len(classes) < 2:
        raise DatasetError(f"image-folder: {root} needs at least two class sub-folders, found {len(classes)}")
    pics, labels = [], []
    for k, c in enumerate(classes):
        for p in sorted((root / c).iterdir()):
            if p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            with _open_image(p) as im:
                pics.append(im.convert("RGB") if im.mode not in ("L", "1", "I;16", "I") else im.convert("L"))
            labels.append(k)
    empty = [c for k, c in enumerate(classes) if k not in labels]
    if empty:
        raise DatasetError(f"image-folder: no images in class folder(s) {', '.join(empty)}")
    grey = all(im.mode == "L" for im in pics)
    h, w = size or (pics[0].height, pics[0].width)
    arr = np.stack([np.asarray(im.convert("L" if grey else "RGB").resize((w, h), Image.BILINEAR)) for im in pics])
    y = np.asarray(labels, dtype=np.int64)
    tr, te = _stratified_split(arr, y, test_size, SEED_SPLIT)
    return Dataset(
        name=f"image-folder:{root}",
        train_x=_to_tensor(arr[tr], 255.0), train_y=torch.from_numpy(y[tr]),
        test_x=_to_tensor(arr[te], 255.0), test_y=torch.from_numpy(y[te]),
        class_names=classes, source=f"image folder {root}",
    )


NPZ_MEMBERS = ("x", "y", "class_names", "x_test", "y_test")


@dataclass(frozen=True)
class NpzLimits:
    """Caps on an ``.npz`` checked from its zip directory and ``.npy`` headers before any array is read."""

    member_bytes: int = 2**30
    total_bytes: int = 2**31
    ratio: float = 200.0
    values: int = 2**28  # pixel values, train and test together (1 GiB as float32)
    classes: int = 1000
    name_chars: int = 200


NPZ_LIMITS = NpzLimits()


def _npy_header(f, key: str, label: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    from numpy.lib import format as npy

    try:
        version = npy.read_magic(f)
        reader = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
        shape, fortran, dtype = reader(f, max_header_size=10_000)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise DatasetError(f"{label}: '{key}' is not a readable .npy array ({e})") from e
    return tuple(int(d) for d in shape), bool(fortran), np.dtype(dtype)


def _check_npy(key: str, shape: tuple[int, ...], dtype: np.dtype, label: str) -> None:
    """Refuse an array from its header: dtype, rank and (for images) size."""
    if dtype.hasobject:
        raise DatasetError(f"{label}: '{key}' holds Python objects; never unpickled, save plain arrays")
    if key in ("x", "x_test"):
        if dtype.kind == "c":
            raise DatasetError(f"{label}: '{key}' holds complex numbers ({dtype}); images must be real 0..255 or [0, 1]")
        if dtype.kind not in "uif":
            raise DatasetError(f"{label}: '{key}' must be numeric images, got {dtype}")
        if len(shape) not in (3, 4):
            raise DatasetError(f"{label}: '{key}' must be images (N,H,W), (N,H,W,C) or (N,C,H,W), got shape {list(shape)}")
        if 0 in shape:
            raise DatasetError(f"{label}: '{key}' holds no images (shape {list(shape)})")
    elif key in ("y", "y_test"):
        if dtype.kind not in "ui":
            raise DatasetError(f"{label}: '{key}' must hold integer class labels 0..K-1, got {dtype} "
                               "(float or string labels are not converted; map them to integers)")
        if len(shape) != 1:
            raise DatasetError(f"{label}: '{key}' must be one label per image (N,), got shape {list(shape)}")
    elif dtype.kind not in "US" or len(shape) != 1:
        raise DatasetError(f"{label}: 'class_names' must be a list of strings, got {dtype} {list(shape)}")


def _read_npz(source, label: str, limits: NpzLimits) -> dict[str, np.ndarray]:
    """The documented arrays of an ``.npz``, each checked from the zip directory and its ``.npy`` header
    before it is read (sizes, dtype, shape, N x H x W x C); never unpickles."""
    from vizcore.core.archive import ZipLimits, zip_records

    allowed = {f"{k}.npy": k for k in NPZ_MEMBERS}
    zl = ZipLimits(member_bytes=limits.member_bytes, total_bytes=limits.total_bytes, ratio=limits.ratio,
                   only=tuple(allowed))
    try:
        zf, infos = zip_records(source, zl, DatasetError)
    except DatasetError as e:
        raise DatasetError(f"{label}: not a readable .npz file ({e})" if "zip" in str(e) else f"{label}: {e}") from e
    heads, values = {}, 0
    for info in infos:
        key = allowed[info.filename]
        with zf.open(info) as f:
            shape, fortran, dtype = _npy_header(f, key, label)
            offset = f.tell()
        _check_npy(key, shape, dtype, label)
        count = int(np.prod(shape, dtype=object))
        if key in ("x", "x_test"):
            values += count
            if values > limits.values:
                raise DatasetError(f"{label}: too large: {values:,} pixel values (N x H x W x C) in x and x_test, "
                                   f"at most {limits.values:,}")
        if offset + count * dtype.itemsize != info.file_size:
            raise DatasetError(f"{label}: '{key}' declares shape {list(shape)} of {dtype} ({count * dtype.itemsize:,} "
                               f"bytes) but holds {info.file_size - offset:,} bytes")
        heads[key] = (info, offset, shape, fortran, dtype)
    missing = [k for k in ("x", "y") if k not in heads]
    if missing:
        raise DatasetError(f"{label}: the .npz must hold arrays 'x' and 'y'; missing {missing}, found {sorted(heads)}")
    if ("x_test" in heads) != ("y_test" in heads):
        raise DatasetError(f"{label}: 'x_test' and 'y_test' come together")
    arrays = {}
    for key, (info, offset, shape, fortran, dtype) in heads.items():
        with zf.open(info) as f:
            f.read(offset)
            buf = f.read(info.file_size - offset)
        arrays[key] = np.frombuffer(buf, dtype=dtype).reshape(shape, order="F" if fortran else "C")
    return arrays


def _channels_first(a: np.ndarray, key: str, label: str) -> np.ndarray:
    """(N,H,W) -> (N,1,H,W); channel-last (N,H,W,1|3) -> (N,C,H,W); (N,1|3,H,W) kept; RGBA and the rest refused."""
    if a.ndim == 3:
        return a[:, None]
    c_last, c_first = a.shape[-1], a.shape[1]
    if c_first in (1, 3):
        return a
    if c_last in (1, 3):
        return a.transpose(0, 3, 1, 2)
    if 4 in (c_last, c_first):
        raise DatasetError(f"{label}: '{key}' has 4 channels (RGBA?) in shape {list(a.shape)}; vizcore takes grey (1) "
                           "or RGB (3) channels: drop the alpha channel, e.g. x[..., :3]")
    raise DatasetError(f"{label}: '{key}' of shape {list(a.shape)} has neither 1 nor 3 channels first or last")


def _images(a: np.ndarray, key: str, label: str) -> torch.Tensor:
    a = _channels_first(a, key, label)
    if a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DatasetError(f"{label}: '{key}' holds NaN or infinite values")
    lo, hi = (float(a.min()), float(a.max()))
    if lo < 0 or hi > 255:
        raise DatasetError(f"{label}: '{key}' values must be 0..255 or in [0, 1], got {lo:g}..{hi:g}")
    scale = 255.0 if (a.dtype == np.uint8 or hi > 1.0) else 1.0
    out = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    return out.div_(scale) if scale != 1.0 else out


def load_npz(source: str | os.PathLike | bytes, name: str | None = None, test_size: float = 0.25,
             limits: NpzLimits | None = None) -> Dataset:
    """An ``.npz`` with ``x`` (N,H,W | N,H,W,C | N,C,H,W with 1 or 3 channels; uint8 0..255 or finite floats in
    [0, 1]), integer labels ``y`` (N,) in 0..K-1 and optional ``class_names`` (K names, else K = max label + 1;
    2 <= K <= 1000). Optional ``x_test``/``y_test`` give the test split, otherwise it is drawn (stratified,
    seed 0). The archive is checked before it is read (:class:`NpzLimits`); nothing is unpickled."""
    label = name or (f"npz:{source}" if not isinstance(source, bytes) else "npz:upload")
    limits = limits or NPZ_LIMITS
    arrays = _read_npz(source, label, limits)
    ys = {k: arrays[k].astype(np.int64) for k in ("y", "y_test") if k in arrays}
    if "class_names" in arrays:
        names = [str(s) for s in arrays["class_names"]]
        if len(names) > limits.classes or any(len(n) > limits.name_chars for n in names):
            raise DatasetError(f"{label}: at most {limits.classes} class names of at most {limits.name_chars} characters")
    else:
        top = max(int(y.max(initial=-1)) for y in ys.values())
        if top >= limits.classes:
            raise DatasetError(f"{label}: labels run up to {top}, but at most {limits.classes} classes are allowed "
                               "(labels are 0..K-1)")
        names = [str(i) for i in range(top + 1)]
    if len(names) < 2:
        raise DatasetError(f"{label}: a classification dataset needs at least 2 classes, got {len(names)}")
    for k, y in ys.items():
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(names)):
            raise DatasetError(f"{label}: '{k}' labels must be in 0..{len(names) - 1} ({len(names)} classes), "
                               f"got {int(y.min())}..{int(y.max())}")
    x, y = arrays["x"], ys["y"]
    if len(y) != len(x):
        raise DatasetError(f"{label}: {len(x)} images but {len(y)} labels")
    if "x_test" in arrays:
        if len(ys["y_test"]) != len(arrays["x_test"]):
            raise DatasetError(f"{label}: {len(arrays['x_test'])} test images but {len(ys['y_test'])} labels")
        xtr, ytr = _images(x, "x", label), torch.from_numpy(y)
        xt, yt = _images(arrays["x_test"], "x_test", label), torch.from_numpy(ys["y_test"])
    else:
        try:
            tr, te = _stratified_split(np.empty(len(y)), y, test_size, SEED_SPLIT)
        except ValueError as e:
            raise DatasetError(f"{label}: cannot split into train and test ({e}); give more images per class") from e
        xs = _images(x, "x", label)
        xtr, ytr, xt, yt = xs[tr], torch.from_numpy(y[tr]), xs[te], torch.from_numpy(y[te])
    return Dataset(name=label, train_x=xtr, train_y=ytr, test_x=xt, test_y=yt, class_names=names, source=str(label))


# ---------------------------------------------------------------------------------------------- tables


# name -> (folder, train file, test file or None, label column, seed 004's train / validation / test sizes)
_UCI = {
    "uci-shuttle": ("statlog_shuttle", "shuttle.trn", "shuttle.tst", -1, (38062, 5438, 14500)),
    "uci-pendigits": ("uci_pendigits", "pendigits.tra", "pendigits.tes", -1, (6557, 937, 3498)),
    "uci-letter": ("uci_letter_recognition", "letter-recognition.data", None, 0, (14000, 2000, 4000)),
}
_UCI_FEATURES = {
    "uci-shuttle": ["time", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9"],
    "uci-pendigits": [f"{a}{i}" for i in range(1, 9) for a in "xy"],
    "uci-letter": ["x-box", "y-box", "width", "high", "onpix", "x-bar", "y-bar", "x2bar", "y2bar", "xybar", "x2ybr",
                   "xy2br", "x-ege", "xegvy", "y-ege", "yegvx"],
}
_UCI_CLASSES = {
    "uci-shuttle": ["Rad Flow", "Fpv Close", "Fpv Open", "High", "Bypass", "Bpv Close", "Bpv Open"],
    "uci-pendigits": [str(i) for i in range(10)],
    "uci-letter": [chr(ord("A") + i) for i in range(26)],
}


def uci_dir(name: str, root: str | os.PathLike | None = None) -> Path:
    """The folder holding a UCI set's files, searched as for every dataset."""
    folder, train_file = _UCI[name][:2]
    searched = []
    for r in data_roots(root):
        for cand in (r / folder, r):
            searched.append(cand)
            if (cand / train_file).exists():
                return cand
    where = "\n  ".join(str(p) for p in searched)
    raise DatasetNotFound(f"{name}: no {train_file} found. Searched:\n  {where}\nPlace the UCI files in one of "
                          "these folders (or pass --data-root).")


def _read_rows(path: Path, label_col: int) -> tuple[np.ndarray, np.ndarray]:
    """Features (float32) and raw label strings of a comma- or space-separated file without header."""
    rows = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()]
    if len({len(r) for r in rows}) != 1:
        raise DatasetError(f"{path}: rows have different numbers of fields")
    arr = np.asarray(rows, dtype=object)
    labels = arr[:, label_col].astype(str)
    feats = np.delete(arr, label_col % arr.shape[1], axis=1).astype(np.float32)
    return feats, labels


def standardize_rows(raw, stats: dict) -> torch.Tensor:
    """Raw feature rows ``(N, F)`` scaled like a table's training split: ``(x - mean) / std``."""
    x = torch.as_tensor(np.asarray(raw, dtype=np.float32))
    mean, std = torch.tensor(stats["mean"], dtype=torch.float32), torch.tensor(stats["std"], dtype=torch.float32)
    if x.ndim != 2 or x.shape[1] != len(mean):
        raise DatasetError(f"rows must have {len(mean)} features each, got shape {tuple(x.shape)}")
    return (x - mean) / std


def _table(name: str, x: np.ndarray, y: np.ndarray, split: tuple[np.ndarray, ...], class_names, feature_names,
           source: str) -> Dataset:
    """A tabular :class:`Dataset` standardized on its training rows (constant features get std 1)."""
    tr, va, te = split
    mean = x[tr].mean(0).astype(np.float64)
    std = x[tr].std(0).astype(np.float64)
    std[std < 1e-12] = 1.0
    stats = {"mean": mean.tolist(), "std": std.tolist()}
    t = standardize_rows(x, stats)
    yt = torch.from_numpy(y.astype(np.int64))
    return Dataset(
        name=name, train_x=t[tr], train_y=yt[tr], test_x=t[te], test_y=yt[te], class_names=list(class_names),
        source=source, value_range=(float(t[tr].min()), float(t[tr].max())), feature_names=list(feature_names),
        standardize=stats, val_x=t[va] if len(va) else None, val_y=yt[va] if len(va) else None,
    )


def load_uci(name: str, root: str | os.PathLike | None = None) -> Dataset:
    """Shuttle, PenDigits or Letter (seed 004's unstructured sets) with the seed's split sizes: the files'
    own test split (Letter: its last 4,000 rows), and a seeded validation split held out of the training file."""
    _, train_file, test_file, label_col, (n_tr, n_va, n_te) = _UCI[name]
    d = uci_dir(name, root)
    x, labels = _read_rows(d / train_file, label_col)
    if test_file:
        xt, lt = _read_rows(d / test_file, label_col)
        x, labels = np.concatenate([x, xt]), np.concatenate([labels, lt])
    classes = _UCI_CLASSES[name]
    if name == "uci-letter":
        y = np.asarray([ord(s) - ord("A") for s in labels])
    else:
        y = labels.astype(np.int64) - (1 if name == "uci-shuttle" else 0)
    n_fit = len(x) - n_te
    if n_fit != n_tr + n_va:
        raise DatasetError(f"{name}: expected {n_tr + n_va + n_te} rows in {d}, found {len(x)}")
    order = np.random.default_rng(SEED_SPLIT).permutation(n_fit)
    split = (np.sort(order[:n_tr]), np.sort(order[n_tr:]), np.arange(n_fit, len(x)))
    return _table(name, x, y, split, classes, _UCI_FEATURES[name], f"UCI files at {d}")


def load_csv(spec: str, test_size: float = 0.25) -> Dataset:
    """A user's table: ``PATH`` or ``PATH?label=COLUMN``. A header row is recognized when its fields are not all
    numbers; the label is the named column, else the last one; labels may be names or integers. The split is
    stratified (seed 0); features are standardized on the training part."""
    path_text, _, query = spec.partition("?")
    label_name = query.split("=", 1)[1] if query.startswith("label=") else None
    path = Path(path_text).expanduser()
    label = f"csv:{spec}"
    if not path.is_file():
        raise DatasetError(f"{label}: {path} is not a file")
    import csv

    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r and any(c.strip() for c in r)]
    if len(rows) < 2:
        raise DatasetError(f"{label}: needs at least two rows")

    def numeric(c: str) -> bool:
        try:
            float(c)
            return True
        except ValueError:
            return False

    header = None if all(numeric(c) for c in rows[0]) else [c.strip() for c in rows[0]]
    body = rows[1:] if header else rows
    width = len(body[0])
    if width < 2 or any(len(r) != width for r in body):
        raise DatasetError(f"{label}: every row needs the same number (at least 2) of comma-separated fields")
    names = header or [f"f{i}" for i in range(width)]
    if label_name is not None:
        if label_name not in names:
            raise DatasetError(f"{label}: no column '{label_name}'; columns: {', '.join(names)}")
        col = names.index(label_name)
    else:
        col = width - 1
    raw_labels = [r[col].strip() for r in body]
    feat_rows = [[c for i, c in enumerate(r) if i != col] for r in body]
    try:
        x = np.asarray(feat_rows, dtype=np.float32)
    except ValueError as e:
        raise DatasetError(f"{label}: every feature must be a number ({e})") from e
    if all(v.lstrip("-").isdigit() for v in raw_labels):
        classes = [str(v) for v in sorted({int(v) for v in raw_labels})]
        raw_labels = [str(int(v)) for v in raw_labels]
    else:
        classes = sorted(set(raw_labels))
    y = np.asarray([classes.index(v) for v in raw_labels], dtype=np.int64)
    try:
        tr, te = _stratified_split(x, y, test_size, SEED_SPLIT)
    except ValueError as e:
        raise DatasetError(f"{label}: cannot split into train and test ({e}); give more rows per class") from e
    return _table(label, x, y, (tr, np.array([], dtype=np.int64), te), classes,
                  [n for i, n in enumerate(names) if i != col], f"CSV file {path}")


def uploaded_datasets_dir() -> Path:
    from vizcore.core.workspace import workspace

    return workspace() / "datasets"


def import_npz(data: bytes, name: str, overwrite: bool = False) -> tuple[Path, Dataset]:
    """Check an uploaded ``.npz`` (:func:`load_npz`) and store it in the workspace as ``datasets/NAME.npz``, under
    the name's lock; an existing dataset of that name is replaced only with ``overwrite``. Nothing is written
    for a refused file."""
    from vizcore.core.archive import MAX_UPLOAD
    from vizcore.core.workspace import atomic_write, check_name, name_lock

    check_name(name, DatasetError)
    if len(data) > MAX_UPLOAD:
        raise DatasetError(f"too large: {len(data) / 2**20:.0f} MiB (at most {MAX_UPLOAD // 2**20} MiB)")
    ds = load_npz(data, name=name)
    path = uploaded_datasets_dir() / f"{name}.npz"
    with name_lock("dataset", name):
        if path.exists() and not overwrite:
            raise DatasetError(f"a dataset named '{name}' exists; choose another name or replace it explicitly "
                               "(the Replace box, --overwrite)")
        atomic_write(path, data)
    return path, ds


def available() -> list[str]:
    """The registry's dataset names whose files are on this machine (digits always is)."""
    roots, out = data_roots(), ["digits"]
    for name in TORCHVISION_SETS:
        if _find_local(name, roots)[0] is not None:
            out.append(name)
    for name, finder in (("yale-faces", yale_dir), *((u, lambda u=u: uci_dir(u)) for u in UCI_SETS)):
        try:
            finder()
            out.append(name)
        except DatasetNotFound:
            pass
    return out


def class_index(class_names: Sequence[str], value: str | int) -> int:
    """A class index from its name (exact, then case-insensitive) or its number (``"Sneaker"``, ``"7"``, ``7``)."""
    names = [str(c) for c in class_names]
    text = str(value)
    if text in names:
        return names.index(text)
    if text.isdigit() and int(text) < len(names):
        return int(text)
    lower = [c.lower() for c in names]
    if text.lower() in lower:
        return lower.index(text.lower())
    shown = ", ".join(names[:20]) + ("..." if len(names) > 20 else "")
    raise ValueError(f"no class '{value}'; choose a name or an index 0..{len(names) - 1}: {shown}")


def dataset_label(name: str) -> str:
    """A short name for a dataset id (``npz:/a/b/faces.npz`` -> ``faces``), usable in file names."""
    if ":" in name:
        name = Path(name.split(":", 1)[1]).stem
    return name


def list_datasets() -> list[str]:
    return ["digits", "fashion-mnist", "mnist", "cifar10", "svhn", "yale-faces", *UCI_SETS]


def _source_files(name: str) -> list[Path] | None:
    """The files a registry dataset is decoded from (None when not on this machine or not a registry set)."""
    import importlib.util

    if name == "digits":
        spec = importlib.util.find_spec("sklearn")
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz" if spec and spec.origin else None
        return [path] if path and path.exists() else None
    if name in TORCHVISION_SETS:  # the original files, not the copy load_torchvision stages in the workspace
        roots = data_roots()
        found = _find_local(name, [r for r in roots if r != workspace_data()])[0] or _find_local(name, roots)[0]
    elif name == "yale-faces":
        try:
            found = yale_dir()
        except DatasetNotFound:
            return None
    else:
        return None
    return sorted(p for p in found.iterdir() if p.is_file()) if found is not None else None


def fingerprint(name: str) -> str | None:
    """A digest of the files dataset ``name`` is read from (None if unknown): keys caches of results on it."""
    from vizcore.core.diskcache import files_fingerprint

    if name.startswith(("npz:", "image-folder:")):
        path = Path(name.split(":", 1)[1])
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else []
    else:
        files = _source_files(name) or []
    return files_fingerprint(files) if files else None


def _from_cache(name: str) -> Dataset | None:
    """A registry dataset decoded once and kept as ``.npz`` in the workspace cache (keyed by its source files'
    names, sizes and times): later starts skip the decoder and its imports (torchvision, scikit-learn)."""
    from vizcore.core.diskcache import cached_arrays, key_name

    digest = fingerprint(name) if name in TORCHVISION_SETS or name in ("digits", "yale-faces") else None
    if digest is None:
        return None

    def decode():
        ds = load_dataset(name, cache=False)
        arrays = {k: getattr(ds, k).numpy() for k in ("train_x", "train_y", "test_x", "test_y")}
        for k in ("train_x", "test_x"):  # 8-bit images are stored as bytes: a quarter of the disk reads
            q = np.round(arrays[k] * 255).astype(np.uint8)
            if np.array_equal(q.astype(np.float32) / 255.0, arrays[k]):
                arrays[k] = q
        meta = {k: getattr(ds, k) for k in ("name", "class_names", "source", "value_range", "train_tags",
                                           "test_tags", "notes")}
        return arrays, meta

    arrays, meta = cached_arrays("datasets", f"{name}-{key_name('v1', name, digest)}", decode)
    meta["value_range"] = tuple(meta["value_range"])
    arrays = {k: v.astype(np.float32) / 255.0 if v.dtype == np.uint8 else v for k, v in arrays.items()}
    return Dataset(**{k: torch.from_numpy(v) for k, v in arrays.items()}, **meta)


def load_dataset(name: str, root: str | os.PathLike | None = None, download: bool = False,
                 cache: bool = True) -> Dataset:
    """Load a dataset by registry name, ``image-folder:PATH`` or ``npz:PATH``.

    Registry datasets found on this machine are decoded once and then read from the workspace cache
    (``cache=False`` decodes anew)."""
    if cache and root is None and not download and (ds := _from_cache(name)) is not None:
        return ds
    if name == "digits":
        return load_digits()
    if name in TORCHVISION_SETS:
        return load_torchvision(name, root, download)
    if name == "yale-faces":
        return load_yale(root)
    if name.startswith("image-folder:"):
        return load_image_folder(name.split(":", 1)[1])
    if name.startswith("npz:"):
        path = name.split(":", 1)[1]
        return load_npz(path, name=f"npz:{path}")
    if name in UCI_SETS:
        return load_uci(name, root)
    if name.startswith("csv:"):
        return load_csv(name.split(":", 1)[1])
    raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(list_datasets())}, image-folder:PATH, npz:PATH, "
                       "csv:PATH")
