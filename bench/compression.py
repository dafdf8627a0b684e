"""Seed 004's compression tables: Tucker (T), T+Uniform, T+Gaussian, T+KegNet and T+vizcore's best repair.

UCI tables (mlp10 teachers) at the seed's ratios (8.17x, 8.07x, 4.13x) and images (digits / Fashion-MNIST
``cnn``) at a few ratios. Prints JSON: per dataset and ratio the seed's rows with accuracy, compression and the
seconds each repair took on this CPU. Every repair is data-free (selection on a synthetic hold-out); the real
test set is read once per table.

    PYTHONPATH=. python bench/compression.py [--only uci-shuttle,digits] [--ratios 14.5,15.5] [--methods kegnet] [--threads 1] [--sets DIR] [--seed S]

The seed reports its table rows as a mean and standard deviation over runs; ``--seed`` runs one of them (the
generators, the noise, the hold-out and the fine-tuning all follow it), and ``bench/compression_seeds.py`` puts several together.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from vizcore import zoo
from vizcore.data import load_dataset
from vizcore.distill.compression import SEED_RATIOS, SELECTIONS, RepairConfig, compression_table, real_validation

SEED = {  # seed 004's table: accuracy (the repairs' mean over runs)
    "uci-shuttle": {"Original": 99.83, "T": 75.49, "T+Uniform": 93.83, "T+Gaussian": 94.00, "T+KegNet": 94.21},
    "uci-pendigits": {"Original": 96.56, "T": 26.44, "T+Uniform": 80.21, "T+Gaussian": 78.22, "T+KegNet": 82.62},
    "uci-letter": {"Original": 95.63, "T": 31.40, "T+Uniform": 62.50, "T+Gaussian": 76.80, "T+KegNet": 77.73},
}
SEED_SD = {  # seed 004's table: the repairs' standard deviation over runs
    "uci-shuttle": {"T+Uniform": 0.13, "T+Gaussian": 0.06, "T+KegNet": 0.03},
    "uci-pendigits": {"T+Uniform": 0.98, "T+Gaussian": 1.74, "T+KegNet": 1.05},
    "uci-letter": {"T+Uniform": 0.90, "T+Gaussian": 1.84, "T+KegNet": 0.33},
}
# our cnn keeps most of its accuracy under Tucker up to about 8x (its weights sit in one dense layer), so the image
# ratios are the ones where T falls to the seed's T: Fashion-MNIST's cnn at 14.5x and 15.5x keeps 64.98 % and 76.04 %,
# the seed's ResNet14 at 1.40x and 1.58x 65.1 % and 75.8 %, repaired by KegNet to 85.2 % and 87.8 %
IMAGES = {"digits": ("zoo:digits-cnn", (8.0, 16.0)), "fashion-mnist": ("zoo:fashion-mnist-cnn", (14.5, 15.5))}
SEED_IMAGES = {("fashion-mnist", 14.5): {"ratio": 1.40, "T": 65.1, "T+KegNet": 85.2},
               ("fashion-mnist", 15.5): {"ratio": 1.58, "T": 75.8, "T+KegNet": 87.8}}


def one(teacher_id: str, dataset: str, ratio: float, config: RepairConfig, cache: dict,
        methods: tuple[str, ...] = ("uniform", "gaussian", "kegnet", "best")) -> dict:
    ds = load_dataset(dataset)
    start = time.perf_counter()
    out = compression_table(zoo.load_model(teacher_id), ratio=ratio, methods=methods, config=config, class_names=ds.class_names,
                            input_shape=ds.input_shape, dataset=dataset, test=lambda: (ds.test_x, ds.test_y),
                            validation=lambda: real_validation(ds, config.seed), cache=cache)
    rows = [{"approach": r["approach"], "accuracy": round(100 * r["accuracy"], 2), "compression": r["compression"],
             **{k: r[k] for k in ("seconds", "cpu_seconds", "synthesis_reused") if k in r}} for r in out["rows"]]
    seed = SEED.get(dataset) or SEED_IMAGES.get((dataset, ratio))
    t = rows[1]["accuracy"]
    gains = {r["approach"]: round(r["accuracy"] - t, 2) for r in rows[2:]}  # points over T, as the seed's gains
    return {"teacher": teacher_id, "dataset": dataset, "ratio": ratio, "ranks": out["ranks"], "rows": rows,
            "gain_over_T": gains, "seed": seed, **({"seed_gain": round(seed["T+KegNet"] - seed["T"], 2)} if seed else {}),
            "total_seconds": round(time.perf_counter() - start, 1)}


def _sets_file(folder: str, teacher: str, seed: int) -> Path:
    return Path(folder) / (teacher.replace(":", "_") + (f"-seed{seed}" if seed else "") + ".pt")


# the settings a kept set was made with: a set is reused only by a run that would make the same one
MADE_WITH = ("n", "kegnet_n", "generators", "kegnet_steps", "kegnet_lr", "best", "seed")


def _made_with(config: RepairConfig, input_shape) -> str:
    full = asdict(config.for_input(input_shape))
    return json.dumps({k: full[k] for k in MADE_WITH})


def load_sets(folder: str | None, teacher: str, config: RepairConfig, input_shape) -> dict:
    """A teacher's kept synthetic sets ({key: (inputs, stats)}) made with ``config``'s synthesis settings; empty
    without ``--sets`` or a file, and without the sets a file keeps from other settings (they are made again)."""
    if not folder or not _sets_file(folder, teacher, config.seed).exists():
        return {}
    kept = torch.load(_sets_file(folder, teacher, config.seed), weights_only=True)
    if kept.get("made_with") != _made_with(config, input_shape):
        print(f"{teacher}: the kept sets were made with other settings ({kept.get('made_with')}); making them again",
              file=sys.stderr)
        return {}
    return {key: (inputs, json.loads(kept["stats"][key])) for key, inputs in kept["inputs"].items()}


def save_sets(folder: str | None, teacher: str, config: RepairConfig, input_shape, cache: dict) -> None:
    if folder and cache:
        Path(folder).mkdir(parents=True, exist_ok=True)
        torch.save({"inputs": {k: v[0] for k, v in cache.items()}, "stats": {k: json.dumps(v[1]) for k, v in cache.items()},
                    "made_with": _made_with(config, input_shape)}, _sets_file(folder, teacher, config.seed))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated datasets")
    ap.add_argument("--ratios", help="comma-separated ratios of the image tables (default: each dataset's)")
    ap.add_argument("--methods", default="uniform,gaussian,kegnet,best", help="comma-separated repairs (default: all)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, help="synthetic inputs per repair (default: RepairConfig's for the input kind)")
    ap.add_argument("--kegnet-n", type=int, help="KegNet's inputs, shared by its generators (default: RepairConfig's)")
    ap.add_argument("--epochs", type=int, help="fine-tuning epochs on noise and the best repair (default: RepairConfig's)")
    ap.add_argument("--kegnet-epochs", type=int, help="fine-tuning epochs on KegNet's rows (default: RepairConfig's)")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--kegnet-steps", type=int, help="steps per KegNet generator (default: RepairConfig's)")
    ap.add_argument("--generators", type=int, help="KegNet's generators (default: RepairConfig's, 5 as seed 004)")
    ap.add_argument("--engine-steps", type=int, help="engine steps of an image's best repair (default: RepairConfig's)")
    ap.add_argument("--sets", help="a folder that keeps each teacher's synthetic sets (KegNet's, the best repair's): a "
                    "later run with other fine-tuning settings reuses them instead of training the generators again "
                    "(its rows then say synthesis_reused and their seconds exclude the synthesis); sets made with "
                    "other synthesis settings (rows, generators, steps, seed) are made again")
    ap.add_argument("--select", choices=SELECTIONS, default="synthetic",
                    help="real: the seed's protocol (epoch picked on real validation data, the start included)")
    ap.add_argument("--seed", type=int, default=0, help="the repair's seed (RepairConfig.seed; default 0)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    given = {k: getattr(args, k) for k in ("n", "kegnet_n", "epochs", "kegnet_epochs", "lr", "kegnet_steps", "generators",
                                           "engine_steps")
             if getattr(args, k) is not None}
    cfg = RepairConfig(**given, select=args.select, seed=args.seed)  # the page's and the CLI's defaults where nothing is given
    jobs = [(f"zoo:{d}-mlp10", d, r) for d, r in SEED_RATIOS.items()]
    picked = tuple(float(r) for r in args.ratios.split(",")) if args.ratios else None
    jobs += [(t, d, r) for d, (t, ratios) in IMAGES.items() for r in (picked or ratios)]
    only = set(args.only.split(",")) if args.only else None
    results, caches = [], {}
    for teacher, dataset, ratio in jobs:
        if only and dataset not in only:
            continue
        # one teacher's synthetic sets serve all its ratios: a repair's seconds then exclude making them again
        shape = load_dataset(dataset).input_shape
        if teacher not in caches:  # read the kept sets once per teacher, not at each of its ratios
            caches[teacher] = load_sets(args.sets, teacher, cfg, shape)
        cache = caches[teacher]
        results.append(one(teacher, dataset, ratio, cfg, cache, tuple(args.methods.split(","))))
        save_sets(args.sets, teacher, cfg, shape, cache)
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    print(json.dumps({"config": asdict(cfg.for_input((1,))), "image_config": asdict(cfg.for_input((1, 1, 1))),
                      "threads": args.threads,
                      "tables": results}, indent=1))


if __name__ == "__main__":
    main()
