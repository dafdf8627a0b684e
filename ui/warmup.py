"""Warm-up of a served app: once the server answers, import PyTorch and vizcore and load the default dataset and
model in a background thread, so the first page finds them ready instead of waiting for them. pandas
(st.dataframe's import, about 2 s) is left to the pages that need it; the first page does not.

The imports wait for the server: both hold Python's GIL, so importing while the server starts would only delay
the moment the browser can fetch the app's static files (which it does in its own process meanwhile). A page
waits for the warm-up to end (:func:`wait`) before it imports anything itself: two threads importing the same
modules at once can see each other's half-initialized modules (plotly, for one, uses pandas as soon as it is in
``sys.modules``).
"""

from __future__ import annotations

import gc
import logging
import threading
import time

_done = threading.Event()
_done.set()  # nothing to wait for unless start() is called (tests, ``streamlit run app.py``)
_drawn = threading.Event()
HOLD_S = 5.0  # the longest the imports wait for a first page drawn without them


def start(hold: bool = False) -> None:
    """Warm up in the background. ``hold``: a saved first page exists (:mod:`ui.first_page`); the imports wait until
    a browser has been sent it (:func:`release`), or ``HOLD_S`` seconds, so that the browser's download of the app and
    that page do not share the GIL with them."""
    _done.clear()
    if not hold:
        _drawn.set()
    threading.Thread(target=_warm, name="vizcore-warm-up", daemon=True).start()


def release() -> None:
    """A first page has been drawn without PyTorch: the imports may start."""
    _drawn.set()


def wait(timeout: float | None = None) -> bool:
    """Wait until the warm-up has ended (at most ``timeout`` seconds); whether it has."""
    return _done.wait(timeout)


def done() -> bool:
    return _done.is_set()


def _warm() -> None:
    try:
        from streamlit.runtime import Runtime

        while not (Runtime.exists() and Runtime.instance().state.name.endswith("CONNECTED")):  # the server is up
            time.sleep(0.05)
        _drawn.wait(HOLD_S)
        import vizcore.metrics  # noqa: F401
        import vizcore.plots.common  # noqa: F401
        from ui import state

        # cached functions called outside a page log that they have no page to draw their spinner on
        logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").setLevel(logging.ERROR)
        state.preload()
        # the imported modules' objects live as long as the server: keep every later collection from walking them
        gc.collect()
        gc.freeze()
    except Exception:  # noqa: BLE001  (the page meets the same error and shows the user its message)
        pass
    finally:
        _done.set()
