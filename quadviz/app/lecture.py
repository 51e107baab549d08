"""Lecture mode (``?lecture=1``): a layout for a projector.

In lecture mode the text is larger, figures are taller with thicker lines
and larger fonts, side-by-side columns are stacked so that each figure fills
the width of the screen, and the "Output and numerics" controls are hidden.
Buttons step through the scenarios from the keyboard.

The mode is read from the link once per session and written back on every
run, so a copied link keeps it. A toggle at the bottom of the sidebar turns
it on and off.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from quadviz.app import link_checks

LECTURE_KEY = "qv_lecture"
LINK_PARAM = "lecture"
LINK_READ_KEY = "qv_lecture_link_read"
ON_VALUES = ("1", "true", "on", "yes")
OFF_VALUES = ("0", "false", "off", "no")
link_checks.register_link_keys(LINK_PARAM)

# Figure settings on a projector: pixel height (one figure per screen at
# 1280 x 800 with the browser's header), font size and line-width factor.
FIGURE_HEIGHT = 640
FONT_SIZE = 22
LINE_FACTOR = 1.8
MARKER_FACTOR = 1.5

# Larger text; side-by-side columns that hold a chart are stacked, so each
# figure gets the full width; the sidebar expanders (the "Output and
# numerics" controls) are hidden. The widgets inside a hidden expander still
# exist, so their values stay in the session and in the link. ":has" needs
# Chromium 105, Firefox 121 or Safari 15.4.
_STYLE = """
<style>
[data-testid="stMain"] .stMarkdown p,
[data-testid="stMain"] .stMarkdown li { font-size: 1.35rem; line-height: 1.5; }
[data-testid="stMain"] .stCaption p { font-size: 1.05rem; }
[data-testid="stMain"] h1 { font-size: 2.2rem; }
[data-testid="stMain"] [data-testid="stHorizontalBlock"]:has(.stPlotlyChart) {
  flex-direction: column; }
[data-testid="stMain"] [data-testid="stHorizontalBlock"]:has(.stPlotlyChart)
  > [data-testid="stColumn"] { width: 100% !important; flex: 1 1 100% !important; }
[data-testid="stSidebar"] [data-testid="stExpander"] { display: none; }
[data-testid="stSidebar"] label p { font-size: 1.1rem; }
button:focus-visible, [role="slider"]:focus-visible, input:focus-visible {
  outline: 3px solid #d95f02 !important; outline-offset: 2px; }
</style>
"""


def _read_link() -> str | None:
    """Set the mode from ``?lecture=``; return a warning for an invalid value."""
    raw = st.query_params.get(LINK_PARAM)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in ON_VALUES or value in OFF_VALUES:
        st.session_state[LECTURE_KEY] = value in ON_VALUES
        return None
    return (
        f"Ignored lecture={link_checks.show_raw(raw)} from the link: allowed 1 "
        "(lecture mode) or 0; "
        "using 0"
    )


def enabled() -> bool:
    """Return whether this session is in lecture mode."""
    return bool(st.session_state.get(LECTURE_KEY, False))


def setup() -> None:
    """Read the link on the first run, then style the page in lecture mode."""
    if not st.session_state.get(LINK_READ_KEY):
        st.session_state[LINK_READ_KEY] = True
        message = _read_link()
        if message:
            st.warning(message)
    st.session_state.setdefault(LECTURE_KEY, False)
    if enabled():
        st.html(_STYLE)


def toggle() -> None:
    """Draw the lecture-mode toggle; its session state is the mode itself."""
    st.toggle(
        "Lecture mode",
        key=LECTURE_KEY,
        help="Large fonts and lines for a projector, one figure per screen, "
        "advanced controls hidden. Kept in the link as lecture=1.",
    )


def write_link() -> None:
    """Keep ``lecture=1`` in the URL while the mode is on, and remove it otherwise."""
    if enabled():
        if st.query_params.get(LINK_PARAM) != "1":
            st.query_params[LINK_PARAM] = "1"
    elif LINK_PARAM in st.query_params:
        del st.query_params[LINK_PARAM]


def _scale_width(width: float | None, default: float) -> float:
    return (width if width is not None else default) * LINE_FACTOR


def restyle(figure: go.Figure) -> go.Figure:
    """Copy of ``figure`` for a projector, or the figure itself outside lecture mode.

    Fonts grow to FONT_SIZE, line widths and marker sizes by LINE_FACTOR and
    MARKER_FACTOR, and the height to at least FIGURE_HEIGHT.
    """
    if not enabled():
        return figure
    styled = go.Figure(figure)
    height = styled.layout.height or 450
    styled.update_layout(font=dict(size=FONT_SIZE), height=max(height, FIGURE_HEIGHT))
    for trace in styled.data:
        if trace.type != "scatter":
            continue
        if trace.line is not None and trace.line.width != 0:
            trace.line.width = _scale_width(trace.line.width, 2.0)
        if trace.marker is not None and isinstance(trace.marker.size, (int, float)):
            trace.marker.size = trace.marker.size * MARKER_FACTOR
    return styled
