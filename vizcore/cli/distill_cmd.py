"""``distill`` (one data-free run) and ``distill-preset`` (seed 000 Tables 1 and 2, seed 003's table, seed 004's
``kegnet-table``)."""

from __future__ import annotations

import sys
from dataclasses import replace

from vizcore import zoo
from vizcore.cli import add_data_args, emit, rank_zero_alone
from vizcore.core import distributed
from vizcore.distill import presets, protocol
from vizcore.distill.compression import TABLE_REPAIR
from vizcore.distill.engine import LOSSES, MIXES
from vizcore.distill.methods import (
    BUDGET_RULE,
    DEFAULT_ENGINE,
    DEFAULT_METHOD,
    DEFAULT_N,
    METHOD_DEFAULTS,
    ONLINE,
    default_engine,
    estimate_seconds,
)
from vizcore.distill.seed_tables import (
    SEED003_FIGURES,
    SEED003_SYNTHESIS,
    SEED_PRESETS,
    preset_config,
    seed003_student,
)
from vizcore.distill.students import SKLEARN_STUDENTS, STUDENT_KINDS, StudentConfig
from vizcore.distill.synthesis import METHODS, SynthesisConfig


def _run(config: protocol.DistillConfig, data_root: str | None, resume: str | None = None,
         job_id: str | None = None) -> dict | None:
    """The run's report on rank 0 (the only rank with a job); None on the other ranks of a torchrun job."""
    job = protocol.start_run(config, wait=True, resume=resume, data_root=data_root, job_id=job_id)
    if job is None:
        return None
    if job.state != "done":
        raise ValueError(f"run {job.id} {job.state}: {job.error or job.message}")
    return protocol.load_report(job.id) | {"run_id": job.id}


def _compact(rep: dict) -> dict:
    def one(r):
        return {"name": r["name"], "accuracy": round(r["accuracy"], 4), "ratio": round(r["ratio"], 4),
                "train_seconds": r["seconds"], "f1": [round(c["f1"], 4) for c in r["report"]["per_class"]]}
    return {"run_id": rep["run_id"], "teacher": rep["teacher"]["id"], "teacher_accuracy": round(rep["teacher"]["accuracy"], 4),
            "method": rep["config"]["synthesis"]["method"], "n": rep["synthesis"]["n"],
            "synthesis_seconds": rep["synthesis"]["seconds"], "seconds": rep["seconds"],
            "students": [one(s) for s in rep["students"]], "baselines": [one(b) for b in rep["baselines"]],
            "sweep": rep["sweep"], "class_names": rep["class_names"], "world_size": rep.get("world_size", 1),
            "synthetic_sha256": rep["synthesis"].get("synthetic_sha256")}


def _text(out: dict) -> str:
    lines = [f"run {out['run_id']}: {out['method']} x{out['n']} from {out['teacher']} "
             f"(teacher accuracy {out['teacher_accuracy']:.4f}); synthesis {out['synthesis_seconds']:.1f} s, "
             f"total {out['seconds']:.1f} s",
             f"{'model':24} {'accuracy':>8} {'of teacher':>10} {'train s':>8}  F1 per class"]
    for r in out["students"] + out["baselines"]:
        lines.append(f"{r['name']:24} {r['accuracy']:8.4f} {r['ratio']:10.3f} {r['train_seconds']:8.1f}  "
                     + " ".join(f"{f:.2f}" for f in r["f1"]))
    for s in out["sweep"]:
        lines.append(f"size {s['size']:>7}: synthetic {s['synthetic']:.4f}  real {s['real'] if s['real'] is None else round(s['real'], 4)}")
    return "\n".join(lines)


def _subset_text(out: dict) -> str:
    lines = [f"teacher accuracy {out['teacher_accuracy']:.4f}"]
    lines += [f"{r['task']:28} teacher {r['teacher_accuracy']:.4f}  student from 2 visualizations {r['student_accuracy']:.4f}"
              for r in out["two_class"]]
    lines += [f"{r['training set']:44} " + "  ".join(f"{k} {v:.4f}" for k, v in r.items() if isinstance(v, float))
              for r in out["ten_class"]]
    return "\n".join(lines)


