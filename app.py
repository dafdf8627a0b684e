"""vizcore's Streamlit app: the sidebar picks a dataset and a model; pages look inside it."""

import streamlit as st

from ui import state

st.set_page_config(page_title="vizcore", page_icon="🔬", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon="📋", default=True),
    st.Page("pages/models_data.py", title="Models & data", icon="🗂️"),
    st.Page("pages/visualize.py", title="Visualize", icon="🎨"),
    st.Page("pages/student_lab.py", title="Student lab", icon="🧑‍🎓"),
]

nav = st.navigation(PAGES)
st.sidebar.title("vizcore")
ds, entry = state.sidebar()
st.session_state["_dataset"], st.session_state["_entry"] = ds, entry
nav.run()
