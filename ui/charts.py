"""Charts redrawn at every input (a slider step, an image change): Streamlit's look without its theming pass."""

from __future__ import annotations

from vizcore.plots.common import light


def live_chart(container, fig, key: str, **kwargs) -> None:
    """``container.plotly_chart`` of ``fig`` in Streamlit's light look, carried by the figure (``theme=None``): the
    browser's theming pass took about 90 ms a chart in Chromium at every Knockout slider step (bench/latency.py)."""
    container.plotly_chart(light(fig), key=key, theme=None, **kwargs)
