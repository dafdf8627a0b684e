"""Model files: a model is one file holding its card and its weights; user uploads are read safely.

A workspace model is ``NAME.safetensors`` with the model card in the safetensors metadata, or ``NAME.pt``, a
TorchScript archive with the card as its extra file ``vizcore_card.json``: card and weights are written and
replaced together by one atomic rename, under the name's file lock. The shipped zoo (and older workspaces) keep
``NAME.safetensors`` + ``NAME.json`` pairs, which are still read.

Nothing here unpickles arbitrary objects: weights come from safetensors or from ``torch.load`` with
``weights_only=True`` after the zip was checked; TorchScript is confined by :mod:`vizcore.torchscript`.
"""

from __future__ import annotations

import io
import json
import pickle
import pickletools
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes
from torch import nn

from vizcore.core.archive import MAX_UPLOAD, ZipLimits, mib, zip_records
from vizcore.core.workspace import NAME_PATTERN, atomic_write, name_lock, workspace
from vizcore.core.workspace import check_name as _check_name
from vizcore.models import ARCHITECTURES, ArchitectureError, build_model, factorized_skeleton

ZOO_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"


class ModelFileError(ValueError):
    """A model file is not what it claims, is unsafe, or does not fit; the message says which."""


@dataclass
class ModelCard:
    """Everything needed to rebuild and judge a model: what it is, how it was made, how well it does."""

    name: str
    dataset: str
    arch: str
    input_shape: list[int]
    class_names: list[str]
    format: str = "safetensors"  # or "torchscript"
    hyperparameters: dict = field(default_factory=dict)
    seed: int | None = None
    metrics: dict = field(default_factory=dict)
    train_seconds: float | None = None
    command: str = ""
    created: str = ""
    notes: str = ""
    preprocessing: dict = field(default_factory=dict)  # tables: feature names and standardization statistics
    compression: dict = field(default_factory=dict)  # compressed models: source, base arch, per-layer ranks, ratio

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelCard:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        missing = [k for k in ("name", "dataset", "arch", "input_shape", "class_names") if k not in known]
        if missing:
            raise ModelFileError(f"model card lacks {missing}")
        return cls(**known)


@dataclass
class ModelEntry:
    """A model on disk: its id (``zoo:NAME`` or ``user:NAME``), card and weight file (which holds the card too,
    except for the zoo's card + weights pairs)."""

    id: str
    card: ModelCard
    weights: Path

    def to_dict(self) -> dict:
        """What a training job returns: the id, the test accuracy and the card."""
        return {"model_id": self.id, "accuracy": self.card.metrics.get("accuracy"), "card": self.card.to_dict()}


CARD_KEY = "vizcore_card"  # safetensors metadata key; TorchScript extra file "vizcore_card.json"
SUFFIX = {"safetensors": ".safetensors", "torchscript": ".pt"}


class ModelExists(ModelFileError):
    """A model of that name exists and the caller did not ask to replace it."""


def user_models_dir() -> Path:
    d = workspace() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _card_of(path: Path, data: bytes | None = None) -> ModelCard:
    """The card stored in a model file (read from ``data`` when given, so card and weights are one version)."""
    if path.suffix == ".safetensors":
        head = data[:8] if data is not None else path.open("rb").read(8)
        n = int.from_bytes(head, "little")
        if not 0 < n <= 100 * 2**20:
            raise ModelFileError(f"{path.name}: not a safetensors file")
        raw = data[8:8 + n] if data is not None else path.open("rb").read(8 + n)[8:]
        meta = json.loads(raw).get("__metadata__") or {}
        if CARD_KEY not in meta:
            raise ModelFileError(f"{path.name}: no model card inside")
        return ModelCard.from_dict(json.loads(meta[CARD_KEY]))
    with zipfile.ZipFile(io.BytesIO(data) if data is not None else path) as zf:
        card = [i for i in zf.infolist() if i.filename.endswith(f"/extra/{CARD_KEY}.json")]
        if not card or card[0].file_size > 2**20:
            raise ModelFileError(f"{path.name}: no model card inside")
        return ModelCard.from_dict(json.loads(zf.read(card[0])))


