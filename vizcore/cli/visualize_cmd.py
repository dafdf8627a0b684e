"""``python -m vizcore visualize``: class visualizations of a model, written as the page's ``.npz``."""

from __future__ import annotations

import time
from dataclasses import replace

from vizcore import data, zoo
from vizcore.cli import add_data_args, emit
from vizcore.explain.visualize import (DEFAULT_PRESET, PARAMS, PIXELS, PRECISIONS, PRESET_PER_CLASS, PRESETS, STARTS,
                                       TABLE_VISUALIZE, VisualizeConfig, class_averages, class_visualizations, preset,
                                       summary)

# options that override the preset when given (argparse default None)
OVERRIDES = ("start", "objective", "steps", "lr", "optimizer", "pixel", "param", "l2", "tv", "jitter", "blur", "scale",
             "rotate", "seed", "precision")


def config_from_args(args, input_shape) -> VisualizeConfig:
    """The preset (the Visualize page's default unless --preset says otherwise; a table model's rows start from
    TABLE_VISUALIZE) with every option given on the command line applied on top."""
    if args.preset or len(input_shape) == 3:
        base = preset(args.preset or DEFAULT_PRESET, input_shape)
    else:
        base = TABLE_VISUALIZE
    given = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k) is not None}
    if args.attract_repel:
        given["attract_repel"] = True
    if args.threshold_range:
        given.update(threshold=None, threshold_range=tuple(args.threshold_range))
    elif args.no_threshold:
        given.update(threshold=None, threshold_range=None)
    elif args.threshold is not None:
        given.update(threshold=args.threshold, threshold_range=None)
    return replace(base, **given)


def cmd_visualize(args) -> None:
    entry = zoo.get_entry(args.model)
    card = entry.card
    classes = args.classes if args.classes else list(range(card.num_classes))
    config = config_from_args(args, card.input_shape)
    per_class = args.per_class or PRESET_PER_CLASS[args.preset or DEFAULT_PRESET]
    means = None
    if config.start in ("mean", "average"):
        ds = data.load_dataset(args.dataset or card.dataset, root=args.data_root)
        if not zoo.fits(entry, ds):
            raise ValueError(f"{entry.id} does not take {ds.name}'s images; pass --dataset with matching images")
        means = class_averages(ds.train_x, ds.train_y, ds.num_classes)
    model = zoo.load_model(entry)
    t0 = time.perf_counter()
    vis = class_visualizations(model, classes, per_class, config, input_shape=card.input_shape,
                               class_means=means)
    seconds = time.perf_counter() - t0
    vis.to_npz(args.out)
    rows = summary(vis, card.class_names)
    out = {"model": entry.id, "preset": args.preset or DEFAULT_PRESET, "out": str(args.out), "n": len(vis.labels), "seconds": round(seconds, 3),
           "reached_fraction": float(vis.reached.float().mean()), "config": config.to_dict(), "per_class": rows}
    text = "\n".join([f"{entry.id}: {len(vis.labels)} visualizations in {seconds:.1f} s -> {args.out}",
                      f"{'class':>16} {'reached T':>9} {'p(target)':>9} {'diversity':>9}"]
                     + [f"{r['class'][:16]:>16} {r['reached_fraction']:9.2f} {r['mean_target_prob']:9.3f} "
                        f"{'-' if r['diversity'] is None else format(r['diversity'], '.3f'):>9}" for r in rows])
    emit(out, args.json, text)


def add_parser(sub) -> None:
    p = sub.add_parser("visualize", help="class visualizations (activation maximization) of a model")
    p.add_argument("--model", required=True, help="model id (zoo:NAME, user:NAME) or name")
    p.add_argument("--preset", choices=PRESETS,
                   help=f"starting point for every option below, as on the Visualize page (default {DEFAULT_PRESET}; "
                        "seed: what seeds 003 / 000 did); an option given explicitly overrides it")
    p.add_argument("--per-class", type=int, help="samples per class (default: the preset's, "
                   + ", ".join(f"{k} {v}" for k, v in PRESET_PER_CLASS.items()) + ")")
    p.add_argument("--classes", type=int, nargs="+", help="class indices (default: all)")
    t = p.add_mutually_exclusive_group()
    t.add_argument("--threshold", type=float, help="stop at softmax > T")
    t.add_argument("--threshold-range", type=float, nargs=2, metavar=("LOW", "HIGH"), help="draw T per sample")
    t.add_argument("--no-threshold", action="store_true", help="run every sample for --steps steps")
    p.add_argument("--start", choices=STARTS)
    p.add_argument("--objective", choices=("logit", "logprob"))
    p.add_argument("--steps", type=int, help="step cap")
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=("adam", "sgd"))
    p.add_argument("--pixel", choices=PIXELS)
    p.add_argument("--param", choices=PARAMS, help="pixel: the pixels themselves; fft: a decorrelated Fourier image")
    p.add_argument("--l2", type=float)
    p.add_argument("--tv", type=float)
    p.add_argument("--jitter", type=int)
    p.add_argument("--blur", type=float)
    p.add_argument("--scale", type=float, help="random zoom of up to this fraction per step")
    p.add_argument("--rotate", type=float, help="random rotation of up to this many degrees per step")
    p.add_argument("--attract-repel", action="store_true", help="seed 000's pre-AM movement for diversity")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=tuple(PRECISIONS),
                   help="arithmetic of the ascent; bfloat16 is about 2x faster on CPUs/GPUs with bf16 units "
                        "(reaching T and the scores are still decided in float32)")
    add_data_args(p, "for --start mean / average: the dataset whose class averages start the ascent")
    p.add_argument("--out", required=True, help="the .npz to write")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_visualize)
