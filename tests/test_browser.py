"""Browser tests: every page of the app in headless Chromium.

Each test opens the Streamlit server of the ``streamlit_url`` fixture in a
fresh browser context, so each test is a new Streamlit session that reads its
settings from the link. The Plotly figures are read back from the graph divs.
Screenshots go to test-output/screenshots/ for people to look at.

Most tests use a small configuration so that SGD finishes in seconds on two
cores. One test opens the default view.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from typing import Any

import pytest

from quadviz.config import FIELDS

pytestmark = pytest.mark.browser

# d=64, r=4, width 4, 500 steps, 2 seeds: SGD and flow took about 4 s on 2 CPU
# cores.
SMALL_QUERY = "d=64&r=4&width=4&steps=500&seeds=2"

# URL path of each page, from the url_path values given to st.Page in app.py.
# The Overview page is the default page, served at "/".
PAGES = {
    "overview": "/",
    "sgd": "/sgd",
    "riccati": "/riccati",
    "recovery": "/recovery",
}

ALPHA_SLIDER_LABEL = "spectrum exponent α"
DEFAULT_D = str(FIELDS["d"].default)

# The default settings took about 50 s on 2 CPU cores with a cold cache.
DEFAULT_VIEW_TIMEOUT_MS = 240_000


def _risk_figures(figures: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Figures whose y axis title or figure title contains "risk"."""
    found = []
    for figure in figures:
        y_title = figure["axes"].get("yaxis", {}).get("title", "")
        if "risk" in y_title.lower() or "risk" in figure["title"].lower():
            found.append(figure)
    return found


def _assert_no_errors(app: Any) -> None:
    assert app.exception_texts() == []
    assert app.page_errors == []
    assert app.blocked_requests == []


def _assert_risk_chart(figure: dict[str, Any]) -> None:
    assert figure["axes"]["xaxis"]["type"] == "log", figure["title"]
    assert figure["axes"]["yaxis"]["type"] == "log", figure["title"]
    drawn = [trace for trace in figure["traces"] if trace["visible"] is not False]
    assert len(drawn) >= 2, [trace["name"] for trace in figure["traces"]]


def _has_finite_positive_value(trace: dict[str, Any]) -> bool:
    values = trace["y"] or []
    return any(
        isinstance(v, (int, float)) and math.isfinite(v) and v > 0 for v in values
    )


def _query(app: Any) -> dict[str, list[str]]:
    return urllib.parse.parse_qs(urllib.parse.urlsplit(app.page.url).query)


def _slider(app: Any, label: str) -> Any:
    """The range input of the sidebar slider with this label."""
    selector = f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]'
    return app.page.locator(selector)


def _slider_value(app: Any, label: str) -> float:
    return float(_slider(app, label).input_value())


def _fingerprint(figure: dict[str, Any]) -> str:
    """Trace names and data of a figure as one comparable string."""
    return json.dumps(
        [(t["name"], t["x"], t["y"], t["z"]) for t in figure["traces"]],
        sort_keys=True,
    )


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_charts(app_page, name):
    app_page.open(f"{PAGES[name]}?{SMALL_QUERY}")

    _assert_no_errors(app_page)
    figures = app_page.figures()
    assert len(figures) >= 1
    for figure in figures:
        assert figure["traces"], f"figure {figure['title']!r} has no traces"
    for figure in _risk_figures(figures):
        _assert_risk_chart(figure)
    app_page.screenshot(f"{name}-small")


def test_overview_has_risk_chart(app_page):
    app_page.open(f"/?{SMALL_QUERY}")

    risk_figures = _risk_figures(app_page.figures())
    assert len(risk_figures) >= 1
    _assert_risk_chart(risk_figures[0])
    drawn = [t for t in risk_figures[0]["traces"] if t["visible"] is not False]
    assert any(_has_finite_positive_value(t) for t in drawn)


@pytest.mark.slow
def test_default_view_renders(app_page):
    app_page.open("/", timeout_ms=DEFAULT_VIEW_TIMEOUT_MS)

    _assert_no_errors(app_page)
    query = _query(app_page)
    assert query.get("d") == [DEFAULT_D], app_page.page.url
    risk_figures = _risk_figures(app_page.figures())
    assert len(risk_figures) >= 1
    _assert_risk_chart(risk_figures[0])
    app_page.screenshot("overview-default")


@pytest.mark.parametrize("bad_value", ["-5", "abc"])
def test_invalid_link_value_warns(app_page, bad_value):
    app_page.open(f"/?d={bad_value}&alpha=1.5&r=4&width=4&steps=500&seeds=2")

    _assert_no_errors(app_page)
    alerts = app_page.alert_texts()
    assert any(f"d={bad_value}" in text for text in alerts), alerts
    query = _query(app_page)
    assert query.get("d") == [DEFAULT_D], app_page.page.url
    assert query.get("alpha") == ["1.5"], app_page.page.url
    assert _slider_value(app_page, ALPHA_SLIDER_LABEL) == pytest.approx(1.5)
    app_page.screenshot(f"overview-invalid-d{bad_value}")


def test_alpha_in_link_changes_risk_chart(app_page):
    app_page.open(f"/?{SMALL_QUERY}")
    default_risk = _risk_figures(app_page.figures())[0]
    app_page.open(f"/?{SMALL_QUERY}&alpha=1.5")
    changed_risk = _risk_figures(app_page.figures())[0]

    _assert_no_errors(app_page)
    assert FIELDS["alpha"].default != 1.5
    assert _slider_value(app_page, ALPHA_SLIDER_LABEL) == pytest.approx(1.5)
    assert _fingerprint(changed_risk) != _fingerprint(default_risk)


def test_alpha_slider_key_changes_risk_chart(app_page):
    app_page.open(f"/?{SMALL_QUERY}&alpha=1")
    before = _risk_figures(app_page.figures())[0]
    assert _slider_value(app_page, ALPHA_SLIDER_LABEL) == pytest.approx(1.0)

    # One ArrowRight moves the slider by its step, 0.05.
    _slider(app_page, ALPHA_SLIDER_LABEL).press("ArrowRight")
    # The app writes the value in use back to the link during the rerun.
    app_page.page.wait_for_function(
        "() => new URLSearchParams(location.search).get('alpha') === '1.05'"
    )
    app_page.wait_until_idle()
    after = _risk_figures(app_page.figures())[0]

    _assert_no_errors(app_page)
    assert _slider_value(app_page, ALPHA_SLIDER_LABEL) == pytest.approx(1.05)
    assert _fingerprint(after) != _fingerprint(before)
