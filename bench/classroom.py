"""Classroom quiz under load: N participants answer Q questions while the presenter's page tallies; prints JSON
with the time from each answer's click to the presenter's tally counting it (median, p95, max) and how many
answers were lost.

    python bench/classroom.py [--driver ws|browser] [--people 30] [--questions 20]

Loopback only: the app is started on 127.0.0.1 with a fresh workspace and one quiz. The presenter is a Chromium page
on /quiz whose MutationObserver (WATCH_TALLY) notes the time at which its "Answers" count changes, so the tally is
measured where a person sees it; the tally re-reads the workspace every second (its fragment's run_every), which
bounds the latency from below by up to a second. An answer's click time is when its click is sent (ws: its BackMsg;
browser: just before Playwright clicks); the n-th answer the server's reruns store (their time in the answer file)
is counted when the presenter's count first reaches n. Lost: clicked answers that are not in the workspace
afterwards (C.answers).

Participants (--driver):

- ws: a lightweight websocket client per participant (the ``websockets`` package Streamlit itself depends on), all
  in this one asyncio process, speaking Streamlit's own protocol (BackMsg / ForwardMsg protobufs on /_stcore/stream)
  as its frontend does: it pings /_stcore/health (the XSRF cookie) and /_stcore/host-config, asks for a run of
  ``/?quiz=CODE``, takes the participant id (``p=``) the page puts in the query string, reads its answer buttons'
  widget ids from the deltas, presses one (a rerun with the button's trigger_value) and waits for the script to
  finish and the next picture to show (and fetches it, as the page's <img> does). Each participant answers again as
  soon as its own next picture shows, independently of the others, as people in a room do. Not loaded: the
  frontend's static files.
- browser: a Chromium context per participant in the presenter's browser. These click in rounds (lock-step): a click
  on every page, then every page's next picture, so a round waits for the slowest page. On a 2-core machine the 30
  browsers themselves load it (load average 12), so this measures the load generator more than the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ClientState_pb2 import ClientState, ContextInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import connect

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
TIMEOUT_S = 600


def make_quiz(home: Path, questions: int):
    os.environ["VIZCORE_HOME"] = str(home)
    from vizcore import classroom as C
    from vizcore import data

    ds = data.load_dataset("fashion-mnist")  # the sidebar's default, so the presenter page shows this quiz
    idx = np.arange(questions)
    return C.create_quiz(ds.test_x[idx].numpy(), ds.test_y[idx].tolist(), ds.class_names, kind="test",
                         model_answers=ds.test_y[idx].tolist(), dataset=ds.name, model_id="bench")


def choice(i: int, q: int, k: int) -> int:
    """The class participant i names for question q."""
    return (i + q) % k


def next_text(q: int, n: int) -> str:
    """What a participant's page shows once question q is answered."""
    return f"Picture {q + 2} of {n}" if q + 1 < n else "Done"


def browser_people(browser, url: str, quiz, people: int):
    """Chromium contexts answer in rounds; returns ({(pid, q): click time}, pids, seconds answering)."""
    pages = []
    for _ in range(people):
        context = browser.new_context(viewport={"width": 420, "height": 900})
        context.set_default_timeout(TIMEOUT_S * 1000)
        page = context.new_page()
        page.goto(f"{url}/?quiz={quiz.code}", wait_until="commit")
        pages.append(page)
    pids = []
    for page in pages:
        page.get_by_text(f"Picture 1 of {quiz.n}").wait_for()
        page.wait_for_function("() => location.search.includes('p=')")
        pids.append(parse_qs(urlparse(page.url).query)["p"][0])
    clicks, t0 = {}, time.time()
    for q in range(quiz.n):
        for i, page in enumerate(pages):
            button = page.locator(f".st-key-quiz_ans_{q}_{choice(i, q, len(quiz.class_names))} button")
            button.wait_for()
            clicks[(pids[i], q)] = time.time()
            button.click()
        for page in pages:  # every page shows its next picture before the round after
            page.get_by_text(next_text(q, quiz.n)).first.wait_for()
    return clicks, pids, time.time() - t0


