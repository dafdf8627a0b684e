"""``python -m vizcore visualize``: class visualizations of a model, written as the page's ``.npz``."""

from __future__ import annotations

import time

from vizcore import data, zoo
from vizcore.cli import add_data_args, emit
from vizcore.explain.visualize import PIXELS, PRECISIONS, STARTS, VisualizeConfig, class_averages, class_visualizations, summary


def cmd_visualize(args) -> None:
    entry = zoo.get_entry(args.model)
    card = entry.card
    classes = args.classes if args.classes else list(range(card.num_classes))
    config = VisualizeConfig(
        start=args.start, objective=args.objective, steps=args.steps, lr=args.lr, optimizer=args.optimizer,
        pixel=args.pixel, l2=args.l2, tv=args.tv, jitter=args.jitter, blur=args.blur,
        threshold=None if args.threshold_range or args.no_threshold else args.threshold,
        threshold_range=tuple(args.threshold_range) if args.threshold_range else None,
        attract_repel=args.attract_repel, seed=args.seed, precision=args.precision)
    means = None
    if config.start in ("mean", "average"):
        ds = data.load_dataset(args.dataset or card.dataset, root=args.data_root)
        if not zoo.fits(entry, ds):
            raise ValueError(f"{entry.id} does not take {ds.name}'s images; pass --dataset with matching images")
        means = class_averages(ds.train_x, ds.train_y, ds.num_classes)
    model = zoo.load_model(entry)
    t0 = time.perf_counter()
    vis = class_visualizations(model, classes, args.per_class, config, input_shape=card.input_shape,
                               class_means=means)
    seconds = time.perf_counter() - t0
    vis.to_npz(args.out)
    rows = summary(vis, card.class_names)
    out = {"model": entry.id, "out": str(args.out), "n": len(vis.labels), "seconds": round(seconds, 3),
           "reached_fraction": float(vis.reached.float().mean()), "config": config.to_dict(), "per_class": rows}
    text = "\n".join([f"{entry.id}: {len(vis.labels)} visualizations in {seconds:.1f} s -> {args.out}",
                      f"{'class':>16} {'reached T':>9} {'p(target)':>9} {'diversity':>9}"]
                     + [f"{r['class'][:16]:>16} {r['reached_fraction']:9.2f} {r['mean_target_prob']:9.3f} "
                        f"{'-' if r['diversity'] is None else format(r['diversity'], '.3f'):>9}" for r in rows])
    emit(out, args.json, text)


def add_parser(sub) -> None:
    d = VisualizeConfig()
    p = sub.add_parser("visualize", help="class visualizations (activation maximization) of a model")
    p.add_argument("--model", required=True, help="model id (zoo:NAME, user:NAME) or name")
    p.add_argument("--per-class", type=int, default=1, help="samples per class")
    p.add_argument("--classes", type=int, nargs="+", help="class indices (default: all)")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--threshold", type=float, default=d.threshold, help="stop at softmax > T (default 0.99)")
    t.add_argument("--threshold-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="draw T per sample")
    t.add_argument("--no-threshold", action="store_true", help="run every sample for --steps steps")
    p.add_argument("--start", choices=STARTS, default=d.start)
    p.add_argument("--objective", choices=("logit", "logprob"), default=d.objective)
    p.add_argument("--steps", type=int, default=d.steps, help="step cap")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--optimizer", choices=("adam", "sgd"), default=d.optimizer)
    p.add_argument("--pixel", choices=PIXELS, default=d.pixel)
    p.add_argument("--l2", type=float, default=d.l2)
    p.add_argument("--tv", type=float, default=d.tv)
    p.add_argument("--jitter", type=int, default=d.jitter)
    p.add_argument("--blur", type=float, default=d.blur)
    p.add_argument("--attract-repel", action="store_true", help="seed 000's pre-AM movement for diversity")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--precision", choices=tuple(PRECISIONS), default=d.precision,
                   help="arithmetic of the ascent; bfloat16 is about 2x faster on CPUs/GPUs with bf16 units "
                        "(reaching T and the scores are still decided in float32)")
    add_data_args(p, "for --start mean: the dataset whose class averages start the ascent")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_visualize)