def _synthesis(args, method: str | None = None, **kw) -> SynthesisConfig:
    """The method's settings from the options; a method's measured defaults where none is given (``distill``)."""
    method = method or args.method
    given = {k: v for k, v in (("max_steps", args.steps), ("train_steps", args.train_steps),
                               ("threshold", args.threshold), ("threshold_max", args.threshold_max)) if v is not None}
    base = {} if given or args.func is not cmd_distill else METHOD_DEFAULTS.get(method, {})
    shard = {"shard_images": args.shard_images} if args.shard_images else {}
    return SynthesisConfig(method=method, n=args.n, seed=args.seed, **{**base, **given, **shard}, **kw)


def _students(args, archs) -> tuple[StudentConfig, ...]:
    return tuple(StudentConfig(arch=a, labels=args.labels, epochs=args.epochs, seed=args.seed, lr=args.lr,
                               temperature=args.temperature, relabel=args.relabel and a not in SKLEARN_STUDENTS)
                 for a in archs)


def _engine(args, input_shape):
    if args.no_engine:
        return None
    return replace(default_engine(input_shape), seed=args.seed, **{k: v for k, v in (
        ("steps", args.budget), ("loss", args.kd_loss), ("mix", args.mix)) if v is not None})


def _queued(job_id: str) -> protocol.DistillConfig:
    """The config of the queued job ``job_id`` (the app's multi-process run), read by rank 0 and sent to all."""
    from vizcore.core.jobs import queued_job

    cfg = None
    if distributed.is_main():
        cfg = protocol.DistillConfig.from_dict(queued_job(job_id, protocol.JOB_KIND).config)
    return distributed.broadcast(cfg)


def cmd_distill(args) -> None:
    if args.job:  # every other option is the queued job's
        rep = _run(_queued(args.job), args.data_root, job_id=args.job)
        if rep is not None:
            out = _compact(rep)
            emit(out, args.json, _text(out))
        return
    if not args.teacher:
        raise ValueError("distill needs --teacher")
    entry = zoo.get_entry(args.teacher)
    archs = [a for s in args.student for a in s.split(",") if a] or [entry.card.arch]
    cfg = protocol.DistillConfig(teacher=entry.id, dataset=args.dataset or entry.card.dataset,
                             synthesis=_synthesis(args), students=_students(args, archs), baseline=not args.no_baseline,
                             sizes=tuple(args.sizes or ()), preset="bias-only" if args.bias_only else "",
                             engine=_engine(args, entry.card.input_shape))
    if args.resume:
        cfg = _resumed(args.resume, cfg)
    if distributed.is_main():
        with distributed.alone():  # rank 0's probe: no collective in it may wait for the other ranks
            est = estimate_seconds(cfg)
        est /= distributed.world_size()
        print(f"budget: {cfg.synthesis.method} x{cfg.synthesis.n}"
              + (f", {cfg.engine.steps} engine steps per student" if cfg.engine else f", {args.epochs} epochs per student")
              + f"; estimated {est / 60:.1f} min on this machine"
              + (f" with {distributed.world_size()} processes" if distributed.world_size() > 1 else ""),
              file=sys.stderr, flush=True)
    rep = _run(cfg, args.data_root, args.resume)
    if rep is not None:
        out = _compact(rep)
        emit(out, args.json, _text(out))


def _resumed(run_id: str, cfg: protocol.DistillConfig) -> protocol.DistillConfig:
    """The config of the interrupted run ``run_id``, which must be the command's own (rank 0 checks)."""
    from vizcore.core.jobs import jobs_dir

    if distributed.is_main():
        path = jobs_dir() / run_id / "job.json"
        if not path.exists():
            raise ValueError(f"no run '{run_id}' to resume in {jobs_dir()}")
        job = protocol.get_job(run_id)
        if job.state == "done":
            raise ValueError(f"run {run_id} finished; there is nothing to resume")
        if protocol.DistillConfig.from_dict(job.config) != cfg:
            raise ValueError(f"run {run_id} had other settings: resume it with the command that started it")
    return cfg


def _preset_args(args, preset) -> object:
    """The preset's settings where the user gave none (the settings that reproduce the paper)."""
    from argparse import Namespace

    syn = preset.synthesis
    fill = {"method": syn.method, "n": preset.n, "labels": preset.labels, "epochs": preset.epochs, "lr": 1e-3,
            "temperature": 1.0, "threshold": syn.threshold, "threshold_max": syn.threshold_max}
    return Namespace(**{**vars(args), **{k: v for k, v in fill.items() if getattr(args, k) is None}})


