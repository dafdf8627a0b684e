"""Seed 004's compression tables over several seeds: each row's mean and standard deviation, beside the seed's.

Seed 004 reports each repair as a mean and standard deviation over runs (T+KegNet on PenDigits: 82.62 +- 1.05 %).
This reads the JSON of several ``bench/compression.py --seed S`` runs (or bench logs that keep one under
``tables``) and prints one JSON object: per dataset and ratio, each approach's accuracies by seed, their mean and
sample standard deviation, and the seed's mean and deviation where it has them.

    PYTHONPATH=. python bench/compression_seeds.py RUN.json [RUN.json ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from compression import SEED, SEED_SD  # noqa: E402


def combine(runs: list[dict]) -> list[dict]:
    """Rows of the same dataset, ratio and approach across runs (each ``{"config": {"seed": S}, "tables": [...]}``)."""
    grouped: dict[tuple, dict[str, dict[int, float]]] = {}
    for run in runs:
        seed = run["config"]["seed"]
        for table in run["tables"]:
            rows = grouped.setdefault((table["dataset"], table["ratio"]), {})
            for row in table["rows"]:
                by_seed = rows.setdefault(row["approach"], {})
                if seed in by_seed:
                    raise ValueError(f"two runs of seed {seed} for {table['dataset']} at {table['ratio']}x")
                by_seed[seed] = row["accuracy"]
    out = []
    for (dataset, ratio), rows in grouped.items():
        summary = []
        for approach, by_seed in rows.items():
            values = [by_seed[s] for s in sorted(by_seed)]
            summary.append({"approach": approach, "by_seed": {str(s): by_seed[s] for s in sorted(by_seed)},
                            "mean": round(statistics.fmean(values), 2),
                            "sd": round(statistics.stdev(values), 2) if len(values) > 1 else None,
                            **({"seed_mean": SEED[dataset][approach]} if approach in SEED.get(dataset, {}) else {}),
                            **({"seed_sd": SEED_SD[dataset][approach]} if approach in SEED_SD.get(dataset, {}) else {})})
        out.append({"dataset": dataset, "ratio": ratio, "rows": summary})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+", help="bench/compression.py outputs, one per seed")
    args = ap.parse_args()
    print(json.dumps({"runs": args.runs, "tables": combine([json.loads(Path(p).read_text()) for p in args.runs])},
                     indent=1))


if __name__ == "__main__":
    main()
