"""Exploration log of the online engine's ingredients (issue 15): one experiment per call, appended as a JSON
line to bench/logs/engine_log.jsonl (config -> accuracy, ratio, seconds). Real test data is read once per
experiment, after training, for the report only.

    PYTHONPATH=. python scripts/engine_explore.py --teacher zoo:fashion-mnist-cnn --set /tmp/mixed.npz \
        --label mixed+kl --config '{"steps": 1000, "mix": "both"}' [--student cnn_s] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from vizcore import zoo
from vizcore.core.hooks import frozen_copy
from vizcore.data import load_dataset
from vizcore.distill.engine import EngineConfig, distill
from vizcore.distill.synthesis import SyntheticSet
from vizcore.metrics import predict_logits
from vizcore.models import build_model

LOG = Path(__file__).resolve().parent.parent / "bench" / "logs" / "engine_log.jsonl"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--teacher", default="zoo:fashion-mnist-cnn")
    p.add_argument("--set", help="a saved synthetic set (npz) to sample from / warm-start with")
    p.add_argument("--student", default="cnn")
    p.add_argument("--config", default="{}")
    p.add_argument("--label", required=True)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    entry = zoo.get_entry(a.teacher)
    teacher = frozen_copy(zoo.load_model(entry))
    shape, k = tuple(entry.card.input_shape), len(entry.card.class_names)
    cfg = EngineConfig(**json.loads(a.config))
    images = hold = None
    if a.set:
        s = SyntheticSet.from_npz(a.set)
        perm = torch.randperm(len(s), generator=torch.Generator().manual_seed(0))
        cut = len(s) // 10
        hold, images = s.images[perm[:cut]], s.images[perm[cut:]]
    student = build_model(a.student, shape, k, seed=cfg.seed)
    t0 = time.perf_counter()
    res = distill(teacher, student, cfg, input_shape=shape, num_classes=k, images=images, holdout=hold)
    seconds = time.perf_counter() - t0
    ds = load_dataset(entry.card.dataset)
    acc = float((predict_logits(res.model, ds.test_x).argmax(1) == ds.test_y).float().mean())
    tacc = float((predict_logits(teacher, ds.test_x).argmax(1) == ds.test_y).float().mean())
    row = {"label": a.label, "teacher": a.teacher, "student": a.student, "set": a.set, "threads": a.threads,
           "config": cfg.to_dict(),
           "accuracy": round(acc, 4), "ratio": round(acc / tacc, 4), "seconds": round(seconds, 1),
           "holdout_agreement": [round(h[1], 3) for h in res.history], "selected_step": res.selection["step"]}
    LOG.parent.mkdir(exist_ok=True)
    with open(LOG, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row))


if __name__ == "__main__":
    main()
