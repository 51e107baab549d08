"""Every page of the Streamlit app, run in-process with AppTest.

Each test starts a new session from a link (query parameters) with a small
configuration, so a run takes about a second on two cores. Charts are read
back from the Plotly JSON that Streamlit sends to the browser.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "app.py")
# AppTest's default of 3 s per run is too short for a cold torch start on a
# busy 2-core machine.
RUN_TIMEOUT_S = 30

# d=64, r=4, width 4, t = 10 (past the first escapes), 2 seeds.
SMALL = {
    "d": "64",
    "r": "4",
    "width": "4",
    "lr": "0.02",
    "steps": "500",
    "seeds": "2",
}

PAGES = {
    "overview": "app_pages/overview.py",
    "sgd": "app_pages/sgd_dynamics.py",
    "riccati": "app_pages/riccati_flow.py",
    "recovery": "app_pages/signal_recovery.py",
}
# Charts each page draws, by their Streamlit keys.
CHART_KEYS = {
    "overview": ["overview_risk"],
    "sgd": ["sgd_risk"],
    "riccati": ["riccati_overlap", "riccati_spectrum", "riccati_ladder"],
    "recovery": ["recovery_lines", "recovery_heatmap", "recovery_escape"],
}
RISK_KEYS = {"overview_risk", "sgd_risk", "riccati_ladder"}


@pytest.fixture(autouse=True)
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _open(page: str = "overview", **params: str) -> AppTest:
    """Run the app from a link with ``params`` and switch to ``page``."""
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.query_params.update(params)
    at.run()
    if page != "overview":
        at.switch_page(PAGES[page]).run()
    return at


def _decode(values: Any) -> np.ndarray:
    """Plotly JSON array, plain or base64 typed ({"dtype", "bdata", "shape"})."""
    if isinstance(values, dict) and "bdata" in values:
        data = np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"])
        shape = values.get("shape")
        if shape:
            dims = [int(n) for n in str(shape).split(",")]
            data = data.reshape(dims)
        return data
    return np.asarray(values, dtype=object)


def _charts(at: AppTest) -> dict[str, dict]:
    """Plotly figure JSON of every chart on the page, by chart key."""
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def _warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def _risk_names(at: AppTest, key: str) -> list[str]:
    return [trace.get("name", "") for trace in _charts(at)[key]["data"]]


@pytest.mark.parametrize("page", list(PAGES))
def test_page_runs_cleanly(page):
    at = _open(page, **SMALL)
    assert not at.exception
    assert [e.value for e in at.error] == []
    assert _warnings(at) == []


@pytest.mark.parametrize("page", list(PAGES))
def test_page_charts_present(page):
    at = _open(page, **SMALL)
    charts = _charts(at)
    assert sorted(charts) == sorted(CHART_KEYS[page])


@pytest.mark.parametrize("page", ["overview", "sgd", "riccati"])
def test_risk_charts_log_axes(page):
    charts = _charts(_open(page, **SMALL))
    for key in set(charts) & RISK_KEYS:
        layout = charts[key]["layout"]
        assert layout["xaxis"]["type"] == "log", key
        assert layout["yaxis"]["type"] == "log", key
        assert len(charts[key]["data"]) >= 2, key


def test_risk_chart_traces():
    names = _risk_names(_open("sgd", **SMALL), "sgd_risk")
    assert any(name.startswith("SGD, mean") for name in names)
    assert any(name.startswith("population flow") for name in names)
    assert any(name.startswith("guide slope -1.00") for name in names)


def test_risk_chart_values_positive():
    chart = _charts(_open("overview", **SMALL))["overview_risk"]
    for trace in chart["data"]:
        y = _decode(trace["y"]).astype(np.float64)
        assert np.all(y[np.isfinite(y)] > 0), trace.get("name")


def test_recovery_charts_log_time():
    charts = _charts(_open("recovery", **SMALL))
    for key in ("recovery_lines", "recovery_heatmap", "recovery_escape"):
        assert charts[key]["layout"]["xaxis"]["type"] == "log", key


def test_bad_link_values_named():
    at = _open(**{**SMALL, "d": "-5", "lr": "abc"})
    warnings = _warnings(at)
    assert any("d=-5" in w and "allowed" in w for w in warnings), warnings
    assert any("lr=abc" in w and "allowed" in w for w in warnings), warnings
    assert not at.exception


def test_bad_link_keeps_other_values():
    at = _open(**{**SMALL, "d": "-5", "lr": "abc"})
    assert at.session_state["cfg_width"] == 4
    assert at.session_state["cfg_steps"] == 500
    assert at.session_state["cfg_r"] == 4
    assert at.query_params["width"] == "4"
    assert at.query_params["d"] == "256"


def test_link_value_clamped_to_sidebar():
    at = _open(**{**SMALL, "seeds": "40"})
    warnings = _warnings(at)
    assert any("seeds=40" in w and "16" in w for w in warnings), warnings
    assert at.session_state["cfg_seeds"] == 16


def test_link_cross_field_error():
    at = _open(**{**SMALL, "width": "100"})
    warnings = _warnings(at)
    assert any("width=100" in w for w in warnings), warnings
    assert not at.exception


def test_link_warning_shown_once():
    at = _open(**{**SMALL, "d": "-5"})
    assert any("d=-5" in w for w in _warnings(at))
    at.run()
    assert not any("d=-5" in w for w in _warnings(at))


def test_link_written_back():
    at = _open(**SMALL)
    for name, value in SMALL.items():
        assert at.query_params[name] == value, name
    assert at.query_params["alpha"] == "1"
    assert "t_max" not in at.query_params


def test_slider_changes_result():
    at = _open("sgd", **SMALL)
    assert any(n.startswith("guide slope -1.00") for n in _risk_names(at, "sgd_risk"))
    at.slider(key="cfg_alpha").set_value(1.5).run()
    assert not at.exception
    names = _risk_names(at, "sgd_risk")
    assert any(n.startswith("guide slope -1.33") for n in names), names
    assert at.query_params["alpha"] == "1.5"


def test_divergence_warning():
    at = _open("sgd", **{**SMALL, "lr": "0.5", "steps": "200"})
    warnings = _warnings(at)
    assert any("diverged" in w for w in warnings), warnings
    assert any("Step size above the stability limit" in w for w in warnings)
    assert not at.exception
    layout = _charts(at)["sgd_risk"]["layout"]
    assert any("diverged" in a["text"] for a in layout.get("annotations", []))
    gap = next(m for m in at.metric if m.label == "median gap SGD vs flow")
    assert gap.value == "SGD diverged"


def test_sgd_skipped_above_limit():
    at = _open("sgd", **{**SMALL, "d": "4096", "batch": "4096", "steps": "2000000"})
    infos = [i.value for i in at.info]
    assert any("Online SGD not computed" in i for i in infos), infos
    names = _risk_names(at, "sgd_risk")
    assert not any(name.startswith("SGD") for name in names)
    assert any(name.startswith("population flow") for name in names)


@pytest.mark.parametrize("x_axis", ["samples", "steps"])
def test_x_axis_selector(x_axis):
    at = _open("sgd", **SMALL)
    at.radio(key="sgd_x_axis").set_value(x_axis).run()
    title = _charts(at)["sgd_risk"]["layout"]["xaxis"]["title"]["text"]
    assert title.lower().startswith(x_axis if x_axis == "samples" else "sgd steps")


def test_riccati_time_slider_moves_heatmap():
    at = _open("riccati", **SMALL)
    before = _charts(at)["riccati_overlap"]["layout"]["title"]["text"]
    slider = at.select_slider[0]
    slider.set_value(len(slider.options) - 1).run()
    after = _charts(at)["riccati_overlap"]["layout"]["title"]["text"]
    assert before != after


def test_device_line_in_sidebar():
    at = _open(**SMALL)
    captions = [c.value for c in at.sidebar.caption]
    lines = [c for c in captions if c.startswith("SGD (") and " s on " in c]
    assert lines, captions
    assert "path) and flow:" in lines[0]