def _user_file(folder: Path, name: str) -> Path | None:
    """The current file of a one-file model (the newer one if a replacement is half done), or None."""
    have = [p for p in (folder / f"{name}{s}" for s in SUFFIX.values()) if p.exists()]
    try:
        return max(have, key=lambda p: p.stat().st_mtime_ns) if have else None
    except FileNotFoundError:  # replaced between exists() and stat()
        return _user_file(folder, name)


def _entry(prefix: str, folder: Path, name: str, tries: int = 3) -> ModelEntry | None:
    """The model ``name`` in ``folder``: a one-file model, else a card + weights pair; None if unreadable. A file
    replaced by the other format while it is read is looked for again."""
    try:
        path = _user_file(folder, name)
        if path is not None:
            try:
                return ModelEntry(f"{prefix}:{name}", _card_of(path), path)
            except ModelFileError:
                pass  # a card + weights pair of the older layout
        card = ModelCard.from_dict(json.loads((folder / f"{name}.json").read_text()))
        w = folder / f"{name}{SUFFIX.get(card.format, '.safetensors')}"
        return ModelEntry(f"{prefix}:{name}", card, w) if w.exists() else None
    except FileNotFoundError:
        return _entry(prefix, folder, name, tries - 1) if tries > 1 else None
    except (OSError, ValueError, TypeError, KeyError, zipfile.BadZipFile):
        return None


def list_models(include_user: bool = True) -> list[ModelEntry]:
    """Zoo models, then the workspace's user models, each with a readable card and its weights present."""
    out = []
    sources = [("zoo", ZOO_DIR)] + ([("user", user_models_dir())] if include_user else [])
    for prefix, folder in sources:
        names = sorted({p.stem for s in (".json", *SUFFIX.values()) for p in folder.glob(f"*{s}")
                        if NAME_PATTERN.fullmatch(p.stem)})  # files with unsafe names are never opened
        out += [e for n in names if (e := _entry(prefix, folder, n))]
    return out


def get_entry(model_id: str) -> ModelEntry:
    """The model of an id (``zoo:NAME``, ``user:NAME``, read under the name's shared lock) or a bare name."""
    prefix, _, name = model_id.rpartition(":")
    if prefix in ("zoo", "user") and NAME_PATTERN.fullmatch(name):
        with name_lock("model", name, shared=True):
            e = _entry(prefix, ZOO_DIR if prefix == "zoo" else user_models_dir(), name)
        if e is not None:
            return e
    for e in list_models():
        if e.id == model_id or e.card.name == model_id:
            return e
    raise ModelFileError(f"no model '{model_id}'; see `python -m vizcore zoo list`")


def open_model(entry: ModelEntry | str, device: str | torch.device = "cpu") -> tuple[ModelCard, nn.Module]:
    """(card, model) of a zoo or workspace model, both read from one version of its file under the name's shared
    lock; the model in eval mode with gradients of its weights switched off."""
    entry = get_entry(entry) if isinstance(entry, str) else entry
    prefix, name = entry.id.split(":", 1)
    folder = entry.weights.parent
    with name_lock("model", name, shared=True):
        now = _entry(prefix, folder, name)
        if now is None:
            raise ModelFileError(f"model '{entry.id}' is gone (deleted meanwhile)")
        data = now.weights.read_bytes()
    try:
        card = _card_of(now.weights, data)
    except (ModelFileError, ValueError, KeyError, zipfile.BadZipFile):
        card = now.card  # a card + weights pair of the older layout
    if card.format == "torchscript":
        from vizcore.torchscript import load_checked

        model = load_checked(data)
    else:
        model = model_from_card(card)
        model.load_state_dict(st_load_bytes(data))
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return card, model


