"""Streamlit glue of quadviz: sidebar controls, cached engine calls, charts.

This subpackage is the only part of quadviz that imports streamlit; the
engine and the figure builders stay usable without it.
"""

from __future__ import annotations

# pandas is imported here, once per process, because plotly's validators take
# it from sys.modules without importing it. Under load, one session's figure
# met the half-imported pandas of another session's thread and failed with
# AttributeError (plotly 7.1, Streamlit 1.67).
import pandas  # noqa: F401
import plotly.graph_objects as go
import streamlit as st

from quadviz.app import downloads, lecture

CHART_CONFIG = {
    "toImageButtonOptions": {"format": "svg"},
    "displaylogo": False,
}


def plotly_chart(figure: go.Figure, key: str) -> None:
    """Show a figure at full width; the mode bar saves SVG for slides.

    The Streamlit chart theme is off, so the figure keeps its own fonts and
    colours and looks the same on screen and in an exported SVG. In lecture
    mode the figure is drawn larger; a Download menu under it offers its data
    as CSV and JSON and the figure as HTML.
    """
    shown = lecture.restyle(figure)
    st.plotly_chart(shown, width="stretch", config=CHART_CONFIG, key=key, theme=None)
    downloads.figure_buttons(figure, key)
