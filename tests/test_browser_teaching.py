"""Browser tests of the teaching features: lecture mode, pinned runs, the
training replay, share links and downloads, in headless Chromium.

They reuse the server and browser fixtures of conftest.py. Screenshots go to
test-output/screenshots/ for people to look at.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest

from quadviz import export, scenarios
from quadviz.config import Config

pytestmark = pytest.mark.browser

# d=64, r=4, width 4, t = 6, 2 seeds: SGD and flow take a second or two.
SMALL_QUERY = "d=64&r=4&width=4&lr=0.02&steps=300&seeds=2"
ALPHA_SLIDER = (
    '[data-testid="stSlider"] input[type="range"][aria-label="spectrum exponent α"]'
)
# Lecture mode makes markdown text at least this large (CSS pixels).
LECTURE_MIN_FONT_PX = 20

# Traces of the first chart whose title contains ``title``, with line dash.
_TRACES_JS = """
(title) => {
  const gd = Array.from(document.querySelectorAll('.js-plotly-plot')).find(
    (g) => ((g.layout.title || {}).text || '').includes(title));
  if (!gd) return null;
  return gd._fullData.map((t) => ({name: t.name, dash: t.line ? t.line.dash : null}));
}
"""

# State of the replay figure: slider position, cursor time, bar heights.
_REPLAY_JS = """
() => {
  const gd = document.querySelector('.js-plotly-plot');
  const cursor = gd._fullData.find((t) => t.name === 'current time');
  const bars = gd._fullData.find((t) => t.type === 'bar');
  return {
    active: gd._fullLayout.sliders[0].active,
    steps: gd._fullLayout.sliders[0].steps.length,
    t: Array.from(cursor.x)[0],
    bars: Array.from(bars.y),
  };
}
"""


def _query(app: Any) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(app.page.url).query))


def _assert_clean(app: Any) -> None:
    assert app.exception_texts() == []
    assert app.page_errors == []
    assert app.blocked_requests == []


def _wait_for_param(app: Any, name: str, value: str) -> None:
    app.page.wait_for_function(
        "([name, value]) => new URLSearchParams(location.search).get(name) === value",
        arg=[name, value],
    )
    app.wait_until_idle()


# ---------------------------------------------------------------- lecture


def test_lecture_mode_layout(app_page):
    app_page.open("/?lecture=1&scenario=one-at-a-time")

    _assert_clean(app_page)
    page = app_page.page
    expander = page.locator('[data-testid="stSidebar"] [data-testid="stExpander"]')
    assert expander.first.is_hidden()
    font = page.evaluate(
        "() => parseFloat(getComputedStyle(document.querySelector("
        "'[data-testid=\"stMain\"] .stMarkdown p')).fontSize)"
    )
    assert font >= LECTURE_MIN_FONT_PX
    height = page.evaluate(
        "() => document.querySelector('.js-plotly-plot')._fullLayout.height"
    )
    assert height >= 600
    assert page.get_by_role("button", name="Next (N)").count() == 1
    app_page.screenshot("lecture-one-at-a-time")


def test_lecture_key_steps_scenario(app_page):
    app_page.open("/?lecture=1&scenario=one-at-a-time")
    names = list(scenarios.SCENARIOS)
    following = names[names.index("one-at-a-time") + 1]

    app_page.page.locator("body").press("n")
    _wait_for_param(app_page, "scenario", following)

    _assert_clean(app_page)
    assert _query(app_page)["lecture"] == "1"
    config = scenarios.get(following).config()
    assert _query(app_page)["width"] == str(config.width)


# ---------------------------------------------------------------- pinning


def test_pin_then_change_overlays_dashed(app_page):
    app_page.open(f"/?{SMALL_QUERY}&alpha=1")
    app_page.page.get_by_role("button", name="Pin this run").click()
    app_page.wait_until_idle()
    pinned_same = app_page.page.evaluate(_TRACES_JS, "Population risk")

    app_page.page.locator(ALPHA_SLIDER).press("ArrowRight")
    _wait_for_param(app_page, "alpha", "1.05")
    traces = app_page.page.evaluate(_TRACES_JS, "Population risk")

    _assert_clean(app_page)
    assert any(t["name"] == "pinned 1: same settings (SGD mean)" for t in pinned_same)
    pinned = [t for t in traces if t["name"].startswith("pinned 1")]
    assert [t["name"] for t in pinned] == ["pinned 1: α = 1 (SGD mean)"]
    assert pinned[0]["dash"] == "dash"
    app_page.screenshot("overview-pinned")


# ---------------------------------------------------------------- replay


def test_replay_play_pause_and_scrub(app_page):
    app_page.open(f"/replay?{SMALL_QUERY}")
    page = app_page.page
    before = page.evaluate(_REPLAY_JS)

    page.locator(".updatemenu-button").filter(has_text="Play").click()
    page.wait_for_timeout(2500)
    page.locator(".updatemenu-button").filter(has_text="Pause").click()
    page.wait_for_timeout(500)
    paused = page.evaluate(_REPLAY_JS)
    page.wait_for_timeout(1000)
    still = page.evaluate(_REPLAY_JS)
    app_page.screenshot("replay-paused")

    # A click on the right end of the slider rail jumps to the last frame.
    # Mouse events reach only what is inside the viewport.
    rail = page.locator(".slider-rail-touch-rect")
    rail.scroll_into_view_if_needed()
    box = rail.bounding_box()
    page.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    page.wait_for_timeout(800)
    scrubbed = page.evaluate(_REPLAY_JS)

    assert app_page.exception_texts() == []
    assert app_page.blocked_requests == []
    # plotly.js 4.1.1 rejects the promise of an interrupted animation without
    # a reason, so Pause and slider clicks show up as an uncaught "undefined".
    # A standalone Plotly page does the same.
    assert set(app_page.page_errors) <= {"undefined"}, app_page.page_errors
    assert before["active"] == 0
    assert paused["active"] > 0
    assert paused["t"] > before["t"]
    assert paused["bars"] != before["bars"]
    assert still["active"] == paused["active"]
    assert scrubbed["active"] == scrubbed["steps"] - 1


# ---------------------------------------------------------------- sharing


def _figure_data(app: Any) -> str:
    traces = [t for figure in app.figures() for t in figure["traces"]]
    return json.dumps([[t["name"], t["x"], t["y"], t["z"]] for t in traces])


def test_share_link_reproduces_figures(app_page, chromium):
    app_page.open(f"/?{SMALL_QUERY}&seed=7&alpha=1.25")
    link = app_page.page.locator(
        '[data-testid="stSidebar"] [data-testid="stCode"] code'
    ).inner_text()
    first = _figure_data(app_page)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        other = type(app_page)(context.new_page(), app_page.base_url)
        other.page.goto(link, wait_until="domcontentloaded")
        other.wait_until_idle()
        second = _figure_data(other)
        assert other.exception_texts() == []
    finally:
        context.close()

    assert link.startswith(app_page.base_url)
    assert "seed=7" in link
    assert second == first


def test_download_csv_from_popover(app_page):
    app_page.open(f"/?{SMALL_QUERY}")
    page = app_page.page
    # The chart's mode bar also has a button named "Download plot"; the
    # popover is found by its test id instead.
    page.locator('[data-testid="stPopover"]').first.locator("button").first.click()
    body = page.locator('[data-testid="stPopoverBody"]')
    with page.expect_download() as download_info:
        body.get_by_role("button", name="Data as CSV").click()
    with open(download_info.value.path(), encoding="utf-8") as handle:
        header = handle.readline().strip()

    _assert_clean(app_page)
    assert header == "figure,trace,x,y,z"
    assert download_info.value.suggested_filename == "quadviz-overview_risk.csv"


def test_theory_page_renders(app_page):
    app_page.open("/theory", min_charts=0)

    _assert_clean(app_page)
    text = app_page.page.locator('[data-testid="stMain"]').inner_text()
    assert "References" in text
    assert "conjecture" in text
    app_page.screenshot("theory")


def test_download_config_json(app_page):
    app_page.open(f"/?{SMALL_QUERY}&seed=11")
    page = app_page.page
    sidebar = page.locator('[data-testid="stSidebar"]')
    with page.expect_download() as download_info:
        sidebar.get_by_role("button", name="Configuration as JSON").click()
    values = export.load_config(download_info.value.path())

    _assert_clean(app_page)
    config = Config.create(**values)
    assert config.seed == 11
    assert config.d == 64
    assert config.lr == 0.02
