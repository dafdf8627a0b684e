"""``distill`` (one data-free run) and ``distill-preset`` (seed 000 Tables 1 and 2, seed 003's table)."""

from __future__ import annotations

from vizcore.distill import protocol, presets
from vizcore import zoo
from vizcore.cli import add_data_args, emit
from vizcore.distill.students import SKLEARN_STUDENTS, STUDENT_KINDS, StudentConfig
from vizcore.distill.synthesis import METHODS, SynthesisConfig

TABLE1_STUDENTS = ("mlp3", "rf", "svm", "cnn_s", "cnn_l", "cnn_tiny")


def _run(config: protocol.DistillConfig, data_root: str | None) -> dict:
    job = protocol.start_run(config, wait=True, data_root=data_root)
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
            "sweep": rep["sweep"], "class_names": rep["class_names"]}


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
    return SynthesisConfig(method=method or args.method, n=args.n, seed=args.seed, **{
        k: v for k, v in (("max_steps", args.steps), ("train_steps", args.train_steps),
                          ("threshold", args.threshold), ("threshold_max", args.threshold_max)) if v is not None}, **kw)


def _students(args, archs) -> tuple[StudentConfig, ...]:
    return tuple(StudentConfig(arch=a, labels=args.labels, epochs=args.epochs, seed=args.seed, lr=args.lr,
                               temperature=args.temperature, relabel=args.relabel and a not in SKLEARN_STUDENTS)
                 for a in archs)


def cmd_distill(args) -> None:
    entry = zoo.get_entry(args.teacher)
    archs = [a for s in args.student for a in s.split(",") if a] or [entry.card.arch]
    cfg = protocol.DistillConfig(teacher=entry.id, dataset=args.dataset or entry.card.dataset,
                             synthesis=_synthesis(args), students=_students(args, archs), baseline=not args.no_baseline,
                             sizes=tuple(args.sizes or ()), preset="bias-only" if args.bias_only else "")
    out = _compact(_run(cfg, args.data_root))
    emit(out, args.json, _text(out))


def cmd_preset(args) -> None:
    entry = zoo.get_entry(args.teacher)
    ds = args.dataset or entry.card.dataset
    arch = entry.card.arch
    if args.table == "seed003-subset":  # seed 003 section 8: class-subset teachers, one visualization swapped
        job = presets.start_subset_run(entry.id, ds, args.cls, args.versus, wait=True, data_root=args.data_root)
        if job.state != "done":
            raise ValueError(f"run {job.id} {job.state}: {job.error or job.message}")
        emit(job.result, args.json, _subset_text(job.result))
        return
    if args.table == "table1":  # seed 000 Table 1: many students, one synthetic set
        archs = tuple(dict.fromkeys((arch,) + TABLE1_STUDENTS))  # the teacher's architecture first (CNN_ID)
        cfgs = [protocol.DistillConfig(entry.id, ds, _synthesis(args), _students(args, archs))]
    elif args.table == "table2":  # seed 000 Table 2: accuracy against size, real subsets of the same size
        sizes = tuple(s for s in (args.n // 30, args.n // 6, args.n // 3, args.n) if s >= 10)
        cfgs = [protocol.DistillConfig(entry.id, ds, _synthesis(args), _students(args, (arch,)), sizes=sizes)]
    else:  # seed 003: visualizations / weight images / class averages -> same arch; deeper student; bias-only
        one = dict(per_class=1)
        cfgs = [
            protocol.DistillConfig(entry.id, ds, _synthesis(args, "pixel-am", **one), _students(args, (arch, "mlp")),
                               preset="bias-only"),
            protocol.DistillConfig(entry.id, ds, _synthesis(args, "weight-images", **one), _students(args, (arch,)), baseline=False),
            protocol.DistillConfig(entry.id, ds, _synthesis(args, "class-averages", **one), _students(args, (arch,)), baseline=False),
        ]
    outs = [_compact(_run(c, args.data_root)) for c in cfgs]
    emit(outs, args.json, "\n\n".join(_text(o) for o in outs))


def add_parser(sub) -> None:
    def options(p):
        p.add_argument("--teacher", required=True, help="model id (zoo:NAME, user:NAME) or name")
        add_data_args(p, "default: the teacher's dataset (used for the baseline and the final test)")
        p.add_argument("--method", choices=METHODS, default="generator-am")
        p.add_argument("--n", type=int, default=2000, help="synthetic images")
        p.add_argument("--labels", choices=("soft", "hard"), default="soft")
        p.add_argument("--epochs", type=int, default=20)
        p.add_argument("--relabel", action="store_true",
                       help="keep the teacher in the loop of the torch students: every batch is rescaled in brightness "
                            "and labelled afresh by the teacher (data-free; SVM and RF are fitted once, without it)")
        p.add_argument("--lr", type=float, default=1e-3, help="student learning rate")
        p.add_argument("--temperature", type=float, default=1.0, help="soft-label temperature")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--steps", type=int, help="generator / pixel AM: max ascent steps")
        p.add_argument("--train-steps", type=int, help="KegNet (per generator) / DFAD training steps")
        p.add_argument("--threshold", type=float, help="AM threshold T (default 0.99)")
        p.add_argument("--threshold-max", type=float, help="draw T uniformly in [threshold, this] per batch")
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        return p

    d = options(sub.add_parser("distill", help="data-free distillation: synthetic set -> students -> one test read"))
    d.add_argument("--student", action="append", default=[], help=f"architecture(s), repeat or comma-separate: {', '.join(STUDENT_KINDS)}")
    d.add_argument("--no-baseline", action="store_true", help="skip the real-data baseline")
    d.add_argument("--sizes", type=protocol.parse_sizes, help="also train on the first S images, e.g. 400,2000")
    d.add_argument("--bias-only", action="store_true", help="add seed 003's bias-only linear student")
    d.set_defaults(func=cmd_distill)
    p = options(sub.add_parser("distill-preset", help="seed 000 Table 1 / Table 2 (--method: generator AM as in "
                                                      "the seed, or another), seed 003's table"))
    p.add_argument("table", choices=("table1", "table2", "seed003", "seed003-subset"))
    p.add_argument("--class", dest="cls", type=int, default=3, help="seed003-subset: the class whose visualization is swapped")
    p.add_argument("--versus", type=int, default=4, help="seed003-subset: the other class of the two-class teacher")
    p.set_defaults(func=cmd_preset)