class Participant:
    """One person's device on the quiz, as Streamlit's frontend talks to the server (frontend/app: App.tsx's
    sendRerunBackMsg, WidgetStateManager.setTriggerValue, WebsocketConnection and its ForwardMsgCache)."""

    def __init__(self, url: str, query: str):
        self.url, self.query, self.page_hash = url, query, ""
        self.cache: dict[str, tuple[int, ForwardMsg]] = {}  # hash -> (run, ForwardMsg) of cacheable messages
        self.runs, self.max_age, self.elements = 0, 2, {}
        self.jar = CookieJar()  # a browser context's cookies: the XSRF cookie /_stcore/health sets
        self.http = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> bytes:
        with self.http.open(self.url + path, timeout=TIMEOUT_S) as r:
            return r.read()

    async def open(self) -> None:
        for path in ("/_stcore/health", "/_stcore/host-config"):
            await asyncio.to_thread(self.get, path)
        cookies = {c.name: c.value for c in self.jar}
        self.ws = await connect(  # the subprotocols carry the XSRF token, as the frontend's getSessionTokens does
            "ws" + self.url[4:] + "/_stcore/stream", origin=self.url, max_size=None, proxy=None, ping_interval=None,
            subprotocols=["streamlit", cookies.get("_streamlit_xsrf", "PLACEHOLDER_AUTH_TOKEN")],
            additional_headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else None,
            open_timeout=TIMEOUT_S)
        await self.rerun()

    async def rerun(self, widget_id: str | None = None) -> float:
        """Ask for a run (with a button's trigger), read it to its end; returns when the BackMsg was sent."""
        state = ClientState(query_string=self.query, page_script_hash=self.page_hash,
                            cached_message_hashes=list(self.cache), context_info=ContextInfo(
                                timezone="UTC", timezone_offset=0, locale="en-US", url=f"{self.url}/?{self.query}",
                                is_embedded=False, color_scheme="light"))
        if widget_id:
            state.widget_states.widgets.add(id=widget_id, trigger_value=True)
        sent = time.time()
        await self.ws.send(BackMsg(rerun_script=state).SerializeToString())
        self.elements = {}
        while True:
            msg = ForwardMsg.FromString(await asyncio.wait_for(self.ws.recv(), TIMEOUT_S))
            if msg.HasField("ref_hash"):  # a message this client holds: the server sent its hash only
                full = self.cache[msg.ref_hash][1]
                full.metadata.CopyFrom(msg.metadata)
                self.cache[msg.ref_hash] = (self.runs, full)
                msg = full
            elif msg.metadata.cacheable:
                self.cache[msg.hash] = (self.runs, msg)
            kind = msg.WhichOneof("type")
            if kind == "new_session":
                self.page_hash = msg.new_session.page_script_hash
                self.max_age = msg.new_session.config.max_cached_message_age
            elif kind == "navigation":
                self.page_hash = msg.navigation.page_script_hash
            elif kind == "page_info_changed":  # st.query_params changed: the browser's address follows
                self.query = msg.page_info_changed.query_string
            elif kind == "delta" and msg.delta.HasField("new_element"):
                self.elements[tuple(msg.metadata.delta_path)] = msg.delta.new_element
            elif kind == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                break
        self.runs += 1
        self.cache = {h: (r, m) for h, (r, m) in self.cache.items() if self.runs - r <= self.max_age}
        for e in self.elements.values():
            for img in e.imgs.imgs:
                await asyncio.to_thread(self.get, img.url)
        return sent

    def shows(self, text: str) -> bool:
        return any(text in e.markdown.body or text in e.alert.body for e in self.elements.values())

    def buttons(self) -> dict[str, str]:
        """key -> widget id of the buttons shown (an id is ``$$ID-<hash>-<key>``)."""
        return {e.button.id.split("-", 2)[2]: e.button.id for e in self.elements.values()
                if e.WhichOneof("type") == "button"}


