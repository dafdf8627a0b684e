"""Start the real app (``python -m ui.serve``: ``streamlit run app.py`` as ``./vizcore.sh app`` starts it) on a free
port and drive it with Playwright in Debian's Chromium.

Used by the browser tests; screenshots go to ``tests/screenshots/`` (ignored by git) so a person can look.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "screenshots"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_path() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "browser tests need Debian's chromium (./vizcore.sh test installs it)"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(home: Path, timeout: float = 120.0, port: int | None = None):
    """Yield the URL of a freshly started app using workspace ``home`` (on ``port``, or a free one); stop it
    afterwards."""
    port = port or free_port()
    env = {**os.environ, "VIZCORE_HOME": str(home), "PYTHONPATH": os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    log = tempfile.TemporaryFile()  # not a pipe: a long session's log would fill it and block the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.serve", "--server.port", str(port),
         "--server.headless", "true", "--server.address", "127.0.0.1"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                out = log.read().decode(errors="replace")
                raise RuntimeError(f"streamlit did not start:\n{out[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def browser_page(width: int = 1400, height: int = 2200):
    """A Playwright page in headless Debian Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            yield page
        finally:
            browser.close()


def wait_rendered(page, text: str, timeout_ms: int = 300_000) -> None:
    """Wait until ``text`` is visible and Streamlit has stopped running the script. On a timeout the error carries
    what the page shows (sidebar, exceptions, the end of the main text) and a screenshot is kept, so a failure on
    another machine says what the page did instead."""
    try:
        page.get_by_text(text, exact=False).first.wait_for(timeout=timeout_ms)
        page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout_ms)
    except Exception as e:
        shown = page.evaluate("""() => ['stSidebar', 'stException', 'stMain'].map(t =>
            t + ': ' + [...document.querySelectorAll(`[data-testid=${t}]`)].map(e => e.innerText).join(' | '))""")
        screenshot(page, "failed-wait")
        raise AssertionError(f"{text!r} did not render; the page shows:\n" +
                             "\n".join(s[-1500:] for s in shown)) from e


def screenshot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
