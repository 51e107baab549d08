"""Compare runs: pin the current risk curve and overlay it on later runs.

Pinned runs live in the session (never in the link) as small
:class:`quadviz.pinned.PinnedRun` objects: Config values, at most 200 times
and risks each, and at most four runs.
"""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from quadviz import pinned
from quadviz.config import Config
from quadviz.experiment import Experiment

PINNED_KEY = "qv_pinned"


def runs() -> list[pinned.PinnedRun]:
    """Pinned runs of this session, oldest first."""
    return list(st.session_state.get(PINNED_KEY, []))


def overlay(figure: go.Figure, config: Config, x_axis: str = "time") -> go.Figure:
    """Add the pinned runs to a risk figure as dashed lines and return it."""
    return pinned.add_pinned(figure, runs(), config, x_axis)


def _pin(run: pinned.PinnedRun) -> None:
    st.session_state[PINNED_KEY] = pinned.push(runs(), run)


def _clear() -> None:
    st.session_state[PINNED_KEY] = []


def controls(result: Experiment, key: str) -> None:
    """Pin and clear buttons under a risk figure, with the pinned runs listed."""
    pinned_runs = runs()
    current = pinned.pin(result)
    already = any(r.values == current.values for r in pinned_runs)
    left, right = st.columns([1, 1])
    left.button(
        "Pin this run" if not already else "This run is pinned",
        key=f"{key}_pin",
        on_click=_pin,
        args=(current,),
        disabled=already,
        icon=":material/push_pin:",
        help=f"Keep this risk curve and draw it dashed on later runs "
        f"(up to {pinned.MAX_PINNED_RUNS}; the oldest is dropped).",
    )
    right.button(
        "Clear pinned runs",
        key=f"{key}_clear",
        on_click=_clear,
        disabled=not pinned_runs,
    )
    if pinned_runs:
        count = len(pinned_runs)
        noun = "run is" if count == 1 else "runs are"
        st.caption(
            f"{count} pinned {noun} drawn dashed; each legend entry names the "
            "settings in which it differs from the current run."
        )
