"""Hostile upload benchmark: every case of tests/hostile_corpus.py through the code path of the app and the CLI,
each in a fresh process, measured.

Run: python bench/hostile.py   (prints one JSON object; a few minutes on 2 cores)

The corpus is built first; then one process imports vizcore, runs one upload of each kind to warm up (as a server
that has been running would be) and forks a fresh child per case. Per case: outcome
(refused with the expected one-line message / accepted), seconds, the process's peak memory growth (Linux
``VmHWM`` reset through ``/proc/self/clear_refs`` once the upload is read, minus ``VmRSS`` then) against the goal
3 x upload + the accepted model's own size, the confined TorchScript child's peak resident memory, and files
created or changed outside the workspace (a victim folder the attacks aim at, and the case's working folder).
"""

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import hostile_corpus as hc  # noqa: E402

# The fit check's limits for this run: the default memory and batch, a shorter CPU budget so the CPU hog is
# stopped in seconds rather than a minute.
LIMITS = {"memory_bytes": 2 * 2**30, "cpu_seconds": 10, "wall_seconds": 120.0, "probe_batch": 256}


WARM_UP = ("ts-good", "ts-print", "ckpt-pickle-payload", "ckpt-declares-huge-tensor", "safetensors-garbage",
           "npz-good", "npz-nan", "image-folder-png-bomb")


def _status(field: str) -> int:
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith(field + ":"))


def one_case(case, payload_file: Path, victim: Path, digits) -> dict:
    """Run one case in this (freshly forked) process and measure it."""
    from vizcore import torchscript, zoo

    payload = payload_file.read_bytes() if case.kind != "name" else payload_file.read_text()
    before = hc.snapshot(victim, Path.cwd())
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS := current RSS
    base = _status("VmRSS")
    t0 = time.perf_counter()
    try:
        outcome, message = hc.run_case(case, victim, digits, torchscript.SandboxLimits(**LIMITS), payload)
    except BaseException as e:  # what the bench exists to count
        outcome, message = "uncaught", f"{type(e).__name__}: {e}"
    seconds = time.perf_counter() - t0
    grow = max(_status("VmHWM") - base, 0)
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    after = hc.snapshot(victim, Path.cwd())
    touched = {p for p, _ in set(after.items()) ^ set(before.items())}
    model_bytes = 0
    if outcome == "accepted" and case.kind == "model":
        model_bytes = sum(t.numel() * t.element_size() for t in zoo.load_model(message).state_dict().values())
    clear = outcome == "refused" and bool(re.search(case.expect, message)) and "\n" not in message.strip()
    upload = len(payload) if isinstance(payload, bytes) else len(payload.encode())
    return {"case": case.name, "outcome": outcome, "expected": "accepted" if not case.expect else "refused",
            "clear_message": clear, "message": message.splitlines()[0][:160] if message else "",
            "seconds": round(seconds, 2), "upload_bytes": upload, "model_bytes": model_bytes,
            "peak_growth_bytes": grow, "goal_bytes": 3 * upload + model_bytes,
            "within_goal": grow <= 3 * upload + model_bytes, "sandbox_child_peak_rss_bytes": child,
            "files_touched_outside_workspace": len(touched)}


def runner(folder: Path) -> None:
    """Import once, then fork a child per case (so each case's memory and failures are its own)."""
    import torch

    from vizcore.data import load_digits

    torch.set_num_threads(1)
    digits = load_digits()
    victim = folder / "victim"
    # Warm up every code path once (lazy imports, TorchScript and oneDNN first-use caches), as in a server that
    # has been running: what is measured below is what each upload costs, not the interpreter's first steps.
    os.environ["VIZCORE_HOME"] = str(folder / "home-warm-up")
    for name in WARM_UP:
        hc.run_case(next(c for c in hc.CASES if c.name == name), victim, digits, None,
                    (folder / f"{name}.upload").read_bytes())
    for case in hc.CASES:
        cwd, out = folder / f"cwd-{case.name}", folder / f"{case.name}.json"
        cwd.mkdir()
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(cwd)
                os.environ["VIZCORE_HOME"] = str(folder / f"home-{case.name}")
                out.write_text(json.dumps(one_case(case, folder / f"{case.name}.upload", victim, digits)))
            finally:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        row = json.loads(out.read_text()) if out.exists() else {"outcome": f"died ({status})", "message": ""}
        print(f"{case.name}: {row['outcome']} {row['message'][:100]}", file=sys.stderr)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="vizcore-hostile-") as tmp:
        tmp = Path(tmp)
        victim = hc.make_victim(tmp)
        for case in hc.CASES:
            payload = case.build(victim)
            f = tmp / f"{case.name}.upload"
            (f.write_text if isinstance(payload, str) else f.write_bytes)(payload)
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
        subprocess.run([sys.executable, __file__, "--runner", str(tmp)], env=env, check=True)
        rows = [json.loads((tmp / f"{c.name}.json").read_text()) if (tmp / f"{c.name}.json").exists() else
                {"case": c.name, "outcome": "uncaught", "message": "its process died",
                 "files_touched_outside_workspace": 0, "seconds": None}
                for c in hc.CASES]
    ok = [r for r in rows if r["outcome"] == r.get("expected")]
    summary = {
        "cases_tried": len(rows),
        "refused_with_clear_message": sum(bool(r.get("clear_message")) for r in rows),
        "accepted_safely": sum(r["outcome"] == "accepted" == r.get("expected") for r in rows),
        "outcome_as_expected": len(ok),
        "uncaught_errors": sum(r["outcome"] == "uncaught" for r in rows),
        "files_touched_outside_workspace": sum(r["files_touched_outside_workspace"] for r in rows),
        "cases_over_memory_goal": [r["case"] for r in rows if not r.get("within_goal", True)],
        "uploads_of_1MiB_or_more_within_memory_goal": [
            f"{r['case']}: {r['peak_growth_bytes']:,} <= {r['goal_bytes']:,}" if r["within_goal"] else r["case"]
            for r in rows if r.get("upload_bytes", 0) >= 2**20],
        "max_peak_growth_refused_bytes": max(r.get("peak_growth_bytes", 0) for r in rows if r["outcome"] == "refused"),
        "max_peak_growth_accepted_bytes": max(r.get("peak_growth_bytes", 0) for r in rows if r["outcome"] == "accepted"),
        "max_peak_growth_bytes": max(r.get("peak_growth_bytes", 0) for r in rows),
        "max_sandbox_child_peak_rss_bytes": max(r.get("sandbox_child_peak_rss_bytes", 0) for r in rows),
        "longest_case_seconds": max((r["seconds"] or 0) for r in rows),
        "longest_case": max(rows, key=lambda r: r["seconds"] or 0)["case"],
        "sandbox_limits": LIMITS,
        "cases": rows,
    }
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--runner":
        runner(Path(sys.argv[2]))
    else:
        main()
