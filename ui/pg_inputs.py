"""Widgets shared by the prediction-gradient pages: pick a class and one test image of it."""

from __future__ import annotations

import streamlit as st
import torch

from ui import state
from vizcore.data import Dataset


def pick_class(ds: Dataset, key: str, label: str = "Class", default: int = 0, container=st) -> int:
    """A class selectbox showing names; returns the class index (``default`` again after a switch of dataset)."""
    default = min(default, ds.num_classes - 1)
    reset = state.new_classes(key, ds.class_names, default)
    return container.selectbox(label, range(ds.num_classes), index=0 if reset else default, key=key,
                               format_func=lambda c: f"{c}: {ds.class_names[c]}")


def pick_image(ds: Dataset, key: str, container=st) -> tuple[int, torch.Tensor, int]:
    """Choose a class and the n-th test image of it; returns (test index, image (C, H, W), true class)."""
    c1, c2 = container.columns(2)
    c = pick_class(ds, f"{key}_class", container=c1)
    idx = torch.nonzero(ds.test_y == c).flatten()
    if len(idx) == 0:
        st.warning(f"No test images of class {ds.class_names[c]}.")
        st.stop()
    n = c2.number_input(f"Image of this class (1–{len(idx)})", 1, len(idx), 1, key=f"{key}_n")
    i = int(idx[int(n) - 1])
    return i, ds.test_x[i], c
