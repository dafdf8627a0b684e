"""vizcore: look inside trained image classifiers and learn from what they imagine.

A pure PyTorch library; the Streamlit app (``app.py``, ``pages/``) and the CLI (``python -m vizcore``)
are thin layers over it.
"""

__version__ = "0.1.0"
