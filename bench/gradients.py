"""Benchmark of prediction gradients and targeted perturbations; prints one JSON object.

Figures: p50 latency of all-conv-layer PG maps for one image (captum, as the page calls it) against a naive
baseline that registers hooks by hand and backpropagates once per layer; class-averaged PG throughput over the
fashion-mnist test set; the Yale lenet_faces source -> target success matrix and error curve.
"""

from __future__ import annotations

import json
import statistics
import time

import torch

from vizcore import data, zoo
from vizcore.explain.perturb import PerturbConfig, perturbation_sweep
from vizcore.explain.gradients import class_average_pg, prediction_gradients
from vizcore.core.layers import conv_layers, feature_layer

torch.set_num_threads(2)


def naive_pg(model, x, target):
    """One forward + backward per layer with hand-written hooks: the baseline."""
    out = {}
    for name in conv_layers(model):
        store = {}

        def keep(m, i, o, store=store):
            o.retain_grad()
            store["a"] = o

        h = model.get_submodule(feature_layer(model, name)).register_forward_hook(keep)
        try:
            xx = x.clone().requires_grad_()
            torch.softmax(model(xx), 1)[0, target].backward()
            out[name] = store["a"].grad
        finally:
            h.remove()
    return out


def p50(fn, n=50):
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def pick(dataset: str, arch: str):
    ids = [e.id for e in zoo.list_models() if e.card.dataset == dataset and e.card.arch == arch]
    return zoo.load_model(ids[0]) if ids else None


def main() -> dict:
    out: dict = {"note": "CPU, 2 threads on a machine shared by 5 engineers: timings are noisy"}
    fm = data.load_dataset("fashion-mnist")
    yale = data.load_dataset("yale-faces")
    for label, ds, model in (("fashion-mnist-cnn", fm, pick("fashion-mnist", "cnn") or pick("fashion-mnist", "cnn_s")),
                             ("yale-lenet_faces", yale, pick("yale-faces", "lenet_faces"))):
        if model is None:
            out[label] = "model not in the zoo of this checkout"
            continue
        x = ds.test_x[:1]
        fast = p50(lambda: prediction_gradients(model, x, 0))
        slow = p50(lambda: naive_pg(model, x, 0))
        out[label] = {"pg_all_layers_p50_ms": round(fast * 1000, 2), "naive_p50_ms": round(slow * 1000, 2),
                      "naive_over_captum": round(slow / fast, 2)}
    model = pick("fashion-mnist", "cnn") or pick("fashion-mnist", "cnn_s")
    if model is not None:
        t = time.perf_counter()
        for c in range(fm.num_classes):
            class_average_pg(model, fm.test_x[fm.test_y == c], c)
        dt = time.perf_counter() - t
        out["fashion_mnist_class_avg_pg"] = {"images": len(fm.test_x), "seconds": round(dt, 2),
                                             "images_per_second": round(len(fm.test_x) / dt, 1)}
    faces = pick("yale-faces", "lenet_faces")
    cfg = PerturbConfig(eps=(0.5, 1.0, 2.0, 4.0, 8.0), per_class=100)
    t = time.perf_counter()
    r = perturbation_sweep(faces, yale.test_x, yale.test_y, cfg)
    out["yale_perturbation"] = {"seconds": round(time.perf_counter() - t, 2), "images": r.n_images,
                                "base_accuracy": round(r.base_accuracy, 4), "eps": r.eps,
                                "error": [round(v, 4) for v in r.error],
                                "target_reached": [round(v, 4) for v in r.success_rate],
                                "success_matrix_at_max_eps": [[None if v != v else round(v, 2) for v in row]
                                                              for row in r.success[-1]]}
    return out


if __name__ == "__main__":
    print(json.dumps(main()))
