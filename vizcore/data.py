"""Dataset registry: every source becomes one :class:`Dataset` of float tensors in [0, 1].

Images are ``(N, C, H, W)`` float32, labels ``(N,)`` int64. Loaders read local files only, unless the caller
asks for a download (``download=True``), so nothing here touches the network by surprise.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import zipfile
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
    """Train/test tensors of one image classification task.

    ``train_tags``/``test_tags`` hold an optional per-image tag (the lighting or expression condition of a
    Yale face, for instance).
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

    def __post_init__(self) -> None:
        for split, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x.ndim != 4:
                raise DatasetError(f"{self.name}: {split} images must be (N, C, H, W), got {tuple(x.shape)}")
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
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]

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


def _read_grey(path: Path, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im.seek(0)
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
    from PIL import Image, UnidentifiedImageError

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
            try:
                with Image.open(p) as im:
                    pics.append(im.convert("RGB") if im.mode not in ("L", "1", "I;16", "I") else im.convert("L"))
            except (UnidentifiedImageError, OSError) as e:
                raise DatasetError(f"image-folder: {p} is not an image Pillow can read ({e})") from e
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


def load_npz(source: str | os.PathLike | bytes, name: str | None = None, test_size: float = 0.25) -> Dataset:
    """An ``.npz`` with ``x`` (N,H,W | N,H,W,C | N,C,H,W; uint8 0..255 or floats in [0, 1]), ``y`` (N,) and
    optional ``class_names``. Optional ``x_test``/``y_test`` give the test split, otherwise it is drawn
    (stratified, seed 0). Never unpickles: object arrays are refused."""
    buf = io.BytesIO(source) if isinstance(source, bytes) else source
    label = name or (f"npz:{source}" if not isinstance(source, bytes) else "npz:upload")
    try:
        with np.load(buf, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{label}: not a readable .npz file ({e})") from e
    missing = [k for k in ("x", "y") if k not in arrays]
    if missing:
        raise DatasetError(f"{label}: the .npz must hold arrays 'x' and 'y'; missing {missing}, found {sorted(arrays)}")

    def images(a: np.ndarray, key: str) -> torch.Tensor:
        if a.ndim not in (3, 4) or not np.issubdtype(a.dtype, np.number):
            raise DatasetError(f"{label}: '{key}' must be numeric images (N,H,W) or (N,H,W,C) or (N,C,H,W), got {a.dtype} {a.shape}")
        scale = 255.0 if (a.dtype == np.uint8 or float(a.max(initial=0)) > 1.0) else 1.0
        t = _to_tensor(a, scale)
        if t.min() < 0 or t.max() > 1:
            raise DatasetError(f"{label}: '{key}' values must be 0..255 or in [0, 1]")
        return t

    x, y = images(arrays["x"], "x"), np.asarray(arrays["y"]).astype(np.int64).reshape(-1)
    if len(y) != len(x):
        raise DatasetError(f"{label}: {len(x)} images but {len(y)} labels")
    n_cls = int(y.max()) + 1
    names = [str(s) for s in arrays["class_names"]] if "class_names" in arrays else [str(i) for i in range(n_cls)]
    if "x_test" in arrays and "y_test" in arrays:
        xt, yt = images(arrays["x_test"], "x_test"), torch.from_numpy(np.asarray(arrays["y_test"]).astype(np.int64))
        xtr, ytr = x, torch.from_numpy(y)
    else:
        try:
            tr, te = _stratified_split(x.numpy(), y, test_size, SEED_SPLIT)
        except ValueError as e:
            raise DatasetError(f"{label}: cannot split into train and test ({e}); give more images per class") from e
        xtr, ytr, xt, yt = x[tr], torch.from_numpy(y[tr]), x[te], torch.from_numpy(y[te])
    return Dataset(name=label, train_x=xtr, train_y=ytr, test_x=xt, test_y=yt, class_names=names, source=str(label))


def available() -> list[str]:
    """The registry's dataset names whose files are on this machine (digits always is)."""
    roots, out = data_roots(), ["digits"]
    for name in TORCHVISION_SETS:
        if _find_local(name, roots)[0] is not None:
            out.append(name)
    try:
        yale_dir()
        out.append("yale-faces")
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
    return ["digits", "fashion-mnist", "mnist", "cifar10", "svhn", "yale-faces"]


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
        return load_npz(name.split(":", 1)[1])
    raise DatasetError(f"unknown dataset '{name}'; known: {', '.join(list_datasets())}, image-folder:PATH, npz:PATH")
