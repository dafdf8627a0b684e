"""Charts redrawn at every input (a slider step, an image change): Streamlit's look without its theming pass,
server-made pictures of them, or a server-made clickable SVG (the network diagram)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import streamlit as st

from ui import static_chart
from vizcore.plots.common import light

# the clickable diagram: the server's SVG shown as it is, a hot spot's node sent back on a click, its hover text in a
# tooltip (written as text, never as markup)
_CLICKABLE_JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  let root = parentElement.querySelector('.vz-figure');
  if (!root) {
    root = document.createElement('div');
    root.className = 'vz-figure';
    const tip = document.createElement('div');
    tip.className = 'vz-tip';
    parentElement.append(root, tip);
    root.addEventListener('click', (e) => {
      const node = e.target.closest('.open');
      if (node) setTriggerValue('clicked', JSON.parse(node.dataset.node));
    });
    root.addEventListener('pointermove', (e) => {
      const node = e.target.closest('.node');
      tip.style.display = node ? 'block' : 'none';
      if (!node) return;
      tip.textContent = node.dataset.hover;
      const box = parentElement.host ? parentElement.host.getBoundingClientRect() : root.getBoundingClientRect();
      tip.style.left = (e.clientX - box.left + 14) + 'px';
      tip.style.top = (e.clientY - box.top + 14) + 'px';
    });
    root.addEventListener('pointerleave', () => { tip.style.display = 'none'; });
  }
  if (root.dataset.shown !== data.version) {
    root.innerHTML = data.svg;
    root.dataset.shown = data.version;
  }
}
"""
_CLICKABLE_CSS = """
:host, .vz-figure { position: relative; display: block; }
.vz-figure svg { display: block; width: 100%; height: auto; }
.node { fill: transparent; }
.open { cursor: pointer; }
.node:hover { fill: rgba(0, 180, 216, 0.18); }
.vz-tip { position: absolute; display: none; pointer-events: none; white-space: pre-line; z-index: 10;
          background: #fff; border: 1px solid #bbb; border-radius: 4px; padding: 4px 8px; font: 14px sans-serif;
          color: #31333f; box-shadow: 0 1px 4px rgba(0, 0, 0, 0.2); }
"""
_clickable = st.components.v2.component("vizcore.clickable_figure", js=_CLICKABLE_JS, css=_CLICKABLE_CSS)


def live_chart(container, fig, key: str, **kwargs) -> None:
    """``container.plotly_chart`` of ``fig`` in Streamlit's light look, carried by the figure (``theme=None``): the
    browser's theming pass took about 90 ms a chart in Chromium at every Knockout slider step (bench/latency.py)."""
    container.plotly_chart(light(fig), key=key, theme=None, **kwargs)


def live_figure(container, fig, key: str, hover: bool, width: int = 700) -> None:
    """``fig`` as an interactive chart (:func:`live_chart`) when ``hover``, else as a server-made picture
    (:mod:`ui.static_chart`, ``width`` pixels wide in its own units) that the browser shows without Plotly.js."""
    if hover:
        live_chart(container, fig, key)
    else:
        container.image(static_chart.svg(fig.to_dict(), width), width="stretch")


def clickable_figure(svg: str, key: str, on_click: Callable[[], None]) -> None:
    """``svg`` (a picture-made figure drawn by :func:`ui.static_chart.clickable`) shown as it is: its nodes show their
    hover text and, clicked, call ``on_click``, which finds the node (its ``customdata``) in
    ``st.session_state[key].clicked``. Drawn without Plotly.js: an image or class change on Prediction gradients kept
    Chromium's main thread busy about 110 ms longer with the Plotly chart (bench/latency.py)."""
    _clickable(key=key, data={"svg": svg, "version": hashlib.blake2b(svg.encode(), digest_size=8).hexdigest()},
               on_clicked_change=on_click)
