"""Benchmark of the visualize area; prints one JSON object.

1. Throughput of batched class visualizations for the fashion-mnist ``cnn`` (1,000 samples, 100 per class,
   fixed step count) against a one-sample-at-a-time loop measured in the same run (on a subset, per sample).
2. Seed 003's experiment for the fashion-mnist ``linear`` teacher: one visualization per class, a fresh
   ``linear`` trained only on those 10 images with their soft targets, accuracy on the real test set; with
   the output-weight images and the class averages as training sets for comparison.

    python bench/visualize.py [--threads 1] [--samples 1000] [--loop 20] [--steps 50]
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
from vizcore.metrics import evaluate_model, predict_logits  # noqa: E402
from vizcore.models import build_model  # noqa: E402
from vizcore.train import TrainConfig, fit  # noqa: E402
from vizcore.visualize import (VisualizeConfig, class_averages, class_visualizations, weight_images)  # noqa: E402


def teacher(ds, arch: str):
    """The zoo model, or (when the zoo lacks it) one trained here for 1 epoch, reported as such."""
    try:
        return zoo.load_model(f"zoo:{ds.name}-{arch}"), f"zoo:{ds.name}-{arch}"
    except (ValueError, FileNotFoundError):
        m = build_model(arch, ds.input_shape, ds.num_classes, seed=0)
        fit(m, ds.train_x, ds.train_y, TrainConfig(epochs=1, batch_size=128))
        m.requires_grad_(False)
        return m, f"{arch} trained 1 epoch in the bench (zoo model missing)"


def throughput(ds, samples: int, loop: int, steps: int) -> dict:
    model, name = teacher(ds, "cnn")
    per_class = samples // ds.num_classes
    cfg = VisualizeConfig(start="noise", threshold=None, steps=steps, seed=0)
    t0 = time.perf_counter()
    vis = class_visualizations(model, range(ds.num_classes), per_class, cfg, input_shape=ds.input_shape)
    batched_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(loop):
        class_visualizations(model, [i % ds.num_classes], 1, VisualizeConfig(**{**cfg.to_json(), "seed": i}),
                             input_shape=ds.input_shape)
    loop_s = time.perf_counter() - t0
    batched_rate, loop_rate = len(vis.labels) / batched_s, loop / loop_s
    # the same run with the stopping rule (T = 0.99): how many reach it and how fast
    t0 = time.perf_counter()
    stop = class_visualizations(model, range(ds.num_classes), per_class, VisualizeConfig(start="noise", steps=300),
                                input_shape=ds.input_shape)
    stop_s = time.perf_counter() - t0
    return {"teacher": name, "samples": len(vis.labels), "steps": steps,
            "batched_seconds": round(batched_s, 2), "batched_per_second": round(batched_rate, 2),
            "loop_samples": loop, "loop_seconds": round(loop_s, 2), "loop_per_second": round(loop_rate, 2),
            "speedup": round(batched_rate / loop_rate, 1),
            "with_T_0.99": {"seconds": round(stop_s, 2), "per_second": round(len(stop.labels) / stop_s, 2),
                            "reached_fraction": float(stop.reached.float().mean()),
                            "mean_steps": float(stop.steps.float().mean())}}


def student_accuracy(ds, teacher_model, x: torch.Tensor, temperature: float = 5.0, epochs: int = 300) -> float:
    """A fresh ``linear`` trained (full batch) on ``x`` with the teacher's softmax at ``temperature``."""
    soft = (predict_logits(teacher_model, x) / temperature).softmax(1)
    student = build_model("linear", ds.input_shape, ds.num_classes, seed=1)
    fit(student, x, None, TrainConfig(epochs=epochs, batch_size=len(x), lr=0.05, seed=1, temperature=temperature),
        soft_targets=soft)
    return evaluate_model(student, ds.test_x, ds.test_y, ds.class_names)["accuracy"]


def seed003(ds) -> dict:
    model, name = teacher(ds, "linear")
    acc = evaluate_model(model, ds.test_x, ds.test_y, ds.class_names)["accuracy"]
    out = {"teacher": name, "teacher_accuracy": round(acc, 4)}
    classes = range(ds.num_classes)
    configs = {"grey start, plain gradient ascent, 100 steps": VisualizeConfig(
                   start="grey", optimizer="sgd", lr=0.01, steps=100, threshold=None),
               "page default (blank, adam, T=0.99)": VisualizeConfig()}
    for label, cfg in configs.items():
        vis = class_visualizations(model, classes, 1, cfg, input_shape=ds.input_shape)
        out[f"student_on_10_visualizations [{label}]"] = round(student_accuracy(ds, model, vis.images), 4)
        out[f"mean_target_prob [{label}]"] = round(float(vis.probs.max(1).values.mean()), 4)
    w = weight_images(model, ds).images
    w01 = (w - w.min()) / (w.max() - w.min())  # drawn as an image: rescaled to [0, 1]
    out["student_on_10_weight_images"] = round(student_accuracy(ds, model, w01), 4)
    avg = class_averages(ds.train_x, ds.train_y, ds.num_classes)
    out["student_on_10_class_averages"] = round(student_accuracy(ds, model, avg), 4)
    out["student_soft_target_temperature"] = 5.0
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--loop", type=int, default=20)
    p.add_argument("--steps", type=int, default=50)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    ds = load_dataset("fashion-mnist")
    t0 = time.perf_counter()
    result = {"threads": a.threads, "throughput_cnn": throughput(ds, a.samples, a.loop, a.steps),
              "seed003_linear": seed003(ds)}
    result["total_seconds"] = round(time.perf_counter() - t0, 1)
    result["note"] = "2 shared CPU cores, 5 engineers: timings are noisy"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
