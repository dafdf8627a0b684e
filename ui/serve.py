"""``python -m ui.serve [streamlit options]``: start the app (``streamlit run app.py``) while PyTorch and vizcore
import in a background thread, so the first page does not wait for them after the server is up.

The server and the browser's first load take seconds that the imports (the largest cost of the first page)
now overlap with; ``./vizcore.sh app`` starts the app this way.
"""

import sys
import threading


def _warm() -> None:
    import torch  # noqa: F401  (the import itself is the point)

    import ui.state  # noqa: F401
    import vizcore.metrics  # noqa: F401
    import vizcore.plots.common  # noqa: F401


if __name__ == "__main__":
    threading.Thread(target=_warm, name="vizcore-warm-imports", daemon=True).start()
    from streamlit.web.cli import main

    sys.argv = ["streamlit", "run", "app.py", *sys.argv[1:]]
    sys.exit(main())
