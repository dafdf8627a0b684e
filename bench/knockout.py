"""Knockout benchmark: slider latency (cached tail vs naive full masked forward) and the ranking study.

    python bench/knockout.py [--masks 50] [--max-k 20]

Prints one JSON object. Timings are wall-clock on this machine's CPU (2 threads).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch


from vizcore import data, zoo  # noqa: E402
from vizcore.explain.importance import StudyConfig, compare_rankings  # noqa: E402
from vizcore.explain.knockout import KnockoutEvaluator, class_images, eval_subset, masked_logits  # noqa: E402
from vizcore.models import build_model  # noqa: E402


def random_masks(widths: dict[str, int], n: int, seed: int = 0) -> list[dict[str, list[int]]]:
    """Masks like a slider move makes: k = 1..8 random filters of one random knockable layer."""
    g = torch.Generator().manual_seed(seed)
    layers = list(widths)
    out = []
    for _ in range(n):
        layer = layers[int(torch.randint(len(layers), (1,), generator=g))]
        k = int(torch.randint(1, 9, (1,), generator=g))
        out.append({layer: torch.randperm(widths[layer], generator=g)[:k].tolist()})
    return out


def latency(model, x, y, n_masks: int) -> dict:
    t0 = time.perf_counter()
    ev = KnockoutEvaluator(model, x, y)
    build = time.perf_counter() - t0
    fast, naive = [], []
    for mask in random_masks(ev.widths, n_masks):
        t = time.perf_counter()
        ev.evaluate(mask)
        fast.append(time.perf_counter() - t)
        t = time.perf_counter()
        pred = masked_logits(model, x, mask).argmax(1)
        (pred == y).float().mean()
        naive.append(time.perf_counter() - t)
    f, nv = np.array(fast) * 1000, np.array(naive) * 1000
    return {"n_images": len(x), "n_masks": n_masks, "cache_build_s": round(build, 3),
            "cached_p50_ms": round(float(np.median(f)), 1), "cached_p95_ms": round(float(np.percentile(f, 95)), 1),
            "naive_p50_ms": round(float(np.median(nv)), 1), "naive_p95_ms": round(float(np.percentile(nv, 95)), 1),
            "speedup_p50": round(float(np.median(nv) / np.median(f)), 2)}


def study(model, ds, classes: list[int], max_k: int, n_eval: int | None) -> dict:
    x, y = eval_subset(ds.test_x, ds.test_y, n_eval)
    ev = KnockoutEvaluator(model, x, y, ds.num_classes)
    out = {}
    for c in classes:
        rx, ry = class_images(ds.train_x, ds.train_y, c)
        res = compare_rankings(model, ev, rx, ry, StudyConfig(target=c, max_k=max_k))
        curves = {cv["label"]: {"class_error": [round(v, 3) for v in cv["class_error"]],
                                "overall_error": [round(v, 3) for v in cv["overall_error"]]}
                  for cv in res["curves"] if cv["label"] in ("pg highest-first", "pg lowest-first", "random")}
        table = {r["ranking"]: {k: round(v, 3) for k, v in r.items() if k != "ranking"} for r in res["table"]}
        out[ds.class_names[c]] = {"curves": curves, "table": table}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--masks", type=int, default=50)
    ap.add_argument("--max-k", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(2)
    result: dict = {"torch_threads": torch.get_num_threads(),
                    "note": "2 shared CPU cores, other jobs running: timings are noisy"}
    fm = data.load_dataset("fashion-mnist")
    try:
        model = zoo.load_model("zoo:fashion-mnist-cnn")
        result["fashion_model"] = "zoo:fashion-mnist-cnn"
    except (ValueError, FileNotFoundError):
        model = build_model("cnn", fm.input_shape, fm.num_classes, seed=0)
        result["fashion_model"] = "untrained cnn (zoo:fashion-mnist-cnn not in this checkout): latency only"
    x, y = eval_subset(fm.test_x, fm.test_y, 2000)
    result["latency_fashion_cnn"] = latency(model, x, y, args.masks)
    if result["fashion_model"].startswith("zoo:"):
        classes = [fm.class_names.index(c) for c in ("Sneaker", "Shirt", "Bag") if c in fm.class_names] or [7, 6, 8]
        result["study_fashion_cnn"] = study(model, fm, classes, args.max_k, 2000)
    yale = data.load_dataset("yale-faces")
    faces = zoo.load_model("zoo:yale-faces-lenet_faces")
    ids = [yale.class_names.index(n) if n in yale.class_names else int(n) - 1 for n in ("15", "14", "7", "10", "12")]
    result["yale_class_names"] = [yale.class_names[i] for i in ids]
    result["study_yale_lenet_faces"] = study(faces, yale, ids, args.max_k, None)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
