"""``knockout``: a knockout curve for one class and order, the accuracies for one mask, or the ranking study."""

from __future__ import annotations

from vizcore.cli import add_model_args, emit, model_and_dataset
from vizcore.data import class_index
from vizcore.explain.gradients import rank_filters
from vizcore.explain.importance import StudyConfig, compare_rankings, pg_scores
from vizcore.core.layers import default_layers
from vizcore.explain.knockout import (
    KnockoutEvaluator,
    class_images,
    eval_subset,
    knockout_curve,
    normalize_mask,
    parse_filters,
    random_curve,
)


def _setup(args):
    entry, ds, model = model_and_dataset(args)
    x, y = eval_subset(ds.test_x, ds.test_y, args.n_eval or None, args.seed)
    return entry, ds, model, KnockoutEvaluator(model, x, y, ds.num_classes)


def _mask_text(ds, r, target) -> str:
    lines = [f"knocked out: {sum(len(v) for v in r['filters'].values())} filters "
             f"({', '.join(f'{k}:{list(v)}' for k, v in r['filters'].items()) or 'none'})",
             f"overall accuracy {r['accuracy']:.4f}"]
    if target is not None:
        lines.append(f"class {ds.class_names[target]} accuracy {r['class_accuracy'][ds.class_names[target]]:.4f}")
    return "\n".join(lines)


def cmd_knockout(args) -> None:
    entry, ds, model, ev = _setup(args)
    target = None if args.class_ is None else class_index(ds.class_names, args.class_)
    if args.filters is not None:
        r = ev.evaluate(normalize_mask(model, parse_filters(args.filters))).to_dict(ds.class_names)
        r |= {"model": entry.id, "dataset": ds.name, "n_eval": len(ev.y)}
        emit(r, args.json, _mask_text(ds, r, target))
        return
    if target is None:
        raise ValueError("give --class C for a knockout curve (or --filters layer:i,... for one mask)")
    layers = args.layers.split(",") if args.layers else default_layers(model)
    rank_x, rank_y = class_images(ds.train_x, ds.train_y, target, args.n_rank)
    if args.compare:
        cfg = StudyConfig(target=target, max_k=args.max_k, layers=tuple(layers), n_rank_images=args.n_rank)
        out = compare_rankings(model, ev, rank_x, rank_y, cfg)
        out = {"model": entry.id, "dataset": ds.name, "class": ds.class_names[target], "config": cfg.to_dict(),
               "n_eval": len(ev.y)} | out
        text = "\n".join([f"{'ranking':10} {'spearman':>8} {'AUC hi':>7} {'AUC lo':>7}"] + [
            f"{r['ranking']:10} {r['spearman_vs_oracle']:8.3f} {r['class_auc_highest_first']:7.3f} "
            f"{r['class_auc_lowest_first']:7.3f}" for r in out["table"]])
        emit(out, args.json, text)
        return
    if args.order == "random":
        filters = [(n, i) for n in layers for i in range(ev.widths[n])]
        curve = random_curve(ev, filters, target, args.max_k)
    else:
        order = [(n, i) for n, i, _ in rank_filters(pg_scores(model, rank_x, target, layers))]
        order = order if args.order == "highest" else order[::-1]
        curve = knockout_curve(ev, order, target, args.max_k, f"PG {args.order}-first")
    out = {"model": entry.id, "dataset": ds.name, "class": ds.class_names[target], "order": args.order,
           "n_eval": len(ev.y)} | curve.to_dict()
    text = "\n".join([f"{'k':>3} {'class err':>9} {'overall err':>11}"] + [
        f"{k:3d} {c:9.3f} {o:11.3f}" for k, c, o in zip(curve.k, curve.class_error, curve.overall_error)])
    emit(out, args.json, text)


def add_parser(sub) -> None:
    p = sub.add_parser("knockout", help="knock out filters: a knockout curve, one mask, or the ranking study")
    add_model_args(p)
    p.add_argument("--class", dest="class_", help="class name or index")
    p.add_argument("--order", choices=("highest", "lowest", "random"), default="highest",
                   help="knock out filters highest-PG-first, lowest-first, or in random orders (mean of 5 seeds)")
    p.add_argument("--max-k", type=int, default=20, help="knock out up to K filters")
    p.add_argument("--layers", help="comma-separated layers to rank (default: the conv layers)")
    p.add_argument("--filters", help="one mask, layer:i,layer:j,...: print the accuracies with it")
    p.add_argument("--compare", action="store_true", help="compare PG, weight L1, Taylor and the oracle ranking")
    p.add_argument("--n-eval", type=int, default=2000, help="test images to evaluate on (0: all); same subset as the app")
    p.add_argument("--n-rank", type=int, default=500, help="training images of the class used to rank the filters")
    p.add_argument("--seed", type=int, default=0, help="seed of the evaluation subset")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_knockout)
