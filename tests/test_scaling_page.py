"""The Scaling laws page: AppTest runs with small sweeps, and a browser test.

AppTest opens the app with small sidebar settings, then sets the page's own
widgets through session state (r = 32, two alphas, two SGD dimensions) and
switches to the page, so a run takes a few seconds on two cores. The
browser test opens /scaling with the page defaults.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from quadviz.app import scaling_cache

APP = str(Path(__file__).resolve().parents[1] / "app.py")
PAGE = "app_pages/scaling_laws.py"
RUN_TIMEOUT_S = 60

SMALL_SIDEBAR = {"d": "64", "r": "4", "width": "4", "steps": "200", "seeds": "1"}
SMALL_STATE = {
    "scaling_r": 32,
    "scaling_points": 30,
    "scaling_alphas": [1.0, 1.5],
    "scaling_dims": [128, 256],
}
CHART_KEYS = {
    "scaling_risk_alpha",
    "scaling_escape",
    "scaling_width_floor",
    "scaling_compute",
    "scaling_samples",
}


@pytest.fixture(autouse=True)
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _open(**state) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    # The first run shows the default page; small sidebar settings keep it short.
    at.query_params.update(SMALL_SIDEBAR)
    at.run()
    for key, value in {**SMALL_STATE, **state}.items():
        at.session_state[key] = value
    at.switch_page(PAGE).run()
    return at


def _charts(at: AppTest) -> dict[str, dict]:
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def _decode(values) -> np.ndarray:
    """Plotly JSON array, plain or base64-typed ({"dtype", "bdata"})."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"])
    return np.asarray(values, dtype=np.float64)


def _exponent_table(at: AppTest):
    """The table of fitted exponents (the one with a "quantity" column)."""
    tables = [df.value for df in at.dataframe if "quantity" in df.value.columns]
    assert len(tables) == 1
    return tables[0]


def _names(chart: dict) -> list[str]:
    return [trace.get("name", "") for trace in chart["data"]]


@pytest.fixture(scope="module")
def small_page():
    st.cache_data.clear()
    at = _open()
    yield at
    st.cache_data.clear()


def test_page_runs_cleanly(small_page):
    assert not small_page.exception
    assert [e.value for e in small_page.error] == []
    assert [w.value for w in small_page.warning] == []


def test_page_charts_log_axes(small_page):
    charts = _charts(small_page)
    assert set(charts) == CHART_KEYS
    for key, chart in charts.items():
        assert chart["layout"]["xaxis"]["type"] == "log", key
        assert chart["layout"]["yaxis"]["type"] == "log", key
        assert chart["layout"]["xaxis"]["exponentformat"] == "power", key
        assert all(trace["type"] == "scatter" for trace in chart["data"]), key


def test_alpha_chart_guides_and_fits(small_page):
    names = _names(_charts(small_page)["scaling_risk_alpha"])
    assert "α = 1, flow" in names
    assert "α = 1.5, flow" in names
    assert "guide -1.00" in names
    assert "guide -1.33" in names
    assert sum(name.startswith("fit ") for name in names) == 2


def test_compute_chart_frontier_and_conjecture(small_page):
    names = _names(_charts(small_page)["scaling_compute"])
    assert "frontier (lower envelope)" in names
    assert any(name.startswith("frontier fit") for name in names)
    assert any(name.startswith("conjecture -0.50") for name in names)
    assert [n for n in names if n.startswith("m = ")] == [
        "m = 4", "m = 8", "m = 16", "m = 32"
    ]


def test_samples_chart_has_sgd(small_page):
    names = _names(_charts(small_page)["scaling_samples"])
    assert "d = 128, SGD" in names
    assert "d = 256, SGD" in names
    layout = _charts(small_page)["scaling_samples"]["layout"]
    assert layout["xaxis"]["title"]["text"].startswith("samples per dimension")


def test_width_floor_values_positive(small_page):
    chart = _charts(small_page)["scaling_width_floor"]
    for trace in chart["data"]:
        y = _decode(trace["y"]).astype(np.float64)
        assert np.all(y > 0), trace["name"]


def test_exponent_table(small_page):
    table = _exponent_table(small_page)
    quantities = set(table["quantity"])
    assert {"risk vs time", "escape time vs j", "frontier vs compute"} <= quantities
    assert all(isinstance(w, str) and w for w in table["window"])
    assert any("emergence window" in w for w in table["window"])


def test_reconstruction_waits_for_button(small_page):
    infos = [i.value for i in small_page.info]
    waiting = [i for i in infos if i.startswith("Reconstruction, population flow")]
    assert len(waiting) == 1, infos
    assert "estimated cost" in waiting[0]
    keys = [b.key for b in small_page.button]
    assert "scaling_run_reconstruction_flow" in keys


def test_user_fit_window():
    at = _open()
    at.radio(key="scaling_window_mode").set_value("choose").run()
    assert not at.exception
    table = _exponent_table(at)
    risk_rows = table[table["quantity"] == "risk vs time"]
    assert all("chosen by the user" in w for w in risk_rows["window"])


def test_costly_sweep_waits_then_runs(monkeypatch):
    monkeypatch.setattr(scaling_cache, "AUTO_RUN_SECONDS", 0.0)
    at = _open(scaling_dims=[128])
    assert not at.exception
    assert _charts(at) == {}
    infos = [i.value for i in at.info]
    assert any("Sweep over α" in i and "estimated cost" in i for i in infos), infos

    at.button(key="scaling_run_alpha").click().run()
    assert not at.exception
    assert "scaling_risk_alpha" in _charts(at)


@pytest.mark.browser
def test_browser_scaling_page(app_page):
    app_page.open("/scaling", min_charts=5)

    assert app_page.exception_texts() == []
    assert app_page.page_errors == []
    assert app_page.blocked_requests == []
    figures = app_page.figures()
    titles = [figure["title"] for figure in figures]
    assert "Risk against time" in titles, titles
    for figure in figures:
        assert figure["axes"]["xaxis"]["type"] == "log", figure["title"]
        assert figure["axes"]["yaxis"]["type"] == "log", figure["title"]
        drawn = [t for t in figure["traces"] if t["visible"] is not False]
        assert drawn, figure["title"]
        assert all(t["type"] == "scatter" for t in drawn), figure["title"]
    risk = figures[titles.index("Risk against time")]
    names = [trace["name"] for trace in risk["traces"]]
    assert {"α = 0.75, flow", "α = 1, flow", "α = 1.5, flow"} <= set(names)
    app_page.screenshot("scaling-default")
