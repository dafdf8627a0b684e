"""Benchmark of the visualize area; prints one JSON object.

1. Throughput of batched class visualizations for the fashion-mnist ``cnn`` (1,000 samples, 100 per class,
   fixed step count), in float32 and in bfloat16, against a float32 one-sample-at-a-time loop measured in the
   same run (on a subset, per sample). Use ``--threads`` to pin torch's thread count (default: all cores).
2. Seed 003's experiment for the fashion-mnist ``linear`` teacher: one visualization per class, a fresh
   ``linear`` trained only on those 10 images with their soft targets (seed 003's student, ``SEED003_STUDENT``),
   accuracy on the real test set; for three visualization settings, and with the signed output-weight rows
   and the class averages as training sets for comparison (same student).

    python bench/visualize.py [--threads 2] [--samples 1000] [--loop 20] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace

import torch


from vizcore import zoo  # noqa: E402
from vizcore.data import load_dataset  # noqa: E402
from vizcore.metrics import evaluate_model, predict_logits  # noqa: E402
from vizcore.models import build_model  # noqa: E402
from vizcore.distill.students import SEED003_STUDENT, fit_student  # noqa: E402
from vizcore.distill.synthesis import SEED003_VISUALIZE  # noqa: E402
from vizcore.train import TrainConfig, fit  # noqa: E402
from vizcore.explain.visualize import (PRECISIONS, VisualizeConfig, class_averages, class_visualizations,  # noqa: E402
                               weight_images)


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
    """Visualizations per second: batched float32 and bfloat16 against a float32 one-sample loop."""
    model, name = teacher(ds, "cnn")
    per_class = samples // ds.num_classes
    out = {"teacher": name, "samples": samples, "steps": steps}
    cfg = VisualizeConfig(start="noise", threshold=None, steps=steps, seed=0)
    t0 = time.perf_counter()
    for i in range(loop):
        class_visualizations(model, [i % ds.num_classes], 1, replace(cfg, seed=i), input_shape=ds.input_shape)
    loop_rate = loop / (time.perf_counter() - t0)
    out["loop_float32"] = {"samples": loop, "per_second": round(loop_rate, 2)}
    for precision in PRECISIONS:
        t0 = time.perf_counter()
        vis = class_visualizations(model, range(ds.num_classes), per_class, replace(cfg, precision=precision),
                                   input_shape=ds.input_shape)
        s = time.perf_counter() - t0
        out[f"batched_{precision}"] = {"seconds": round(s, 2), "per_second": round(len(vis.labels) / s, 2),
                                       "ms_per_sample_step": round(1000 * s / len(vis.labels) / steps, 3),
                                       "speedup_vs_loop": round(len(vis.labels) / s / loop_rate, 1)}
    # the same run with the stopping rule (T = 0.99): how many reach it and how fast
    t0 = time.perf_counter()
    stop = class_visualizations(model, range(ds.num_classes), per_class,
                                VisualizeConfig(start="noise", steps=300, precision="bfloat16"), input_shape=ds.input_shape)
    stop_s = time.perf_counter() - t0
    out["bfloat16_with_T_0.99"] = {"seconds": round(stop_s, 2), "per_second": round(len(stop.labels) / stop_s, 2),
                                   "reached_fraction": float(stop.reached.float().mean()),
                                   "mean_steps": float(stop.steps.float().mean())}
    return out


def student_accuracy(ds, teacher_model, x: torch.Tensor) -> float:
    """A fresh ``linear`` fitted to ``x`` and the teacher's softmax on it (seed 003's student, no selection)."""
    soft = predict_logits(teacher_model, x).softmax(1)
    student = fit_student(SEED003_STUDENT, x, soft.argmax(1), soft=soft, num_classes=ds.num_classes)
    return evaluate_model(student.model, ds.test_x, ds.test_y, ds.class_names)["accuracy"]


def seed003(ds) -> dict:
    model, name = teacher(ds, "linear")
    acc = evaluate_model(model, ds.test_x, ds.test_y, ds.class_names)["accuracy"]
    out = {"teacher": name, "teacher_accuracy": round(acc, 4)}
    classes = range(ds.num_classes)
    configs = {"seed 003: blank start, free pixels, plain gradient ascent": SEED003_VISUALIZE,
               "grey start, plain gradient ascent, 100 steps": VisualizeConfig(
                   start="grey", optimizer="sgd", lr=0.01, steps=100, threshold=None),
               "page default (blank, adam, T=0.99)": VisualizeConfig()}
    for label, cfg in configs.items():
        vis = class_visualizations(model, classes, 1, cfg, input_shape=ds.input_shape)
        out[f"student_on_10_visualizations [{label}]"] = round(student_accuracy(ds, model, vis.images), 4)
        out[f"mean_target_prob [{label}]"] = round(float(vis.probs.max(1).values.mean()), 4)
    w = weight_images(model, ds).images  # the signed weight rows themselves (seed 003 section 9)
    out["student_on_10_weight_images"] = round(student_accuracy(ds, model, w), 4)
    avg = class_averages(ds.train_x, ds.train_y, ds.num_classes)
    out["student_on_10_class_averages"] = round(student_accuracy(ds, model, avg), 4)
    out["student"] = SEED003_STUDENT.__dict__
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
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
    result["cpu"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores (shared: timings are noisy)"
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