def _seed_text(preset, outs: list[dict]) -> str:
    fig = preset.seed_figures
    lines = [preset.title, f"seed 000 on MNIST (teacher {fig['teacher']} %): " + ", ".join(
        f"{k}: " + " / ".join("-" if v is None else f"{v} %" for v in vals) for k, vals in fig["rows"].items())
        + f"  [{' / '.join(fig['columns'])}]"]
    return "\n".join(lines) + "\n" + "\n\n".join(_text(o) for o in outs)


def preset_configs(args, entry) -> list[protocol.DistillConfig]:
    """The runs of a preset: the paper's settings wherever the user gave no option."""
    ds, arch = args.dataset or entry.card.dataset, entry.card.arch
    if args.table == "seed003":  # visualizations / weight images / class averages; deeper student; bias-only
        student = replace(seed003_student(arch), **{k: v for k, v in (("epochs", args.epochs), ("lr", args.lr),
                                                                      ("seed", args.seed)) if v is not None})
        return [
            protocol.DistillConfig(entry.id, ds, replace(SEED003_SYNTHESIS, seed=args.seed),
                                   (student, replace(student, arch="mlp")), preset="bias-only"),
            protocol.DistillConfig(entry.id, ds, replace(SEED003_SYNTHESIS, method="weight-images", visualize=None),
                                   (student,), baseline=False),
            protocol.DistillConfig(entry.id, ds, replace(SEED003_SYNTHESIS, method="class-averages", visualize=None),
                                   (student,), baseline=False),
        ]
    args = _preset_args(args, SEED_PRESETS[args.table])
    cfg = preset_config(args.table, entry.id, ds, arch, n=args.n)  # its students and sizes; the options override
    return [replace(cfg, synthesis=_synthesis(args), students=_students(args, [s.arch for s in cfg.students]))]


def cmd_preset(args) -> None:
    if args.table == "kegnet-table":  # seed 004: Tucker compression repaired without data
        from vizcore.cli.compress_cmd import cmd_kegnet_table

        cmd_kegnet_table(args)
        return
    if not args.teacher:
        raise ValueError(f"{args.table} needs --teacher")
    entry = zoo.get_entry(args.teacher)
    if args.table == "seed003-subset":  # seed 003 section 8: class-subset teachers, one visualization swapped
        if not rank_zero_alone(f"distill-preset {args.table}"):
            return
        job = presets.start_subset_run(entry.id, args.dataset or entry.card.dataset, args.cls, args.versus, wait=True,
                                       data_root=args.data_root)
        if job.state != "done":
            raise ValueError(f"run {job.id} {job.state}: {job.error or job.message}")
        emit(job.result, args.json, _subset_text(job.result))
        return
    outs = [_compact(_run(c, args.data_root)) for c in preset_configs(args, entry)]
    if args.table == "seed003":
        emit({"seed_figures": SEED003_FIGURES, "runs": outs}, args.json,
             "seed 003 (linear teachers): " + ", ".join(f"{k} {v} %" for k, v in SEED003_FIGURES.items())
             + "\n" + "\n\n".join(_text(o) for o in outs))
        return
    preset = SEED_PRESETS[args.table]
    out = {"preset": preset.name, "title": preset.title, "seed_figures": preset.seed_figures, **outs[0]}
    emit(out, args.json, _seed_text(preset, [out]))