def load_model(entry: ModelEntry | str, device: str | torch.device = "cpu") -> nn.Module:
    """The model of a zoo or workspace entry, in eval mode, with gradients of its weights switched off."""
    return open_model(entry, device)[1]


def model_from_card(card: ModelCard) -> nn.Module:
    """An untrained model of the card's architecture; a compressed model's layers are rebuilt from the ranks in
    ``card.compression`` (plain JSON, so no pickled module is ever needed)."""
    model = build_model(card.arch, tuple(card.input_shape), card.num_classes)
    if card.compression:
        try:
            model = factorized_skeleton(model, card.compression["ranks"])
        except (KeyError, TypeError, ValueError) as e:
            raise ModelFileError(f"model card '{card.name}': unreadable compression ranks ({e})") from e
    return model


def prepare_rows(card: ModelCard, raw) -> torch.Tensor:
    """A user's raw feature rows prepared for a tabular model: standardized with the card's statistics."""
    stats = (card.preprocessing or {}).get("standardize")
    if not stats:
        raise ModelFileError(f"model '{card.name}' has no standardization statistics (it is not a tabular model)")
    from vizcore.data import standardize_rows

    return standardize_rows(raw, stats)


def check_name(name: str) -> str:
    """A model name that is safe as a file name and is not a zoo model's, or :class:`ModelFileError`."""
    _check_name(name, ModelFileError)
    if any(p.stem == name for p in ZOO_DIR.glob("*.json")):
        raise ModelFileError(f"name '{name}' is a zoo model's; choose another")
    return name


def _model_bytes(model: nn.Module, card: ModelCard) -> bytes:
    card_json = json.dumps(card.to_dict(), default=str)
    if card.format == "torchscript":
        buf = io.BytesIO()
        torch.jit.save(model, buf, _extra_files={f"{CARD_KEY}.json": card_json})
        return buf.getvalue()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return st_save_bytes(tensors, metadata={CARD_KEY: card_json})


def save_model(model: nn.Module, card: ModelCard, folder: Path | None = None, overwrite: bool = False) -> ModelEntry:
    """Write the model as one file (card inside) atomically, under the name's lock. An existing model of that
    name is replaced only with ``overwrite``; replacing removes its other-format file and any older card."""
    folder = folder or user_models_dir()
    zoo = folder.resolve() == ZOO_DIR.resolve()
    (_check_name(card.name, ModelFileError) if zoo else check_name(card.name))
    data = _model_bytes(model, card)
    path = folder / f"{card.name}{SUFFIX[card.format]}"
    with name_lock("model", card.name):
        old = [folder / f"{card.name}{s}" for s in (".json", *SUFFIX.values())]
        if not overwrite and any(p.exists() for p in old):
            raise ModelExists(f"a model named '{card.name}' exists; choose another name or replace it explicitly "
                              "(the Replace box, --overwrite)")
        atomic_write(path, data)
        for p in old:
            if p != path:
                p.unlink(missing_ok=True)
    return ModelEntry(f"{'zoo' if zoo else 'user'}:{card.name}", card, path)


def delete_model(entry: ModelEntry) -> None:
    """Remove a workspace model (under its lock; a card + weights pair card first, so it is never half listed)."""
    if not entry.id.startswith("user:"):
        raise ModelFileError("zoo models are part of the app and cannot be deleted")
    name, folder = entry.id.split(":", 1)[1], entry.weights.parent
    with name_lock("model", name):
        for s in (".json", *SUFFIX.values()):
            (folder / f"{name}{s}").unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------------- uploads


