"""``python -m ui.serve [streamlit options]``: start the app (``streamlit run app.py``) as ``./vizcore.sh app``
does: with the file watcher off (nobody edits a served app's code) and the warm-up of :mod:`ui.warmup`, which
imports PyTorch and vizcore and loads the default dataset and model while the browser loads the app.
"""

import sys

from ui import first_page, warmup

if __name__ == "__main__":
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.web.cli import main

    # after streamlit's own import, which it would otherwise see half done; with a saved first page, after that page
    warmup.start(hold=first_page.load() is not None)

    # app.py navigates with st.navigation. Without this, the first request of a fresh server for a page's own URL
    # (say /models_data) would run that page the legacy way because a pages/ folder exists: without app.py's sidebar.
    PagesManager.uses_pages_directory = False

    sys.argv = ["streamlit", "run", "app.py", "--server.fileWatcherType", "none", *sys.argv[1:]]
    sys.exit(main())
