"""Streamlit glue shared by app.py and the pages: cached loaders, the sidebar selection, job panels."""
