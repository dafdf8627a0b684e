"""Which synthetic probe would pick the best checkpoint of a data-free student (issue 15, selection).

Runs the default method (``distill --teacher T --student S`` with its defaults and ``--engine`` changes) exactly as
the protocol does, and at every checkpoint scores the student of that moment on several synthetic probes, none of
them trained on, and, for this diagnosis only, on the real test split:

* ``holdout``: agreement with the teacher on the synthetic set's hold-out (what the engine selects on);
* ``holdout_kl``: minus the KL divergence from the teacher's softmax on the hold-out (a soft, unsaturated score);
* ``mixup``: agreement on blends of two hold-out images (weights drawn in [0.2, 0.8]), near the class boundaries;
* ``noise``: agreement on uniform and Gaussian noise images, labelled by the teacher.

Prints one JSON object: every checkpoint's scores, each probe's Spearman correlation with the real accuracy, and
the real accuracy of the checkpoint each probe would keep, next to the last and the best checkpoint's.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import torch
import torch.nn.functional as F

from vizcore import zoo
from vizcore.core.hooks import frozen_copy
from vizcore.data import load_dataset
from vizcore.distill import methods
from vizcore.distill.engine import distill
from vizcore.distill.students import StudentConfig, holdout_split
from vizcore.distill.synthesis import SynthesisConfig, synthesize
from vizcore.metrics import predict_logits
from vizcore.models import build_model


def probes(hold: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """The synthetic probes' images (never trained on), from the hold-out and noise."""
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randint(len(hold), (2, len(hold)), generator=gen)
    lam = 0.2 + 0.6 * torch.rand(len(hold), 1, 1, 1, generator=gen)
    noise = torch.cat([torch.rand(len(hold) // 2, *hold.shape[1:], generator=gen),
                       (0.5 + 0.25 * torch.randn(len(hold) // 2, *hold.shape[1:], generator=gen)).clamp(0, 1)])
    return {"holdout": hold, "mixup": lam * hold[a] + (1 - lam) * hold[b], "noise": noise}


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = (torch.tensor(v).argsort().argsort().float() for v in (a, b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return round(float((ra * rb).sum() / ((ra.norm() * rb.norm()).clamp_min(1e-9))), 3)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--teacher", default="zoo:fashion-mnist-cnn")
    p.add_argument("--student", default="cnn_s")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="{}", help="JSON: engine settings to change")
    p.add_argument("--checkpoints", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    entry = zoo.get_entry(a.teacher)
    ds = load_dataset(entry.card.dataset)
    teacher = frozen_copy(zoo.load_model(entry))
    syn = SynthesisConfig(method=methods.DEFAULT_METHOD, n=methods.DEFAULT_N,
                          **methods.METHOD_DEFAULTS.get(methods.DEFAULT_METHOD, {}))
    t0 = time.perf_counter()
    synth = synthesize(teacher, syn, input_shape=ds.input_shape, class_names=ds.class_names, dataset=ds.name)
    sc = StudentConfig(arch=a.student, seed=a.seed)
    engine = replace(methods.engine_for(syn.method, methods.default_engine(ds.input_shape), syn.n),
                     **json.loads(a.engine), seed=a.seed, checkpoints=a.checkpoints)
    tr, ho = holdout_split(len(synth), sc.holdout, sc.seed)
    images, hold = synth.images[tr], synth.images[ho]
    probe = {k: (x, predict_logits(teacher, x)) for k, x in probes(hold, a.seed + 7).items()}
    student = build_model(sc.arch, tuple(ds.input_shape), len(ds.class_names), seed=sc.seed)
    rows = []

    def checkpoint(step: int, score: float) -> None:
        row = {"step": step, "engine_score": round(score, 4)}
        for name, (x, t) in probe.items():
            s = predict_logits(student, x)
            row[name] = round(float((s.argmax(1) == t.argmax(1)).float().mean()), 4)
            if name == "holdout":
                row["holdout_kl"] = round(-float(F.kl_div(s.log_softmax(1), t.log_softmax(1), log_target=True,
                                                          reduction="batchmean")), 4)
        row["real"] = round(float((predict_logits(student, ds.test_x).argmax(1) == ds.test_y).float().mean()), 4)
        rows.append(row)

    res = distill(teacher, student, engine, input_shape=ds.input_shape, num_classes=len(ds.class_names),
                  images=images, holdout=hold, on_checkpoint=checkpoint)
    real = [r["real"] for r in rows]
    keys = ["holdout", "holdout_kl", "mixup", "noise"]
    out = {"teacher": a.teacher, "student": a.student, "seed": a.seed, "engine": json.loads(a.engine),
           "steps": engine.steps, "seconds": round(time.perf_counter() - t0, 1),
           "kept_by_engine": {"step": res.selection["step"],
                              "real": round(float((predict_logits(res.model, ds.test_x).argmax(1) == ds.test_y)
                                                  .float().mean()), 4)},
           "last_real": real[-1], "best_real": max(real),
           "spearman_with_real": {k: spearman([r[k] for r in rows], real) for k in keys},
           "real_of_pick": {k: max(rows, key=lambda r: (r[k], r["step"]))["real"] for k in keys},
           "checkpoints": rows}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