def sniff_format(data: bytes) -> str:
    """'safetensors', 'torchscript', 'pickle-zip' (torch.save), 'pickle' (legacy torch.save) or 'unknown'."""
    if len(data) >= 10 and data[8:9] == b"{":
        n = int.from_bytes(data[:8], "little")
        if 0 < n <= len(data) - 8:
            return "safetensors"
    if data[:4] == b"PK\x03\x04":
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return "unknown"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "pickle-zip"
        return "unknown"
    if data[:1] == b"\x80":
        return "pickle"
    return "unknown"


def _check_checkpoint_zip(data: bytes) -> None:
    """Refuse a ``torch.save`` zip before ``torch.load`` inflates or allocates anything: every record stored and
    no larger than the upload, and no number in ``data.pkl`` (element counts, sizes, offsets) larger either."""
    zf, infos = zip_records(data, ZipLimits(member_bytes=len(data), total_bytes=len(data),
                                            compressed=lambda n: False), ModelFileError)
    pkl = [i for i in infos if i.filename.endswith("data.pkl")]
    try:
        for op, arg, _ in pickletools.genops(zf.read(pkl[0])):
            if op.name in ("INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4") and \
                    isinstance(arg, int) and arg > len(data):
                raise ModelFileError(f"too large: the checkpoint declares a tensor of {arg:,} elements but the "
                                     f"file holds only {len(data):,} bytes")
    except (ValueError, pickle.UnpicklingError) as e:
        if isinstance(e, ModelFileError):
            raise
        raise ModelFileError(f"refused: the checkpoint's data.pkl is not a valid pickle ({e})") from e


def read_state_dict(data: bytes) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a ``torch.save``-d state dict, read with ``weights_only=True``.

    A pickle that would build anything but tensors and plain containers (i.e. run code) is refused, and so is a
    zip that declares more than it holds (checked before loading).
    """
    if len(data) > MAX_UPLOAD:
        raise ModelFileError(f"too large: {mib(len(data))} (at most {mib(MAX_UPLOAD)})")
    kind = sniff_format(data)
    if kind == "safetensors":
        try:
            return st_load_bytes(data)
        except Exception as e:  # safetensors raises its own error types
            raise ModelFileError(f"not a valid safetensors file: {e}") from e
    if kind == "pickle":
        raise ModelFileError("refused: a legacy (before PyTorch 1.6) torch.save file declares sizes torch.load "
                             "would allocate before reading; save with torch.save (zip format) or as safetensors")
    if kind == "pickle-zip":
        _check_checkpoint_zip(data)
        try:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError, TypeError) as e:
            raise ModelFileError(
                "refused: this checkpoint contains Python objects other than tensors, which could run code when "
                "loaded. Save a state dict (model.state_dict()) or safetensors weights, or export TorchScript. "
                f"(detail: {str(e).splitlines()[0][:200]})"
            ) from e
        if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
            obj = obj["state_dict"]
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise ModelFileError("the checkpoint is not a state dict of tensors (name -> tensor)")
        return obj
    if kind == "torchscript":
        raise ModelFileError("this is a TorchScript model: upload it as TorchScript, not as weights")
    raise ModelFileError("not a model file: expected safetensors, a torch state dict, or TorchScript")


def fit_message(model: nn.Module, input_shape: tuple[int, ...], num_classes: int, probe_batch: int = 64,
                n: int = 6) -> str | None:
    """None if ``model`` maps batches of 1, ``n`` and ``probe_batch`` images to exactly ``(N, num_classes)`` finite
    logits, each image's logits the same alone as in a batch; otherwise what is wrong."""
    x = torch.rand(n, *input_shape, generator=torch.Generator().manual_seed(0))
    probe = torch.rand(probe_batch, *input_shape, generator=torch.Generator().manual_seed(1))
    outs = []
    with torch.no_grad():
        for b in [x[i:i + 1] for i in range(n)] + [x, probe]:
            try:
                out = model(b)
            except Exception as e:  # any shape error from inside the user's model; running out of memory is not
                if isinstance(e, MemoryError) or "alloc" in str(e).lower():
                    raise MemoryError(str(e)) from e
                return (f"the model does not accept a batch of {len(b)} inputs of shape {list(input_shape)} "
                        f"({str(e).splitlines()[0][:200]})")
            if not isinstance(out, torch.Tensor) or list(out.shape) != [len(b), num_classes]:
                shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                return (f"for a batch of {len(b)} the model outputs {shape}, not [{len(b)}, {num_classes}] "
                        f"(the dataset has {num_classes} classes)")
            if not out.is_floating_point() or not bool(torch.isfinite(out).all()):
                return f"for a batch of {len(b)} the model outputs values that are not finite numbers"
            outs.append(out.float())
    alone, together = torch.cat(outs[:n]), outs[n]
    if not torch.allclose(alone, together, rtol=1e-3, atol=1e-4 * (float(together.abs().max()) + 1.0)):
        return "each image's output depends on the other images in its batch (a batch of 1 and of several differ)"
    return None


