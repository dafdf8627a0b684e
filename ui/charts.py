"""Charts redrawn at every input (a slider step, an image change): Streamlit's look without its theming pass, or
server-made pictures of them."""

from __future__ import annotations

from ui import static_chart
from vizcore.plots.common import light


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
