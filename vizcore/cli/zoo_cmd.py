"""Commands for datasets and models: ``data list|fetch|import``, ``zoo list|import``, ``train``, ``evaluate``."""

from __future__ import annotations

from dataclasses import fields

from vizcore import data, zoo
from vizcore.cli import add_data_args, add_model_args, emit, model_and_dataset
from vizcore.core import distributed
from vizcore.metrics import evaluate_model
from vizcore.train import TrainConfig, recipe_config, train_teacher


def _report_text(title: str, report: dict) -> str:
    lines = [f"{title}: accuracy {report['accuracy']:.4f} on {report['n']} test images",
             f"{'class':>16} {'precision':>9} {'recall':>7} {'f1':>6} {'n':>5}"]
    for r in report["per_class"]:
        lines.append(f"{r['class'][:16]:>16} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f} {r['support']:5d}")
    return "\n".join(lines)


def cmd_data_list(args) -> None:
    have = set(data.available())
    rows = [{"name": n, "available": n in have} for n in data.list_datasets()]
    emit(rows, args.json, "\n".join(f"{r['name']:15} {'yes' if r['available'] else 'missing'}" for r in rows))


def cmd_data_fetch(args) -> None:
    ds = data.load_dataset(args.name, root=args.root, download=True)
    emit(ds.summary(), args.json, f"{ds.name}: {len(ds.train_x)} train / {len(ds.test_x)} test images, {ds.source}")


def cmd_zoo_list(args) -> None:
    rows = [{"id": e.id, "dataset": e.card.dataset, "arch": e.card.arch,
             "accuracy": e.card.metrics.get("accuracy"), "file": str(e.weights)} for e in zoo.list_models()]
    text = "\n".join(f"{r['id']:34} {r['dataset']:14} {r['arch']:12} "
                     f"{'' if r['accuracy'] is None else format(r['accuracy'], '.4f')}" for r in rows)
    emit(rows, args.json, text or "no models")


