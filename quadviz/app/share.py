"""The "Share" box at the bottom of the sidebar: link, configuration, lecture mode.

Every Config field, the random seed included, the base scenario and lecture
mode are kept in the URL, so the link shown here reproduces the screen:
same configuration, hence the same numbers on the same device. The
configuration download is the JSON that ``python -m quadviz simulate
--config PATH`` reads.
"""

from __future__ import annotations

import urllib.parse

import streamlit as st

from quadviz import export
from quadviz.app import gallery, lecture
from quadviz.config import FIELDS, Config


def _ordered_params() -> list[tuple[str, str]]:
    """Query parameters: scenario first, then the Config fields, then the rest."""
    params = st.query_params.to_dict()
    first = [gallery.LINK_PARAM] + list(FIELDS)
    ordered = [(name, params[name]) for name in first if name in params]
    ordered += [(k, v) for k, v in params.items() if k not in first]
    return ordered


def link() -> str:
    """Full URL of the current view, or a path-relative "?..." link.

    The browser's address comes from ``st.context.url`` (Streamlit 1.67),
    which is None outside a browser session, for example under AppTest.
    """
    query = urllib.parse.urlencode(_ordered_params(), safe="-_.")
    base = st.context.url or ""
    return f"{base}?{query}" if query else base


def sidebar(config: Config) -> None:
    """Write scenario and lecture mode to the URL, then draw the Share box.

    Must run after :func:`quadviz.app.controls.sidebar`, which writes the
    Config fields, so that the link shown is complete.
    """
    gallery.write_link()
    lecture.write_link()
    with st.sidebar:
        st.subheader("Share")
        st.caption(
            "This link reproduces the view: every control, the random seed, "
            "the scenario and lecture mode. Copy it with the button at the "
            "right of the box."
        )
        st.code(link(), language=None, wrap_lines=True)
        st.download_button(
            "Configuration as JSON",
            data=lambda: export.config_json(config),
            file_name="quadviz-config.json",
            mime="application/json",
            key="share_config_json",
            on_click="ignore",
            help="Every setting of this run. Re-run it from a shell with "
            "python -m quadviz simulate --config quadviz-config.json",
        )
        lecture.toggle()
