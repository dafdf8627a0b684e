"""Commands for prediction gradients and targeted perturbations: ``pg`` and ``perturb`` (seed 002 chapter 4)."""

from __future__ import annotations

from vizcore.explain.perturb import PerturbConfig, perturbation_sweep
from vizcore.cli import add_model_args, emit, model_and_dataset
from vizcore.data import class_index
from vizcore.explain.knockout import class_images
from vizcore.explain.gradients import NORMS, OUTPUTS, class_filter_scores, rank_filters


def cmd_pg(args) -> None:
    entry, ds, model = model_and_dataset(args)
    c = class_index(ds.class_names, args.cls)
    x, _ = class_images(ds.train_x, ds.train_y, c)  # the Knockout page's ranking images; the test set judges
    scores = class_filter_scores(model, x, c, layers=args.layer, norm=args.norm, output=args.output)
    ranking = rank_filters(scores)
    out = {"model": entry.id, "dataset": ds.name, "class": ds.class_names[c], "class_index": c, "images": len(x),
           "norm": args.norm, "output": args.output,
           "ranking": [{"layer": n, "filter": i, "score": s} for n, i, s in ranking],
           "scores": {n: s.tolist() for n, s in scores.items()}}
    k = args.top
    lines = [f"{entry.id} on {ds.name}: class-averaged PG for '{ds.class_names[c]}' over {len(x)} training images "
             f"({args.norm} norm of d {args.output} / d a)", f"{'highest':<30}{'lowest'}"]
    low = ranking[::-1]
    for hi, lo in zip(ranking[:k], low[:k]):
        lines.append(f"{hi[0]:>8} #{hi[1]:<4} {hi[2]:<14.5g}{lo[0]:>8} #{lo[1]:<4} {lo[2]:.5g}")
    emit(out, args.json, "\n".join(lines))


def cmd_perturb(args) -> None:
    entry, ds, model = model_and_dataset(args)
    targets = tuple(class_index(ds.class_names, t) for t in args.target) if args.target else None
    cfg = PerturbConfig(eps=tuple(args.eps), steps=args.steps, output=args.output, per_class=args.per_class,
                        targets=targets)
    r = perturbation_sweep(model, ds.test_x, ds.test_y, cfg)
    out = {"model": entry.id, "dataset": ds.name, **r.to_dict(),
           "target_names": [ds.class_names[t] for t in r.targets]}
    lines = [f"{entry.id} on {ds.name}: {r.n_images} test images (accuracy {r.base_accuracy:.3f}) pushed towards "
             f"{len(r.targets)} target classes, {cfg.steps} step(s)", f"{'step':>8} {'error':>8} {'reached':>8}"]
    for e, err, s in zip(r.eps, r.error, r.success_rate):
        lines.append(f"{e:8.3g} {err:8.3f} {s:8.3f}")
    emit(out, args.json, "\n".join(lines))


def add_parser(sub) -> None:
    def common(p):
        add_model_args(p)
        p.add_argument("--output", choices=OUTPUTS, default="prob", help="differentiate the softmax probability or the logit")
        p.add_argument("--json", action="store_true", help="print JSON for machines")
        return p

    p = common(sub.add_parser("pg", help="class-averaged prediction gradients: per-filter scores and their ranking"))
    p.add_argument("--class", dest="cls", required=True, help="class name or index")
    p.add_argument("--layer", action="append", help="layer name (repeat for several; default every conv layer)")
    p.add_argument("--norm", choices=NORMS, default="fro", help="how a filter's PG map becomes one score")
    p.add_argument("--top", type=int, default=5, help="rows of the text table")
    p.set_defaults(func=cmd_pg)

    q = common(sub.add_parser("perturb", help="targeted perturbations along d y_target / d x: success and error rates"))
    q.add_argument("--target", action="append", help="target class name or index (repeat; default every class)")
    q.add_argument("--eps", type=float, nargs="+", default=list(PerturbConfig.eps), help="step sizes (L2 distance)")
    q.add_argument("--steps", type=int, default=1, help="iterations per step size (1: the seed's single step)")
    q.add_argument("--per-class", type=int, default=20, help="test images per source class")
    q.set_defaults(func=cmd_perturb)
