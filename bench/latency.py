"""Interaction latency in Chromium: a Knockout slider step and a Prediction-gradients image change and class change,
from the key press (or click) to the first update of the page and to the end of the rerun, and how long each input
keeps Chromium's main thread busy (it draws the page; the end of the rerun reaches the page through it).

    python bench/latency.py [--steps 20]

Starts the app on loopback, opens it in Debian's Chromium (Playwright), selects Fashion-MNIST's ``cnn`` (the
default) with 2,000 evaluation images, and times ``--steps`` inputs of each kind. Times come from the app's own
websocket: the first message after the input ("numbers") and Streamlit's ``script_finished`` ("end"). Prints one
JSON object with the median and p95 of each, and the load average (the machine may be shared). The main thread's
time is Chromium's own account (DevTools' ``Performance.getMetrics`` ``TaskDuration``) from the input until 300 ms
after the rerun ended.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_server import browser_page, running_app, wait_rendered  # noqa: E402

from vizcore.data import load_dataset  # noqa: E402


class Frames:
    """Arrival times of the app's websocket messages: any message and the end of each script run."""

    def __init__(self, page):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.any: list[float] = []
        self.finished: list[float] = []
        self.busy: list[float] = []  # seconds of Chromium's main thread per input
        self._cdp = page.context.new_cdp_session(page)
        self._cdp.send("Performance.enable")
        self._task: float | None = None

        def on_frame(payload):
            now = time.perf_counter()
            if isinstance(payload, str):
                return
            msg = ForwardMsg()
            try:
                msg.ParseFromString(payload)
            except Exception:  # noqa: BLE001 - a frame of another kind
                return
            self.any.append(now)
            if msg.WhichOneof("type") == "script_finished":
                self.finished.append(now)

        page.on("websocket", lambda ws: ws.on("framereceived", on_frame))

    def _task_seconds(self) -> float:
        metrics = self._cdp.send("Performance.getMetrics")["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "TaskDuration")

    def begin(self) -> None:
        """A new series of inputs: the main thread's time is counted from the next input on."""
        self.busy, self._task = [], None

    def settle(self, page) -> None:
        """Let the last run settle (300 ms) and count the main thread's time of the input before it."""
        page.wait_for_timeout(300)
        now = self._task_seconds()
        if self._task is not None:
            self.busy.append(now - self._task)
        self._task = now

    def time_input(self, page, act, timeout_s: float = 60.0) -> tuple[float, float]:
        """(seconds to the first message, seconds to script_finished) after ``act()``."""
        self.settle(page)  # let any earlier run settle
        n_any, n_fin = len(self.any), len(self.finished)
        t0 = time.perf_counter()
        act()
        deadline = t0 + timeout_s
        while len(self.finished) == n_fin and time.perf_counter() < deadline:
            page.wait_for_timeout(2)
        if len(self.finished) == n_fin:
            raise TimeoutError("the rerun did not finish")
        return self.any[n_any] - t0, self.finished[n_fin] - t0


def stats(values: list[float]) -> dict:
    ms = np.asarray(values) * 1000
    return {"median_ms": round(float(np.median(ms)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "n": len(ms)}


def knockout(page, frames: Frames, url: str, steps: int) -> dict:
    page.goto(url + "/knockout")
    wait_rendered(page, "Overall accuracy", 600_000)
    slider = page.get_by_role("slider").first
    slider.focus()
    first, end = [], []
    frames.begin()
    for i in range(steps):
        key = "ArrowRight" if (i // 4) % 2 == 0 else "ArrowLeft"  # back and forth over 0..4 filters
        a, b = frames.time_input(page, lambda: page.keyboard.press(key))
        first.append(a)
        end.append(b)
    frames.settle(page)
    return {"numbers": stats(first), "end_of_rerun": stats(end), "browser_main_thread": stats(frames.busy)}


def gradients(page, frames: Frames, url: str, steps: int) -> dict:
    page.goto(url + "/gradients")
    wait_rendered(page, "Per-filter browser", 600_000)
    up = page.locator("[data-testid=stNumberInputStepUp]").first
    down = page.locator("[data-testid=stNumberInputStepDown]").first
    first, end = [], []
    frames.begin()
    for i in range(steps):
        button = up if (i // 5) % 2 == 0 else down  # images 1..6 of the class and back
        # a press is a raw mouse click on the button's centre, found before the clock starts (as the slider's is a raw
        # key press): Playwright's locator.click first waits for the button to keep its box over two animation
        # frames and for hit-testing, harness round trips that a person's click does not make
        box = button.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        a, b = frames.time_input(page, lambda: page.mouse.click(x, y))
        first.append(a)
        end.append(b)
    frames.settle(page)
    return {"first_update": stats(first), "end_of_rerun": stats(end), "browser_main_thread": stats(frames.busy)}


def class_changes(page, frames: Frames, class_names: list[str], steps: int) -> dict:
    """The Prediction-gradients page's class changes: the next class's name typed into the "Gradient of class" box
    (not timed), then a raw Enter key press, through every class in turn (the look-ahead cannot guess a class)."""
    box = page.get_by_label("Gradient of class").first
    first, end = [], []
    for i in range(steps):
        k = (i + 1) % len(class_names)
        box.click()
        page.keyboard.type(f"{k}: {class_names[k]}")
        page.get_by_role("option", name=f"{k}: {class_names[k]}", exact=True).first.wait_for()
        a, e = frames.time_input(page, lambda: page.keyboard.press("Enter"))
        first.append(a)
        end.append(e)
    return {"first_update": stats(first), "end_of_rerun": stats(end)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vizcore-latency-"))
    out: dict = {"model": "zoo:fashion-mnist-cnn", "knockout_eval_images": 2000}
    with running_app(home) as url, browser_page(1400, 1400) as page:
        frames = Frames(page)
        page.goto(url)
        wait_rendered(page, "Test accuracy", 600_000)  # the sidebar's default: Fashion-MNIST, its cnn
        out["knockout_slider_step"] = knockout(page, frames, url, args.steps)
        out["gradients_image_change"] = gradients(page, frames, url, args.steps)
        out["gradients_class_change"] = class_changes(page, frames, load_dataset("fashion-mnist").class_names,
                                                      args.steps)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    out["cpu_count"] = os.cpu_count()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
