"""App benchmark: cold start (process start -> Overview rendered in Chromium), server peak memory, zoo accuracies.

Run: python bench/app.py [--skip-zoo]   (prints one JSON object)

The first start decodes the datasets and evaluates the default model into the workspace cache (cache/); the
second start, like every later ``./vizcore.sh app`` on that machine, reads them back, and draws the Overview the
first start saved (ui/first_page.py) while PyTorch is imported: ``first_page_drawn_s`` is when the accuracy and the
charts are on screen, ``interactive_s`` when the live page has replaced it and every widget works.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # tests/app_server.py

from app_server import browser_page, free_port, running_app, wait_rendered  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from vizcore import data, zoo  # noqa: E402
from vizcore.metrics import evaluate_model  # noqa: E402


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_to_render(home: Path, returning: bool = False) -> dict:
    """Seconds from starting the server to the Overview drawn in a browser that is already open (as a user's is).

    ``returning``: the browser has opened the app before, on the same port (``./vizcore.sh app`` always serves on
    one), so its HTTP cache holds Streamlit's hashed scripts (Plotly's alone is 4.7 MB to fetch and compile); the
    app is started once, unmeasured, then measured. Otherwise the browser profile is fresh."""
    with browser_page() as page:
        port = None
        if returning:
            port = free_port()
            with running_app(home, port=port) as url:
                page.goto(url)
                page.get_by_text("Starting PyTorch").wait_for(state="detached", timeout=600_000)
                wait_rendered(page, "Test accuracy", 600_000)
        page.goto("about:blank")
        t0 = time.perf_counter()
        with running_app(home, port=port) as url:
            up = time.perf_counter() - t0
            page.goto(url)
            page.get_by_text("Test accuracy").first.wait_for(timeout=600_000)
            # what a person sees: the accuracy and the charts (the saved first page's are pictures: ui/static_chart.py)
            page.wait_for_selector("[data-testid=stImage] img, [data-testid=stPlotlyChart] .main-svg", timeout=600_000)
            drawn = time.perf_counter() - t0
            try:  # drawn from the last start's record (its last line says so)
                page.get_by_text("Starting PyTorch").wait_for(timeout=3000)
                saved = True
            except PlaywrightTimeout:
                saved = False
            page.get_by_text("Starting PyTorch").wait_for(state="detached", timeout=600_000)
            wait_rendered(page, "Test accuracy", 600_000)
            live = time.perf_counter() - t0  # the live page's script has ended: every widget works
            pid = int(next(p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_server(p, home)).name)
            return {"server_up_s": round(up, 2), "first_page_drawn_s": round(drawn, 2), "drawn_from_saved_page": saved,
                    "interactive_s": round(live, 2),
                    "server_peak_rss_mib": round(peak_rss_mib(pid), 1)}


def _is_server(proc: Path, home: Path) -> bool:
    try:
        return b"ui.serve" in (proc / "cmdline").read_bytes() and str(home).encode() in (proc / "environ").read_bytes()
    except OSError:
        return False


def zoo_accuracies() -> list[dict]:
    rows, cache = [], {}
    for e in zoo.list_models(include_user=False):
        ds = cache.get(e.card.dataset) or cache.setdefault(e.card.dataset, data.load_dataset(e.card.dataset))
        acc = evaluate_model(zoo.load_model(e), ds.test_x, ds.test_y, ds.class_names)["accuracy"]
        rows.append({"model": e.id, "dataset": e.card.dataset, "arch": e.card.arch, "test_accuracy": round(acc, 4),
                     "card_accuracy": round(e.card.metrics["accuracy"], 4), "train_seconds": e.card.train_seconds})
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-zoo", action="store_true", help="only the start times")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vizcore-bench-"))
    cold = start_to_render(home)   # empty workspace: datasets decoded and the model evaluated into cache/
    warm = start_to_render(home)   # second start: read back from the workspace cache
    returning = start_to_render(home, returning=True)  # and a browser that has opened the app before
    out = {"cold_start": cold, "second_start": warm, "second_start_returning_browser": returning,
           "load_average_1min": round(os.getloadavg()[0], 2),
           "cpu_count": os.cpu_count()}
    if not args.skip_zoo:
        out["zoo"] = zoo_accuracies()
    print(json.dumps(out, indent=1))
