"""``python -m vizcore interpretability``: seed 000's Tables 3 / 4 for a model (fooling-example and
hidden-message rates of real test images, the page's class visualizations and generator AM with and without
Loss_2), and ``python -m vizcore leakage``: seed 000's Table 5 identity-leakage check on Yale faces."""

from __future__ import annotations

import time

import torch

from vizcore.cli import add_data_args, add_model_args, emit, model_and_dataset


def sets_and_members(entry, ds, model, *, per_class: int, real: int, hs: str | None, hs_epochs: int, seed: int,
                     progress=None):
    """The image sets of Tables 3 / 4 and the classifiers: S (the dataset's other zoo models, or a quick
    judge) and h_s (``hs``, or the teacher's architecture trained here on the real data with another seed)."""
    from vizcore import zoo
    from vizcore.distill.synthesis import SynthesisConfig, synthesize
    from vizcore.explain.interpretability import judges_for
    from vizcore.explain.visualize import class_averages, class_visualizations, preset
    from vizcore.models import ARCHITECTURES, build_model
    from vizcore.train import TrainConfig, fit

    if real < 1 or per_class < 1:
        raise ValueError("--real and --per-class must be at least 1")
    S, judges_line = judges_for(entry.id, ds)
    if hs:
        h_s, hs_line = zoo.load_model(hs), hs
    elif entry.card.arch in ARCHITECTURES:
        h_s = build_model(entry.card.arch, ds.input_shape, ds.num_classes, seed=seed + 1)
        fit(h_s, ds.train_x, ds.train_y, TrainConfig(epochs=hs_epochs, batch_size=64, seed=seed + 1))
        h_s.requires_grad_(False)
        hs_line = f"{entry.card.arch} trained here on the real training split ({hs_epochs} epochs, seed {seed + 1})"
    else:
        h_s, hs_line = None, "none (the teacher's architecture is not a zoo one; pass --hs)"
    S.pop(hs, None)
    idx = torch.randperm(len(ds.test_x), generator=torch.Generator().manual_seed(seed))[:real]
    k = ds.num_classes
    vis = class_visualizations(model, range(k), per_class, preset("recognizable", ds.input_shape, seed=seed),
                               input_shape=ds.input_shape, class_means=class_averages(ds.train_x, ds.train_y, k))
    am = SynthesisConfig(method="generator-am", n=k * per_class, images_per_generator=max(2, per_class), seed=seed)
    kw = dict(input_shape=ds.input_shape, class_names=ds.class_names, dataset=ds.name)
    imgs = synthesize(model, am, **kw).images
    imgs_l = synthesize(model, SynthesisConfig(**{**am.__dict__, "loss2": True}), real=(ds.train_x, ds.train_y), **kw).images
    sets = {"real test images": ds.test_x[idx], "visualizations (page default)": vis.images,
            "generator AM (IMGS)": imgs, "generator AM + Loss_2 (IMGS+L)": imgs_l}
    return sets, S, h_s, {"S": judges_line, "h_s": hs_line}


def cmd_interpretability(args) -> None:
    from vizcore.explain.interpretability import interpretability_table

    entry, ds, model = model_and_dataset(args)
    t0 = time.perf_counter()
    sets, S, h_s, notes = sets_and_members(entry, ds, model, per_class=args.per_class, real=args.real, hs=args.hs,
                                           hs_epochs=args.hs_epochs, seed=args.seed)
    table = interpretability_table(model, S, sets, h_s=h_s, dataset=ds)
    out = {"model": entry.id, "dataset": ds.name, "S": list(S), "notes": notes, **table,
           "seconds": round(time.perf_counter() - t0, 1)}
    names = list(sets)
    rows = [f"{'':>26}" + "".join(f"{n[:22]:>24}" for n in names)]
    for m in S:
        rows.append(f"{m[:26]:>26}" + "".join(f"{table['sets'][n]['agreement'][m]:24.1%}" for n in names))
    for key, label in (("h_s_agreement", "h_s agrees with h"), ("fooling_rate", "FOOLING EX. (S)"),
                       ("hidden_rate", "HIDDEN M. (S)")):
        if key in table["sets"][names[0]]:
            rows.append(f"{label:>26}" + "".join(f"{table['sets'][n][key]:24.1%}" for n in names))
    text = "\n".join([f"{entry.id} on {ds.name}: agreement with the teacher h and seed 000's rates",
                      f"S: {notes['S']}", f"h_s: {notes['h_s']}", *rows])
    emit(out, args.json, text)


def cmd_leakage(args) -> None:
    from vizcore import data
    from vizcore.distill.leakage import LeakageConfig, identity_leakage

    ds = data.load_dataset(args.dataset or "yale-faces", root=args.data_root)
    cfg = LeakageConfig(arch=args.arch, n_synthetic=args.n_synthetic, epochs=args.epochs, seed=args.seed)
    t0 = time.perf_counter()
    out = identity_leakage(ds, cfg)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    rows = [f"{'':>8}{'task (real)':>14}{'student (synth)':>17}{'h_idt real':>12}{'h_idt synth':>13}"]
    for r in out["teams"]:
        rows.append(f"{r['team']:>8}{r['task_real']:14.1%}{r['student_synthetic']:17.1%}"
                    f"{r['identifier_real']:12.1%}{r['identifier_synthetic']:13.1%}")
    emit(out, args.json, "\n".join([f"identity leakage on {ds.name} (task: {out['task']})", *rows]))


def add_parser(sub) -> None:
    p = sub.add_parser("interpretability", help="seed 000's fooling-example and hidden-message rates (Tables 3, 4)")
    add_model_args(p)
    p.add_argument("--per-class", type=int, default=10, help="synthetic images per class in each set (seed: 10)")
    p.add_argument("--real", type=int, default=1000, help="real test images (a seeded random subset)")
    p.add_argument("--hs", help="model id of h_s (default: the teacher's architecture trained here, another seed)")
    p.add_argument("--hs-epochs", type=int, default=5, help="epochs of the h_s trained here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(func=cmd_interpretability)

    q = sub.add_parser("leakage", help="seed 000's identity-leakage check (Table 5) on faces")
    add_data_args(q, "default yale-faces: a dataset with per-image condition tags")
    q.add_argument("--arch", default="lenet_faces", help="architecture of the task model, student and identifier")
    q.add_argument("--n-synthetic", type=int, default=300, help="synthetic images per team")
    q.add_argument("--epochs", type=int, default=60, help="training epochs of every model")
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--json", action="store_true", help="print JSON for machines")
    q.set_defaults(func=cmd_leakage)
