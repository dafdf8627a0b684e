"""Benchmark of issue 13's measured goals for pictures people can name; prints one JSON object.

1. ``recognizability``: the Visualize page's default class visualizations (preset ``recognizable``, 10 per
   class) of Fashion ``cnn`` and digits ``cnn``: the share each independent judge (a classifier trained on
   the real training split, never used to make the pictures) labels as the pictured class, per judge, mean
   and min; the seed preset beside it. Judges: the dataset's other zoo models, plus ``cnn_s`` and ``cnn_l``
   trained here (seeded) for digits, whose zoo holds only two others. Also: identical pictures per class and
   seconds per 100 pictures.
2. ``tables_3_4``: seed 000's Tables 3 / 4 on Fashion ``cnn`` (``python -m vizcore interpretability``;
   ``--tables-dataset digits`` for the digits ``cnn``).
3. ``leakage``: seed 000's Table 5 identity-leakage check on Yale faces (``python -m vizcore leakage``).

    python bench/interpretability.py [--only recognizability tables_3_4 leakage] [--threads 2]
                                     [--tables-dataset fashion-mnist] [--hs-epochs 5] [--real 2000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vizcore import zoo  # noqa: E402
from vizcore.data import load_dataset  # noqa: E402
from vizcore.explain.interpretability import (interpretability_table, predictions, recognizability,  # noqa: E402
                                              test_accuracy, zoo_judges)
from vizcore.explain.visualize import class_averages, class_visualizations, preset  # noqa: E402
from vizcore.models import build_model  # noqa: E402
from vizcore.train import TrainConfig, fit  # noqa: E402

PER_CLASS = 10


def judges(ds) -> dict:
    out = {e.id: zoo.load_model(e) for e in zoo_judges(f"zoo:{ds.name}-cnn", ds)}
    if len(out) < 4:  # digits: two more architectures trained here on the real training split
        for arch in ("cnn_s", "cnn_l"):
            m = build_model(arch, ds.input_shape, ds.num_classes, seed=1)
            fit(m, ds.train_x, ds.train_y, TrainConfig(epochs=20, batch_size=64, seed=1))
            out[f"{arch} (trained in the bench, seed 1)"] = m.requires_grad_(False)
    return out


def identical_pairs(images: torch.Tensor, labels: torch.Tensor) -> int:
    n = 0
    for c in labels.unique():
        z = images[labels == c].flatten(1)
        n += int(((torch.cdist(z, z) < 1e-6).sum() - len(z)) // 2)
    return n


def recognizable(name: str) -> dict:
    ds = load_dataset(name)
    teacher = zoo.load_model(f"zoo:{name}-cnn")
    js = judges(ds)
    out = {"teacher": f"zoo:{name}-cnn", "judges_test_accuracy": {k: round(v, 4) for k, v in test_accuracy(js, ds).items()}}
    for label in ("recognizable", "seed"):
        cfg = preset(label, ds.input_shape)
        t0 = time.perf_counter()
        vis = class_visualizations(teacher, range(ds.num_classes), PER_CLASS, cfg, input_shape=ds.input_shape,
                                   class_means=class_averages(ds.train_x, ds.train_y, ds.num_classes))
        s = time.perf_counter() - t0
        r = recognizability(vis.labels, predictions(js, vis.images))
        out[label] = {"per_judge": {k: round(v, 3) for k, v in r["per_judge"].items()}, "mean": round(r["mean"], 3),
                      "min": round(r["min"], 3), "teacher_agrees": float((vis.probs.argmax(1) == vis.labels).float().mean()),
                      "identical_pairs_within_class": identical_pairs(vis.images, vis.labels),
                      "pixel_range": [round(float(vis.images.min()), 3), round(float(vis.images.max()), 3)],
                      "seconds": round(s, 1), "config": cfg.to_dict()}
    return out


def tables(name: str, per_class: int, real: int, hs_epochs: int) -> dict:
    from vizcore.cli.interpretability_cmd import sets_and_members

    ds = load_dataset(name)
    entry = zoo.get_entry(f"zoo:{name}-cnn")
    model = zoo.load_model(entry)
    sets, S, h_s, notes = sets_and_members(entry, ds, model, per_class=per_class, real=real, hs=None,
                                           hs_epochs=hs_epochs, seed=0)
    return {"teacher": entry.id, "notes": notes, **interpretability_table(model, S, sets, h_s=h_s, dataset=ds)}


def leakage() -> dict:
    from vizcore.distill.leakage import LeakageConfig, identity_leakage

    return identity_leakage(load_dataset("yale-faces"), LeakageConfig())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", nargs="+", default=["recognizability", "tables_3_4", "leakage"])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--real", type=int, default=2000, help="real test images in Tables 3 / 4")
    p.add_argument("--tables-dataset", default="fashion-mnist", help="dataset whose zoo `cnn` is h in Tables 3 / 4")
    p.add_argument("--hs-epochs", type=int, default=5, help="epochs of h_s (the teacher's architecture, seed 1)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    out: dict = {"threads": a.threads}
    if "recognizability" in a.only:
        out["recognizability"] = {n: recognizable(n) for n in ("fashion-mnist", "digits")}
        goal = [out["recognizability"][n]["recognizable"] for n in ("fashion-mnist", "digits")]
        out["recognizability"]["goal_0.90"] = {"mean_of_means": round(sum(g["mean"] for g in goal) / 2, 3),
                                               "worst_judge": min(g["min"] for g in goal)}
    if "tables_3_4" in a.only:
        out["tables_3_4"] = tables(a.tables_dataset, PER_CLASS, a.real, hs_epochs=a.hs_epochs)
    if "leakage" in a.only:
        out["leakage"] = leakage()
    out["total_seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
