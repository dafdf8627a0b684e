"""Ingredient runs of issue 15: the default method with some engine or synthesis settings changed, on one teacher
and student.

``--engine '{"ema": 0.999}'`` changes those settings of the engine (over the method's own, so an online method's
``lr`` or ``student_per_generator`` can be changed too; ``seed`` seeds the student and the engine together, as the
protocol does); everything else is the default of
``python -m vizcore distill``. Prints one JSON object and, with ``--label``, appends it to
bench/logs/engine_log.jsonl, the log the README's ingredient table is built from. The real test split is read once,
for the report; the student is selected on synthetic images.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch

from vizcore import zoo
from vizcore.data import load_dataset
from vizcore.distill import methods
from vizcore.distill.students import StudentConfig
from vizcore.distill.synthesis import SynthesisConfig

from students import run  # bench/students.py: one distillation, reported as its runs are

LOG = Path(__file__).parent / "logs" / "engine_log.jsonl"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--teacher", default="zoo:fashion-mnist-cnn")
    p.add_argument("--student", default="cnn")
    p.add_argument("--method", default=methods.DEFAULT_METHOD)
    p.add_argument("--n", type=int, default=methods.DEFAULT_N)
    p.add_argument("--engine", default="{}", help="JSON: engine settings to change")
    p.add_argument("--synthesis", default="{}", help="JSON: synthesis settings to change (e.g. KegNet's generators)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--label", default="", help="append the result to bench/logs/engine_log.jsonl under this label")
    p.add_argument("--note", default="")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    changes, syn_changes = json.loads(a.engine), json.loads(a.synthesis)
    seed = changes.pop("seed", 0)  # the run's seed is the student's: the protocol gives it to the engine
    entry = zoo.get_entry(a.teacher)
    ds = load_dataset(entry.card.dataset)
    engine = replace(methods.default_engine(ds.input_shape), **changes)
    if a.method in methods.IN_THE_LOOP:  # the method's own settings are applied over the engine's: change them there
        methods.IN_THE_LOOP = {**methods.IN_THE_LOOP, a.method: {**methods.IN_THE_LOOP[a.method], **changes}}
    synthesis = SynthesisConfig(method=a.method, n=a.n, **{**methods.METHOD_DEFAULTS.get(a.method, {}), **syn_changes})
    t0 = time.perf_counter()
    r = run(a.teacher, ds, synthesis, [StudentConfig(arch=a.student, seed=seed)], baseline=False, engine=engine)
    (s,) = r["students"].values()
    out = {"label": a.label, "teacher": a.teacher, "student": a.student, "set": a.method, "threads": a.threads,
           "machine": platform.machine(),
           "config": {"synthesis": {"method": a.method, "n": a.n, **syn_changes}, "engine": {"steps": engine.steps, **changes}, "seed": seed},
           "teacher_accuracy": r["teacher_accuracy"], "accuracy": s["accuracy"], "ratio": s["ratio"],
           "seconds": round(time.perf_counter() - t0, 1), "synthesis_seconds": r["synthesis_seconds"],
           "train_seconds": s["train_seconds"],
           "selection": {k: s["selection"].get(k) for k in ("step", "score", "history", "holdout")},  # which checkpoint
           "recall": s["recall"], "teacher_recall": r["teacher_recall"],  # per class, on the real test split
           "note": a.note or "bench/ingredients.py"}
    print(json.dumps(out))
    if a.label:
        with LOG.open("a") as f:
            f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