def cmd_train(args) -> None:
    ds = data.load_dataset(args.dataset, root=args.data_root)
    cfg = recipe_config(args.arch, len(ds.train_x), **{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    folder = zoo.ZOO_DIR if args.zoo else None

    shown = [-1]

    def progress(frac: float, msg: str) -> None:
        if not args.json and args.verbose and distributed.is_main() and int(frac * 20) != shown[0]:
            shown[0] = int(frac * 20)
            print(f"{frac:6.1%} {msg}", flush=True)

    entry = train_teacher(ds, args.arch, cfg, args.name, folder=folder, progress=progress, overwrite=args.overwrite)
    if entry is None:  # another rank of a torchrun job: rank 0 reports
        return
    m = entry.card.metrics
    emit({"id": entry.id, "accuracy": m["accuracy"], "train_seconds": entry.card.train_seconds, "metrics": m},
         args.json, _report_text(entry.id, m) + f"\ntrained in {entry.card.train_seconds:.1f} s; saved {entry.weights}")


def _read_upload(path: str) -> bytes:
    """The bytes of a file given on the command line, refused before reading when larger than an upload may be."""
    from pathlib import Path

    from vizcore.core.archive import MAX_UPLOAD

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no file {path}")
    if p.stat().st_size > MAX_UPLOAD:
        raise ValueError(f"too large: {p.stat().st_size / 2**20:.0f} MiB (at most {MAX_UPLOAD // 2**20} MiB)")
    return p.read_bytes()


def _default_name(path: str) -> str:
    from pathlib import Path

    from vizcore.core.workspace import name_from

    return name_from(Path(path).name.split(".")[0], "upload")


def cmd_zoo_import(args) -> None:
    """The same checks and code path as an upload on *Models & data*."""
    blob = _read_upload(args.file)
    ds = data.load_dataset(args.dataset, root=args.data_root)
    entry = zoo.import_model(blob, args.name or _default_name(args.file), ds, args.arch, overwrite=args.overwrite)
    out = {"id": entry.id, "format": entry.card.format, "arch": entry.card.arch, "dataset": ds.name,
           "accuracy": entry.card.metrics["accuracy"], "file": str(entry.weights)}
    emit(out, args.json, f"added {entry.id} ({entry.card.format}): accuracy {out['accuracy']:.4f} on {ds.name}")


def cmd_data_import(args) -> None:
    """The same checks and code path as a dataset upload on *Models & data*."""
    blob = _read_upload(args.file)
    path, ds = data.import_npz(blob, args.name or _default_name(args.file), overwrite=args.overwrite)
    out = {**ds.summary(), "dataset": f"npz:{path}", "file": str(path)}
    emit(out, args.json, f"added {path.stem}: {out['train']} train / {out['test']} test images of shape "
                         f"{out['input_shape']}, {out['classes']} classes; use --dataset npz:{path}")


def cmd_evaluate(args) -> None:
    entry, ds, model = model_and_dataset(args)
    report = evaluate_model(model, ds.test_x, ds.test_y, ds.class_names)
    card_acc = entry.card.metrics.get("accuracy")
    out = {"id": entry.id, "dataset": ds.name, "accuracy": report["accuracy"], "card_accuracy": card_acc,
           "per_class": report["per_class"]}
    emit(out, args.json, _report_text(entry.id, report) + (f"\nmodel card says {card_acc:.4f}" if card_acc is not None else ""))


def add_parser(sub) -> None:
    def common(p):
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        return p

    p = sub.add_parser("data", help="list or fetch datasets")
    dsub = p.add_subparsers(dest="data_command", required=True)
    common(dsub.add_parser("list", help="datasets and whether their files are here")).set_defaults(func=cmd_data_list)
    f = common(dsub.add_parser("fetch", help="download a torchvision dataset (needs internet)"))
    f.add_argument("name", choices=sorted(data.TORCHVISION_SETS))
    f.add_argument("--root", help="where to put it (default: the workspace)")
    f.set_defaults(func=cmd_data_fetch)
    i = common(dsub.add_parser("import", help="check an .npz dataset and add it to the workspace (as the app does)"))
    i.add_argument("file", help="the .npz file")
    i.add_argument("--name", help="dataset name (default: the file name)")
    i.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name")
    i.set_defaults(func=cmd_data_import)

    p = sub.add_parser("zoo", help="the model zoo and your workspace models")
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    common(zsub.add_parser("list", help="list models")).set_defaults(func=cmd_zoo_list)
    i = common(zsub.add_parser("import", help="check an uploaded model against a dataset and add it (as the app does)"))
    i.add_argument("file", help="TorchScript (.pt), safetensors, or a torch.save-d state dict")
    add_data_args(i, "the dataset it must fit", required=True)
    i.add_argument("--arch", choices=sorted(zoo.ARCHITECTURES), help="the zoo architecture of weights")
    i.add_argument("--name", help="model name (default: the file name)")
    i.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    i.set_defaults(func=cmd_zoo_import)

    t = common(sub.add_parser("train", help="train a teacher and save it with its model card"))
    add_data_args(t, "", required=True)
    t.add_argument("--arch", required=True, choices=sorted(zoo.ARCHITECTURES))
    t.add_argument("--name", help="model name (default DATASET-ARCH)")
    t.add_argument("--zoo", action="store_true", help="save into assets/models (the shipped zoo)")
    t.add_argument("--overwrite", action="store_true", help="replace a model of the same name")
    t.add_argument("-v", "--verbose", action="store_true", help="show progress")
    defaults = TrainConfig()
    for f in fields(TrainConfig):  # unset: the architecture's recipe (lr, batch size, optimizer, epochs), else TrainConfig's
        t.add_argument("--" + f.name.replace("_", "-"), type=type(getattr(defaults, f.name)), default=None,
                       help="default: the architecture's recipe" if f.name in ("epochs", "batch_size", "lr", "optimizer")
                       else f"default {getattr(defaults, f.name)}")
    t.set_defaults(func=cmd_train, sharded=True)

    e = common(sub.add_parser("evaluate", help="accuracy and per-class metrics of a model on a test split"))
    add_model_args(e)
    e.set_defaults(func=cmd_evaluate)