def add_parser(sub) -> None:
    def options(p, preset=False):
        """``preset``: every setting defaults to the paper's (None here)."""
        def dflt(v):
            return None if preset else v
        p.add_argument("--teacher", help="model id (zoo:NAME, user:NAME) or name")
        add_data_args(p, "default: the teacher's dataset (used for the baseline and the final test)")
        p.add_argument("--method", choices=METHODS, default=dflt(DEFAULT_METHOD))
        p.add_argument("--images", "--n", dest="n", type=int, default=dflt(DEFAULT_N),
                       help="synthetic images (an online method: the images its memory bank keeps); under torchrun "
                            "write --images (torchrun's own parser takes --n for one of its options)")
        p.add_argument("--labels", choices=("soft", "hard"), default=dflt("soft"))
        p.add_argument("--epochs", type=int, default=dflt(20))
        p.add_argument("--relabel", action="store_true",
                       help="keep the teacher in the loop of the torch students: every batch is rescaled in brightness "
                            "and labelled afresh by the teacher (data-free; SVM and RF are fitted once, without it)")
        p.add_argument("--lr", type=float, default=dflt(1e-3), help="student learning rate")
        p.add_argument("--temperature", type=float, default=dflt(1.0), help="soft-label temperature")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--steps", type=int, help="generator / pixel AM: max ascent steps")
        p.add_argument("--train-steps", type=int, help="KegNet (per generator) / DFAD training steps")
        p.add_argument("--threshold", type=float, help="AM threshold T (default 0.99)")
        p.add_argument("--shard-images", type=int, help="synthesis is made in chunks of this many images, each with "
                       "a seed derived from its index (default 1000): the unit torchrun splits across processes")
        p.add_argument("--threshold-max", type=float, help="draw T uniformly in [threshold, this] per batch")
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        return p

    d = options(sub.add_parser("distill", help="data-free distillation: synthetic set -> students -> one test read"))
    d.add_argument("--budget", type=int, help=f"engine steps per torch student (default: {BUDGET_RULE}); the "
                                              "estimate is printed before the run starts")
    d.add_argument("--kd-loss", choices=LOSSES, help=f"engine loss (default {DEFAULT_ENGINE.loss}: KL at temperature "
                                                     f"{ONLINE['temperature']:g} for the default and online methods, "
                                                     f"{DEFAULT_ENGINE.temperature:g} for a fixed set; l1: DFAD's L1 between logits)")
    d.add_argument("--mix", choices=MIXES, help=f"engine augmentation, relabelled by the teacher (default {DEFAULT_ENGINE.mix})")
    d.add_argument("--no-engine", action="store_true",
                   help="train on the stored labels for --epochs (the seeds' way) instead of the engine")
    d.add_argument("--student", action="append", default=[], help=f"architecture(s), repeat or comma-separate: {', '.join(STUDENT_KINDS)}")
    d.add_argument("--no-baseline", action="store_true", help="skip the real-data baseline")
    d.add_argument("--sizes", type=protocol.parse_sizes, help="also train on the first S images, e.g. 400,2000")
    d.add_argument("--bias-only", action="store_true", help="add seed 003's bias-only linear student")
    d.add_argument("--resume", metavar="RUN_ID", help="take up an interrupted run (same command): its synthetic set "
                                                      "and the engine's last checkpoint")
    d.add_argument("--job", metavar="JOB_ID", help="run the queued job JOB_ID with its settings (the app starts its "
                                                   "multi-process runs this way)")
    d.set_defaults(func=cmd_distill, sharded=True)
    p = options(sub.add_parser("distill-preset", help="seed 000 Tables 1, 2, 6, 7 and seed 003's table with the settings "
                                                      "that reproduce them (any option overrides), beside the seeds' figures"),
                preset=True)
    p.add_argument("table", choices=tuple(SEED_PRESETS) + ("seed003", "seed003-subset", "kegnet-table"))
    p.add_argument("--ratio", type=float, help="kegnet-table: compression ratio (default: the seed's for the dataset)")
    p.add_argument("--kegnet-steps", type=int, help="kegnet-table: training steps per KegNet generator (default "
                   f"{TABLE_REPAIR['kegnet_steps']:,})")
    p.add_argument("--kegnet-n", type=int, help="kegnet-table: KegNet's rows, shared by its generators (default "
                   f"{TABLE_REPAIR['kegnet_n']:,})")
    p.add_argument("--kegnet-epochs", type=int, help="kegnet-table: fine-tuning epochs on KegNet's rows (default "
                   f"{TABLE_REPAIR['kegnet_epochs']})")
    p.add_argument("--generators", type=int, help="kegnet-table: KegNet's generators (default 5, as seed 004)")
    p.add_argument("--class", dest="cls", type=int, default=3, help="seed003-subset: the class whose visualization is swapped")
    p.add_argument("--versus", type=int, default=4, help="seed003-subset: the other class of the two-class teacher")
    p.set_defaults(func=cmd_preset, sharded=True)
