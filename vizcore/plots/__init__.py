"""Plotly figure builders: data in, ``go.Figure`` out. Pages only place the figures.

One module per area (``common`` for what every page uses); none of them computes model results.
"""
