"""Model files: zoo and workspace models as ``.safetensors`` + a JSON model card; user uploads read safely.

Nothing here unpickles arbitrary objects: weights come from safetensors, from ``torch.load`` with
``weights_only=True``, or from TorchScript archives (which hold TorchScript code, not Python pickles of objects).
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load as st_load_bytes
from safetensors.torch import save as st_save_bytes
from torch import nn

from vizcore.models import ARCHITECTURES, ArchitectureError, build_model
from vizcore.core.workspace import atomic_write, workspace, write_json

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
    """A model on disk: its id (``zoo:NAME`` or ``user:NAME``), card and weight file."""

    id: str
    card: ModelCard
    weights: Path

    def to_dict(self) -> dict:
        """What a training job returns: the id, the test accuracy and the card."""
        return {"model_id": self.id, "accuracy": self.card.metrics.get("accuracy"), "card": self.card.to_dict()}


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


def user_models_dir() -> Path:
    d = workspace() / "models"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _weights_path(card_path: Path, card: ModelCard) -> Path:
    return card_path.with_suffix(".pt" if card.format == "torchscript" else ".safetensors")


def list_models(include_user: bool = True) -> list[ModelEntry]:
    """Zoo models, then the workspace's user models, each with a readable card and its weights present."""
    out = []
    sources = [("zoo", ZOO_DIR)] + ([("user", user_models_dir())] if include_user else [])
    for prefix, folder in sources:
        for card_path in sorted(folder.glob("*.json")):
            try:
                card = ModelCard.from_dict(json.loads(card_path.read_text()))
            except (ValueError, TypeError):
                continue
            w = _weights_path(card_path, card)
            if w.exists():
                out.append(ModelEntry(f"{prefix}:{card_path.stem}", card, w))
    return out


def get_entry(model_id: str) -> ModelEntry:
    for e in list_models():
        if e.id == model_id or e.card.name == model_id:
            return e
    raise ModelFileError(f"no model '{model_id}'; see `python -m vizcore zoo list`")


def load_model(entry: ModelEntry | str, device: str | torch.device = "cpu") -> nn.Module:
    """The model of a zoo or workspace entry, in eval mode, with gradients of its weights switched off."""
    entry = get_entry(entry) if isinstance(entry, str) else entry
    card = entry.card
    if card.format == "torchscript":
        model = _load_torchscript(entry.weights.read_bytes())
    else:
        model = build_model(card.arch, tuple(card.input_shape), card.num_classes)
        model.load_state_dict(st_load_bytes(entry.weights.read_bytes()))
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def check_name(name: str) -> str:
    """A model or dataset name that is safe as a file name, or :class:`ModelFileError`."""
    if not _NAME.match(name):
        raise ModelFileError(f"name '{name}' must start with a letter or digit and hold only letters, digits, "
                             "'_', '-' or '.' (at most 80)")
    return name


def save_model(model: nn.Module, card: ModelCard, folder: Path | None = None) -> ModelEntry:
    """Write weights (safetensors, or TorchScript for ``format='torchscript'``) and card atomically."""
    check_name(card.name)
    folder = folder or user_models_dir()
    if card.format == "torchscript":
        buf = io.BytesIO()
        torch.jit.save(model, buf)
        data = buf.getvalue()
    else:
        data = st_save_bytes({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()})
    weights = atomic_write(folder / f"{card.name}{'.pt' if card.format == 'torchscript' else '.safetensors'}", data)
    write_json(folder / f"{card.name}.json", card.to_dict())  # the card last: a model is listed only when complete
    prefix = "zoo" if folder.resolve() == ZOO_DIR.resolve() else "user"
    return ModelEntry(f"{prefix}:{card.name}", card, weights)


def delete_model(entry: ModelEntry) -> None:
    """Remove a workspace model (the card first, so a half-deleted model is never listed)."""
    if not entry.id.startswith("user:"):
        raise ModelFileError("zoo models are part of the app and cannot be deleted")
    entry.weights.with_suffix(".json").unlink(missing_ok=True)
    entry.weights.unlink(missing_ok=True)


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
        except zipfile.BadZipFile:
            return "unknown"
        if any("/code/" in n or n.endswith("constants.pkl") for n in names):
            return "torchscript"
        if any(n.endswith("data.pkl") for n in names):
            return "pickle-zip"
        return "unknown"
    if data[:1] == b"\x80":
        return "pickle"
    return "unknown"


def read_state_dict(data: bytes) -> dict[str, torch.Tensor]:
    """Tensors from a safetensors file or a ``torch.save``-d state dict, read with ``weights_only=True``.

    A pickle that would build anything but tensors and plain containers (i.e. run code) is refused.
    """
    kind = sniff_format(data)
    if kind == "safetensors":
        try:
            return st_load_bytes(data)
        except Exception as e:  # safetensors raises its own error types
            raise ModelFileError(f"not a valid safetensors file: {e}") from e
    if kind in ("pickle-zip", "pickle"):
        try:
            obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, AttributeError, EOFError, ValueError) as e:
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


def _load_torchscript(data: bytes) -> nn.Module:
    if sniff_format(data) != "torchscript":
        raise ModelFileError("not a TorchScript archive (make one with torch.jit.script(model) and torch.jit.save)")
    try:
        return torch.jit.load(io.BytesIO(data), map_location="cpu")
    except Exception as e:  # TorchScript raises RuntimeError and friends
        raise ModelFileError(f"could not load TorchScript: {str(e).splitlines()[0][:300]}") from e


def fit_message(model: nn.Module, input_shape: tuple[int, int, int], num_classes: int) -> str | None:
    """None if ``model`` maps ``(1, *input_shape)`` to ``(1, num_classes)``; otherwise what went wrong."""
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, *input_shape))
    except Exception as e:  # any shape error from inside the user's model
        return f"the model does not accept inputs of shape {list(input_shape)} ({str(e).splitlines()[0][:200]})"
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[1] != num_classes:
        shape = list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return f"the model outputs {shape} but the dataset has {num_classes} classes (expected [1, {num_classes}])"
    return None


def import_model(data: bytes, name: str, dataset, arch: str | None = None) -> ModelEntry:
    """Check an uploaded model against ``dataset`` and save it to the workspace.

    ``data`` is TorchScript, or weights (safetensors / state dict) for the zoo architecture ``arch``.
    Raises :class:`ModelFileError` with a message saying what fits when it does not.
    """
    shape, k = tuple(dataset.input_shape), dataset.num_classes
    kind = sniff_format(data)
    if kind == "torchscript":
        model = _load_torchscript(data)
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
    return save_model(model, card)


def fits(entry: ModelEntry, dataset) -> bool:
    """Whether a model's card matches a dataset's input shape and class count."""
    return list(entry.card.input_shape) == list(dataset.input_shape) and entry.card.num_classes == dataset.num_classes


__all__ = [
    "ARCHITECTURES", "ModelCard", "check_name", "delete_model", "ModelEntry", "ModelFileError", "fit_message", "fits", "get_entry",
    "import_model", "list_models", "load_model", "read_state_dict", "save_model", "sniff_format",
]