def import_model(data: bytes, name: str, dataset, arch: str | None = None, overwrite: bool = False) -> ModelEntry:
    """Check an uploaded model against ``dataset`` and save it to the workspace.

    ``data`` is TorchScript (checked in a confined child process first, see :mod:`vizcore.torchscript`), or
    weights (safetensors / state dict) for the zoo architecture ``arch``. Raises :class:`ModelFileError` with a
    message saying what fits when it does not; nothing is written then.
    """
    check_name(name)
    shape, k = tuple(dataset.input_shape), dataset.num_classes
    if not overwrite and get_entry_or_none(f"user:{name}"):
        raise ModelExists(f"a model named '{name}' exists; choose another name or replace it explicitly "
                          "(the Replace box, --overwrite)")
    if len(data) > MAX_UPLOAD:
        raise ModelFileError(f"too large: {mib(len(data))} (at most {mib(MAX_UPLOAD)})")
    if sniff_format(data) == "torchscript":
        from vizcore.torchscript import check_upload

        model = check_upload(data, shape, k)
        fmt, arch = "torchscript", arch or "torchscript"
    else:
        if not arch:
            raise ModelFileError("weights need an architecture: choose which zoo architecture they belong to")
        state = read_state_dict(data)
        try:
            model = build_model(arch, shape, k)
        except ArchitectureError as e:
            raise ModelFileError(str(e)) from e
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            expected = {n: list(t.shape) for n, t in model.state_dict().items()}
            raise ModelFileError(
                f"these weights do not fit '{arch}' for {dataset.name} (input {list(shape)}, {k} classes). "
                f"That model expects: {expected}. ({str(e).splitlines()[0][:200]})"
            ) from e
        fmt = "safetensors"
        msg = fit_message(model.eval(), shape, k)
        if msg:
            raise ModelFileError(f"{msg}. {dataset.name} needs input {list(shape)} and {k} outputs.")
    card = ModelCard(name=name, dataset=dataset.name, arch=arch, input_shape=list(shape),
                     class_names=list(dataset.class_names), format=fmt, notes="uploaded")
    from vizcore.metrics import evaluate_model

    card.metrics = evaluate_model(model, dataset.test_x, dataset.test_y, dataset.class_names)
    return save_model(model, card, overwrite=overwrite)


def get_entry_or_none(model_id: str) -> ModelEntry | None:
    try:
        return get_entry(model_id)
    except ModelFileError:
        return None


def fits(entry: ModelEntry, dataset) -> bool:
    """Whether a model's card matches a dataset's input shape and class count."""
    return list(entry.card.input_shape) == list(dataset.input_shape) and entry.card.num_classes == dataset.num_classes


__all__ = [
    "ARCHITECTURES", "ModelCard", "check_name", "delete_model", "ModelEntry", "ModelExists", "ModelFileError",
    "fit_message", "fits", "get_entry", "import_model", "list_models", "load_model", "open_model", "read_state_dict",
    "save_model", "sniff_format",
]
