"""Download buttons under each figure: its data as CSV and JSON, and HTML.

The files are built only when a button is clicked (Streamlit's deferred
download data), so a page with many figures costs nothing until a visitor
requests a file. The standalone HTML inlines plotly.js (about 4 MB).
"""

from __future__ import annotations

import re

import plotly.graph_objects as go
import streamlit as st

from quadviz import export
from quadviz.app.lecture import enabled as lecture_enabled


def _file_stem(figure: go.Figure, key: str) -> str:
    """File name stem from the chart key, e.g. "quadviz-overview_risk"."""
    return "quadviz-" + re.sub(r"[^A-Za-z0-9_-]+", "-", key).strip("-")


def figure_buttons(figure: go.Figure, key: str) -> None:
    """Draw a "Download" popover with the figure as CSV, JSON and HTML.

    Left out in lecture mode, where the screen belongs to the figures.
    """
    if lecture_enabled():
        return
    stem = _file_stem(figure, key)
    with st.popover("Download", icon=":material/download:", key=f"{key}_downloads"):
        st.download_button(
            "Data as CSV",
            data=lambda: export.figure_csv(figure),
            file_name=f"{stem}.csv",
            mime="text/csv",
            key=f"{key}_csv",
            on_click="ignore",
        )
        st.download_button(
            "Data as JSON",
            data=lambda: export.figure_json(figure),
            file_name=f"{stem}.json",
            mime="application/json",
            key=f"{key}_json",
            on_click="ignore",
        )
        st.download_button(
            "Figure as HTML",
            data=lambda: export.figure_html(figure),
            file_name=f"{stem}.html",
            mime="text/html",
            key=f"{key}_html",
            on_click="ignore",
            help="Standalone page with plotly.js inlined (about 4 MB); opens "
            "without a network connection. The chart's camera button saves SVG.",
        )
