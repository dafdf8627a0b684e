"""Scale-out benchmark (issue 14): the same ``distill`` job with 1 and with N torchrun processes.

Runs ``torchrun --standalone --nproc_per_node W -m vizcore distill ...`` as a user types it, for each W, in a
fresh workspace, and prints one JSON object: wall time of each (process start and the pre-run estimate
included), the job's own seconds (synthesis + students + the one test read), the student's ratio to the
teacher, and whether every W made the same synthetic set (``synthetic_sha256``). The CPU's cores are split
between the processes (``OMP_NUM_THREADS`` = cores / W), so each W uses the whole machine; oneDNN's
sums differ in the last bits between thread counts, so the sets are byte-identical only with ``--threads`` fixed.

The issue's figure is ``--images 20000`` on Fashion-MNIST; lower it on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vizcore.distill.methods import DEFAULT_METHOD

ROOT = Path(__file__).resolve().parent.parent


def one(world: int, args) -> dict:
    home = tempfile.mkdtemp(prefix=f"vizcore-scale-{world}-")
    threads = args.threads or max(1, (args.cores or os.cpu_count() or 1) // world)
    env = {**os.environ, "VIZCORE_HOME": home, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node", str(world),
           "-m", "vizcore", "distill", "--teacher", args.teacher, "--method", args.method, "--images", str(args.images),
           "--student", args.student, "--no-baseline", "--json"] + (["--budget", str(args.budget)] if args.budget else [])
    start = time.perf_counter()
    done = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    shutil.rmtree(home, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"torchrun with {world} processes failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    student = out["students"][0]
    return {"processes": world, "threads_per_process": threads, "wall_seconds": round(wall, 1),
            "job_seconds": out["seconds"], "synthesis_seconds": out["synthesis_seconds"],
            "student_train_seconds": student["train_seconds"], "student_accuracy": student["accuracy"],
            "student_ratio": student["ratio"], "teacher_accuracy": out["teacher_accuracy"],
            "world_size": out["world_size"], "synthetic_sha256": out["synthetic_sha256"], "command": " ".join(["torchrun"] + cmd[1:])}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="zoo:fashion-mnist-cnn")
    p.add_argument("--method", default=DEFAULT_METHOD, help=f"synthesis method (default: the app's, {DEFAULT_METHOD})")
    p.add_argument("--images", type=int, default=20000)
    p.add_argument("--student", default="cnn")
    p.add_argument("--budget", type=int, help="engine steps (default: the engine's)")
    p.add_argument("--processes", default="1,2", help="world sizes to compare")
    p.add_argument("--cores", type=int, help="cores to split between the processes (default: all)")
    p.add_argument("--threads", type=int, help="threads per process instead (the same for every W: identical bytes)")
    args = p.parse_args()
    runs = [one(int(w), args) for w in args.processes.split(",")]
    base = runs[0]
    print(json.dumps({
        "benchmark": "scale", "machine": f"{platform.machine()} {os.cpu_count()} cores", "teacher": args.teacher,
        "method": args.method, "images": args.images, "student": args.student, "budget": args.budget, "runs": runs,
        "speedup_wall": {r["processes"]: round(base["wall_seconds"] / r["wall_seconds"], 3) for r in runs},
        "speedup_job": {r["processes"]: round(base["job_seconds"] / r["job_seconds"], 3) for r in runs},
        "same_synthetic_set": len({r["synthetic_sha256"] for r in runs}) == 1,
    }, indent=2))


if __name__ == "__main__":
    main()
