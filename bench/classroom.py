"""Classroom quiz under load: N participants (separate Chromium contexts, one browser) answer Q questions while
the presenter's page tallies; prints the time from each answer's click to the presenter's tally counting it
(median, p95) and how many answers were lost.

    python bench/classroom.py [--people 30] [--questions 20]

Loopback only: the app is started on 127.0.0.1 with a fresh workspace. Participants click in turns as fast as
their pages allow (each click is one Streamlit rerun on the server); the presenter's tally re-reads the
workspace every second (its fragment's run_every), which bounds the latency from below by up to a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app_server import CHROMIUM_ARGS, chromium_path, running_app, wait_rendered  # noqa: E402

WATCH_TALLY = """() => {
  window.__tally = [];
  const read = () => {
    for (const m of document.querySelectorAll('[data-testid="stMetric"]')) {
      if (!m.innerText.startsWith('Answers')) continue;
      const v = parseInt(m.querySelector('[data-testid="stMetricValue"]').innerText.replace(/,/g, ''));
      if (window.__tally.length === 0 || window.__tally[window.__tally.length - 1][1] !== v)
        window.__tally.push([Date.now(), v]);
    }
  };
  new MutationObserver(read).observe(document.body, {subtree: true, childList: true, characterData: true});
  read();
}"""


def make_quiz(home: Path, questions: int):
    os.environ["VIZCORE_HOME"] = str(home)
    from vizcore import classroom as C
    from vizcore import data

    ds = data.load_dataset("fashion-mnist")  # the sidebar's default, so the presenter page shows this quiz
    idx = np.arange(questions)
    return C.create_quiz(ds.test_x[idx].numpy(), ds.test_y[idx].tolist(), ds.class_names, kind="test",
                         model_answers=ds.test_y[idx].tolist(), dataset=ds.name, model_id="bench")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=30)
    ap.add_argument("--questions", type=int, default=20)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vizcore-classroom-"))
    quiz = make_quiz(home, args.questions)
    from playwright.sync_api import sync_playwright

    from vizcore import classroom as C

    k = len(quiz.class_names)
    clicks: dict[tuple[str, int], float] = {}
    with running_app(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            presenter = browser.new_page(viewport={"width": 1400, "height": 1400})
            presenter.goto(url)
            wait_rendered(presenter, "Test accuracy", 600_000)
            presenter.goto(url + "/quiz")
            wait_rendered(presenter, f"code {quiz.code}", 600_000)
            presenter.evaluate(WATCH_TALLY)
            people = []
            for _ in range(args.people):
                context = browser.new_context(viewport={"width": 420, "height": 900})
                context.set_default_timeout(600_000)
                page = context.new_page()
                page.goto(f"{url}/?quiz={quiz.code}", wait_until="commit")
                people.append(page)
            pids = []
            for page in people:
                page.get_by_text(f"Picture 1 of {quiz.n}").wait_for(timeout=600_000)
                page.wait_for_function("() => location.search.includes('p=')", timeout=600_000)
                pids.append(parse_qs(urlparse(page.url).query)["p"][0])
            t0 = time.time()
            for q in range(quiz.n):
                for i, page in enumerate(people):
                    button = page.locator(f".st-key-quiz_ans_{q}_{(i + q) % k} button")
                    button.wait_for(timeout=600_000)
                    clicks[(pids[i], q)] = time.time()
                    button.click()
            answering_s = time.time() - t0
            expected = args.people * quiz.n
            presenter.wait_for_function(
                f"() => window.__tally.length && window.__tally[window.__tally.length - 1][1] >= {expected}",
                timeout=600_000, polling=100)
            tally = presenter.evaluate("() => window.__tally")
        finally:
            browser.close()
    got = C.answers(quiz.code)
    stored = sorted((a["t"], pid, q) for pid, qs in got.items() for q, a in qs.items())
    right = sum(got.get(pid, {}).get(q, {}).get("answer") == (pids.index(pid) + q) % k for pid, q in clicks)
    seen = np.array([t for t, _ in tally]) / 1000.0
    counts = np.array([c for _, c in tally])
    latencies = []
    for rank, (_, pid, q) in enumerate(stored, start=1):
        first = np.argmax(counts >= rank) if (counts >= rank).any() else None
        if first is not None:
            latencies.append(seen[first] - clicks[(pid, q)])
    lat = np.array(latencies) * 1000
    print(json.dumps({
        "people": args.people, "questions": quiz.n, "answers_clicked": len(clicks),
        "answers_stored": len(stored), "answers_lost": len(clicks) - right,
        "answer_to_presenter_tally_ms": {"median": round(float(np.median(lat)), 1),
                                         "p95": round(float(np.percentile(lat, 95)), 1),
                                         "max": round(float(lat.max()), 1)},
        "answers_per_second": round(len(clicks) / answering_s, 1),
        "presenter_refresh_s": 1.0, "load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
