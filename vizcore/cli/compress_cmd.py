"""``compress`` (Tucker-compress a model, optionally repair it without data) and the ``kegnet-table`` preset
(seed 004's table: Original, T, T+Uniform, T+Gaussian, T+KegNet, T+vizcore's best)."""

from __future__ import annotations

import sys

from vizcore import zoo
from vizcore.cli import add_data_args, emit, model_and_dataset
from vizcore.core import distributed
from vizcore.distill.compression import (
    REPAIRS,
    SEED_RATIOS,
    IMAGE_REPAIR,
    SELECTIONS,
    TABLE_REPAIR,
    RepairConfig,
    compress_model,
    estimate_repair_seconds,
    start_compression_job,
)


def _config(args, keys=("n", "kegnet_n", "epochs", "kegnet_epochs", "kegnet_steps", "generators", "engine_steps", "seed",
                        "select")) -> RepairConfig:
    return RepairConfig(**{k: getattr(args, k) for k in keys if getattr(args, k, None) is not None})


def _run(teacher: str, dataset: str | None, data_root: str | None, ratio: float, methods: tuple[str, ...],
         config: RepairConfig, save_as: str | None = None, overwrite: bool = False) -> dict | None:
    if methods and distributed.is_main():
        entry = zoo.get_entry(teacher)
        model = zoo.load_model(entry)
        with distributed.alone():  # rank 0's probe: no collective in it may wait for the other ranks
            est = estimate_repair_seconds(model, compress_model(model, ratio=ratio)[0], methods, config,
                                          input_shape=tuple(entry.card.input_shape),
                                          class_names=list(entry.card.class_names),
                                          dataset=dataset or entry.card.dataset)
        print(f"repairs: {', '.join(methods)}; estimated " + ", ".join(f"{m} {s / 60:.1f}" for m, s in est.items())
              + f" min, {sum(est.values()) / 60:.1f} min in all on this machine", file=sys.stderr, flush=True)
    job = start_compression_job(teacher, dataset=dataset, ratio=ratio, methods=methods, config=config,
                                save_as=save_as, overwrite=overwrite, wait=True, data_root=data_root)
    if job is None:  # another rank of a torchrun job: rank 0 reports
        return None
    if job.state != "done":
        raise ValueError(f"job {job.id} {job.state}: {job.error or job.message}")
    return job.result


def _text(out: dict) -> str:
    lines = [f"{'approach':24} {'accuracy':>9} {'compression':>12} {'seconds':>8}"]
    lines += [f"{r['approach']:24} {r['accuracy']:9.2%} {r['compression']:11.2f}x {r['seconds']:8.1f}" for r in out["rows"]]
    if out.get("saved"):
        lines.append(f"saved as {out['saved']}")
    return "\n".join(lines)


def _public(out: dict) -> dict:
    return {**out, "rows": [{k: v for k, v in r.items() if k != "per_class_recall"} for r in out["rows"]]}


def cmd_compress(args) -> None:
    if args.ratio <= 1:
        raise ValueError("--ratio must be above 1 (parameters before / after)")
    entry, ds, _ = model_and_dataset(args, load=False)
    methods = () if args.finetune == "none" else (args.finetune,)
    name = args.name or f"{entry.card.name}-x{args.ratio:g}-{args.finetune}"
    if not args.overwrite and any(e.id == f"user:{name}" for e in zoo.list_models()):
        raise ValueError(f"a model named '{name}' exists; choose another --name or pass --overwrite")
    out = _run(entry.id, ds.name, args.data_root, args.ratio, methods, _config(args),
               save_as=zoo.check_name(name), overwrite=args.overwrite)
    if out is not None:
        emit(_public(out), args.json, _text(out))


def default_teacher(dataset: str) -> str:
    """The zoo teacher of seed 004's table for a dataset: its ``mlp10`` for a table, else its ``cnn``."""
    for arch in ("mlp10", "cnn"):
        for e in zoo.list_models(include_user=False):
            if e.card.dataset == dataset and e.card.arch == arch:
                return e.id
    raise ValueError(f"no zoo mlp10 or cnn for '{dataset}'; pass --teacher")


def cmd_kegnet_table(args) -> None:
    teacher = args.teacher or default_teacher(args.dataset)
    dataset = args.dataset or zoo.get_entry(teacher).card.dataset
    ratio = args.ratio or SEED_RATIOS.get(dataset)
    if not ratio:
        raise ValueError(f"no seed ratio for '{dataset}'; pass --ratio")
    # distill-preset's --n / --epochs defaults belong to seed 000's tables: the repair keeps its own
    out = _run(teacher, dataset, args.data_root, ratio, ("uniform", "gaussian", "kegnet", "best"),
               _config(args, ("kegnet_n", "kegnet_epochs", "kegnet_steps", "generators", "engine_steps", "seed",
                              "select")))
    if out is not None:
        emit(_public(out), args.json, _text(out))


def _by_kind(key: str) -> str:
    return f"default {TABLE_REPAIR[key]:,} for a table, {IMAGE_REPAIR[key]:,} for images"


def add_options(p) -> None:
    """Repair options shared by ``compress`` and ``distill-preset kegnet-table``."""
    p.add_argument("--n", type=int, help=f"synthetic inputs per repair ({_by_kind('n')})")
    p.add_argument("--kegnet-n", type=int, help=f"KegNet's inputs, shared by its generators ({_by_kind('kegnet_n')})")
    p.add_argument("--epochs", type=int, help=f"fine-tuning epochs on noise and the best repair's inputs "
                   f"({_by_kind('epochs')})")
    p.add_argument("--kegnet-epochs", type=int, help=f"fine-tuning epochs on KegNet's inputs ({_by_kind('kegnet_epochs')})")
    p.add_argument("--kegnet-steps", type=int, help=f"training steps per KegNet generator ({_by_kind('kegnet_steps')})")
    p.add_argument("--generators", type=int, help="KegNet's generators, each trained from its own seed (default 5, "
                   "as seed 004)")
    p.add_argument("--engine-steps", type=int, help=f"an image model's best repair: steps of the distillation engine "
                   f"from the compressed model (default {IMAGE_REPAIR['engine_steps']:,})")
    p.add_argument("--select", choices=SELECTIONS, help="which fine-tuning checkpoint is kept (the compressed start "
                   "included): synthetic (default; data-free) or real (accuracy on a tenth of the real training "
                   "split, as KegNet's code picks its epoch for the seed's tables: NOT data-free)")


def add_parser(sub) -> None:
    c = sub.add_parser("compress", help="Tucker-compress a model (seed 004) and repair it without data")
    c.add_argument("--model", required=True, help="model id (zoo:NAME, user:NAME) or name")
    add_data_args(c, "default: the model card's dataset (the repair's test split; the saved card's metrics)")
    c.add_argument("--ratio", type=float, required=True, help="parameters before / after, e.g. 4")
    c.add_argument("--finetune", choices=REPAIRS, default="none")
    c.add_argument("--name", help="name of the saved model (default MODEL-xRATIO-FINETUNE)")
    c.add_argument("--overwrite", action="store_true", help="replace a workspace model of that name")
    c.add_argument("--seed", type=int)
    c.add_argument("--json", action="store_true", help="print JSON for machines")
    add_options(c)
    c.set_defaults(func=cmd_compress, sharded=True)
