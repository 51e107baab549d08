"""Streamlit glue of quadviz: sidebar controls, cached engine calls, charts.

This subpackage is the only part of quadviz that imports streamlit; the
engine and the figure builders stay usable without it.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

CHART_CONFIG = {
    "toImageButtonOptions": {"format": "svg"},
    "displaylogo": False,
}


def plotly_chart(figure: go.Figure, key: str) -> None:
    """Show a figure at full width; the mode bar saves SVG for slides.

    The Streamlit chart theme is off, so the figure keeps its own fonts and
    colours and looks the same on screen and in an exported SVG.
    """
    st.plotly_chart(
        figure, width="stretch", config=CHART_CONFIG, key=key, theme=None
    )
