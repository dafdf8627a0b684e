"""vizcore's Streamlit app: the sidebar picks a dataset and a model; pages look inside it.

Pages live in ``pages/`` and are listed here with ``st.navigation`` (tests/conftest.py keeps AppTest on it).
A quiz participant (``/?quiz=CODE``) gets the quiz alone.
"""

import streamlit as st

from ui import first_page, warmup

st.set_page_config(page_title="vizcore", page_icon=":material/biotech:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", default=True),
    st.Page("pages/models_data.py", title="Models & data", icon=":material/folder_open:"),
    st.Page("pages/visualize.py", title="Visualize", icon=":material/palette:"),
    st.Page("pages/gradients.py", title="Prediction gradients", icon=":material/hub:"),
    st.Page("pages/looks_like.py", title="Looks like", icon=":material/compare:"),
    st.Page("pages/perturb.py", title="Perturb", icon=":material/ads_click:"),
    st.Page("pages/knockout.py", title="Knockout", icon=":material/content_cut:"),
    st.Page("pages/student_lab.py", title="Student lab", icon=":material/school:"),
    st.Page("pages/compression.py", title="Compression", icon=":material/compress:"),
    st.Page("pages/quiz.py", title="Classroom quiz", icon=":material/quiz:"),
]

if "quiz" in st.query_params:  # a participant's device: the quiz only, no sidebar, no model to choose
    warmup.wait()
    from ui.quiz import participant_page

    st.navigation([st.Page(participant_page, title="Quiz", icon=":material/quiz:")], position="hidden").run()
    st.stop()

nav = st.navigation(PAGES)
if not warmup.done() and nav.title == PAGES[0].title and (saved := first_page.load()):
    first_page.show_saved(saved, nav.title)  # the last Overview, drawn while the warm-up imports PyTorch
    warmup.release()
    if not warmup.wait(first_page.PRELOAD_AFTER_S):
        first_page.preload_plotly()
    warmup.wait()
    st.rerun()
warmup.wait()  # a served app's warm-up imports what the pages import; the pages wait until it is done
from ui import state  # noqa: E402

st.sidebar.title("vizcore")
ds, entry = state.sidebar()
st.session_state["_dataset"], st.session_state["_entry"] = ds, entry
nav.run()
