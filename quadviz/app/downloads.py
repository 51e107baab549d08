"""Download buttons under each figure: its data as CSV and JSON, and HTML.

The files are built only when a button is clicked (Streamlit's deferred
download data), so a page with many figures costs nothing until a visitor
requests a file. The standalone HTML inlines plotly.js (about 4 MB).
"""

from __future__ import annotations

import functools

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
    html_help = (
        "Standalone page with plotly.js inlined (about 4 MB); opens "
        "without a network connection. The chart's camera button saves SVG."
    )
    formats = (
        ("Data as CSV", export.figure_csv, "csv", "text/csv", None),
        ("Data as JSON", export.figure_json, "json", "application/json", None),
        ("Figure as HTML", export.figure_html, "html", "text/html", html_help),
    )
    with st.popover("Download", icon=":material/download:", key=f"{key}_downloads"):
        for label, render, suffix, mime, help_text in formats:
            st.download_button(
                label,
                data=functools.partial(render, figure),
                file_name=f"{stem}.{suffix}",
                mime=mime,
                key=f"{key}_{suffix}",
                on_click="ignore",
                help=help_text,
            )
