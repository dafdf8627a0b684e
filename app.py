"""vizcore's Streamlit app: the sidebar picks a dataset and a model; pages look inside it.

Pages live in ``views/``, not ``pages/``: a folder named ``pages`` switches Streamlit to its legacy automatic
multipage mode, under which AppTest reruns a page without this script (and so without the sidebar).
"""

import streamlit as st

from ui import state

st.set_page_config(page_title="vizcore", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("views/overview.py", title="Overview", icon="📋", default=True),
    st.Page("views/models_data.py", title="Models & data", icon="🗂️"),
    st.Page("views/visualize.py", title="Visualize", icon="🎨"),
    st.Page("views/student_lab.py", title="Student lab", icon="🧑‍🎓"),
]

nav = st.navigation(PAGES)
st.sidebar.title("vizcore")
ds, entry = state.sidebar()
st.session_state["_dataset"], st.session_state["_entry"] = ds, entry
nav.run()