async def ws_people(url: str, quiz, people: int, choose=choice):
    """Websocket participants, each answering at its own pace (participant i names class ``choose(i, q, k)`` for
    question q); returns as browser_people does."""
    k = len(quiz.class_names)

    async def join() -> Participant:
        p = Participant(url, f"quiz={quiz.code}")
        await p.open()
        return p

    async def answer(i: int, p: Participant) -> None:
        for q in range(quiz.n):
            clicks[(pids[i], q)] = await p.rerun(p.buttons()[f"quiz_ans_{q}_{choose(i, q, k)}"])
            if not p.shows(next_text(q, quiz.n)):
                shown = [e.markdown.body or e.alert.body for e in p.elements.values()]
                raise RuntimeError(f"participant {pids[i]} clicked question {q}; the page shows {shown}")
        await p.ws.close()

    ps = await asyncio.gather(*(join() for _ in range(people)))
    assert all(p.shows(f"Picture 1 of {quiz.n}") for p in ps)
    pids = [parse_qs(p.query)["p"][0] for p in ps]
    clicks, t0 = {}, time.time()
    await asyncio.gather(*(answer(i, p) for i, p in enumerate(ps)))
    return clicks, pids, time.time() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--driver", choices=["ws", "browser"], default="ws")
    ap.add_argument("--people", type=int, default=30)
    ap.add_argument("--questions", type=int, default=20)
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="vizcore-classroom-"))
    quiz = make_quiz(home, args.questions)
    from playwright.sync_api import sync_playwright

    from vizcore import classroom as C

    k = len(quiz.class_names)
    with running_app(home) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            presenter = browser.new_page(viewport={"width": 1400, "height": 1400})
            presenter.goto(url)
            wait_rendered(presenter, "Test accuracy", TIMEOUT_S * 1000)
            presenter.goto(url + "/quiz")
            wait_rendered(presenter, f"code {quiz.code}", TIMEOUT_S * 1000)
            presenter.evaluate(WATCH_TALLY)
            if args.driver == "browser":
                clicks, pids, answering_s = browser_people(browser, url, quiz, args.people)
            else:  # in a thread of its own: Playwright's sync API holds this thread's event loop
                with ThreadPoolExecutor(1) as pool:
                    run = pool.submit(asyncio.run, ws_people(url, quiz, args.people))
                    while not run.done():
                        presenter.wait_for_timeout(200)
                    clicks, pids, answering_s = run.result()
            expected = args.people * quiz.n
            presenter.wait_for_function(
                f"() => window.__tally.length && window.__tally[window.__tally.length - 1][1] >= {expected}",
                timeout=TIMEOUT_S * 1000, polling=100)
            tally = presenter.evaluate("() => window.__tally")
        finally:
            browser.close()
    got = C.answers(quiz.code)
    stored = sorted((a["t"], pid, q) for pid, qs in got.items() for q, a in qs.items())
    right = sum(got.get(pid, {}).get(q, {}).get("answer") == choice(pids.index(pid), q, k) for pid, q in clicks)
    seen = np.array([t for t, _ in tally]) / 1000.0
    counts = np.array([c for _, c in tally])
    latencies = []
    for rank, (_, pid, q) in enumerate(stored, start=1):
        first = np.argmax(counts >= rank) if (counts >= rank).any() else None
        if first is not None:
            latencies.append(seen[first] - clicks[(pid, q)])
    lat = np.array(latencies) * 1000
    print(json.dumps({
        "driver": args.driver, "people": args.people, "questions": quiz.n, "answers_clicked": len(clicks),
        "answers_stored": len(stored), "answers_lost": len(clicks) - right,
        "answer_to_presenter_tally_ms": {"median": round(float(np.median(lat)), 1),
                                         "p95": round(float(np.percentile(lat, 95)), 1),
                                         "max": round(float(lat.max()), 1)},
        "answers_per_second": round(len(clicks) / answering_s, 1),
        "presenter_refresh_s": 1.0, "load_average_1min": round(os.getloadavg()[0], 2), "cpu_count": os.cpu_count()}))


if __name__ == "__main__":
    main()
