"""The running app against hand-edited links, budgets and interruption.

A second Streamlit server is started with small run budgets
(QUADVIZ_AUTO_BUDGET_S, QUADVIZ_MAX_BUDGET_S), so that runs of a few seconds
already wait for the Run button and random links cannot start long runs.
The tests drive it in headless Chromium:

- bad link values are replaced and named, the rest of the link applies;
- repeated and unknown keys get a message;
- Markdown in a link value shows as text and loads nothing;
- FUZZ_URLS random query strings never produce an exception box;
- a run above the automatic budget waits for its button while the flow shows;
- moving a control during a long run stops it, and it is not cached.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from conftest import (
    APP_IDLE_SELECTOR,
    OUTPUT_DIR,
    PLOTLY_SELECTOR,
    ROOT,
    AppPage,
    _stop_process,
    _wait_for_health,
    loopback_app_page,
)

from quadviz.config import FIELDS
from tools.browser import free_port, streamlit_command

pytestmark = pytest.mark.browser

# Runs estimated above AUTO_BUDGET_S wait for a click, above MAX_BUDGET_S are
# rejected. The small view below is estimated well under AUTO_BUDGET_S.
AUTO_BUDGET_S = 2.0
MAX_BUDGET_S = 40.0
SMALL = {"d": "64", "r": "4", "width": "4", "steps": "500", "seeds": "2"}
# Estimated about 17 s and measured about 8 s on 2 quiet cores: above the
# automatic budget, below the hard limit.
LONG = {
    "d": "2048",
    "r": "4",
    "width": "4",
    "steps": "20000",
    "seeds": "2",
    "batch": "64",
    "method": "full",
}
FUZZ_URLS = 30
# Maximum wait for a fuzzed link's first chart or message.
SHOWN_TIMEOUT_MS = 30_000
FUZZ_SEED = 20241204
PAGES = ["/", "/sgd", "/riccati", "/recovery"]
SPECIAL_VALUES = [
    "",
    "-5",
    "0",
    "1e30",
    "1e400",
    "nan",
    "inf",
    "-inf",
    "abc",
    "2.5",
    "0x10",
    "%00",
    "x" * 3000,
    "![i](http://192.0.2.1/x.png)",
    ":red[x]",
    "$x^2$",
    "<b>x</b>",
    "1e-320",
    "-0",
    "9" * 60,
]
# A stopped run must give way to the new one within this time.
INTERRUPT_LIMIT_S = 10.0
ALERT_SELECTOR = '[data-testid="stAlert"]'


@pytest.fixture(scope="module")
def limited_url() -> Iterator[str]:
    """Start ``streamlit run app.py`` with small run budgets and the flags of
    a production deployment, on a free loopback port; stop it by its pid."""
    port = free_port()
    OUTPUT_DIR.mkdir(exist_ok=True)
    stderr_path = OUTPUT_DIR / "streamlit-limited-stderr.log"
    env = {
        **os.environ,
        "QUADVIZ_AUTO_BUDGET_S": str(AUTO_BUDGET_S),
        "QUADVIZ_MAX_BUDGET_S": str(MAX_BUDGET_S),
    }
    command = streamlit_command(port, "--server.enableXsrfProtection", "true")
    stdout_path = OUTPUT_DIR / "streamlit-limited-stdout.log"
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_for_health(process, f"{base_url}/_stcore/health", stderr_path)
        yield base_url
    finally:
        _stop_process(process)


@pytest.fixture
def app(chromium: Any, limited_url: str) -> Iterator[AppPage]:
    """A fresh browser context on the limited server; only loopback loads."""
    with loopback_app_page(chromium, limited_url) as page:
        yield page


def _query(params: dict[str, str] | list[tuple[str, str]]) -> str:
    return "?" + urllib.parse.urlencode(params)


def _slider(app: AppPage, label: str) -> Any:
    """The range input of the sidebar slider with this label."""
    selector = f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]'
    return app.page.locator(selector)


def _slider_value(app: AppPage, label: str) -> float:
    return float(_slider(app, label).input_value())


SIDEBAR_CAPTIONS = '[data-testid="stSidebar"] [data-testid="stCaptionContainer"]'


def _sgd_lines(app: AppPage) -> list[str]:
    """Sidebar lines that report a finished SGD run and its time."""
    texts = app.page.locator(SIDEBAR_CAPTIONS).all_inner_texts()
    return [text for text in texts if text.startswith("SGD")]


def test_bad_values_named_rest_applies(app):
    params = {
        **SMALL,
        "d": "-5",
        "alpha": "1.5",
        "lr": "abc",
        "beta": "nan",
        "seeds": "0",
        "steps": "1e30",
        "sigma0": "inf",
        "noise": "",
        "normalization": "x" * 3000,
    }
    app.open("/" + _query(params))
    alerts = "\n".join(app.alert_texts())
    assert "Ignored d=-5 from the link: allowed an integer in [2, 1e9]" in alerts
    assert "Ignored lr=abc" in alerts
    assert "Ignored beta=nan" in alerts
    assert "Ignored seeds=0" in alerts
    assert "Ignored steps=1e30" in alerts
    assert "Ignored sigma0=inf" in alerts
    assert "Ignored noise=(empty)" in alerts
    assert "Ignored normalization=" + "x" * 40 + "…" in alerts
    assert "x" * 41 not in alerts
    assert _slider_value(app, "spectrum exponent α") == pytest.approx(1.5)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(app.page.url).query)
    assert query["alpha"] == ["1.5"]
    assert query["d"] == [str(FIELDS["d"].default)]
    assert app.exception_texts() == []


def test_repeated_and_unknown_keys_named(app):
    params = [*SMALL.items(), ("alpha", "0.5"), ("alpha", "2"), ("colour", "red")]
    app.open("/" + _query(params))
    alerts = "\n".join(app.alert_texts())
    assert "The link gives alpha 2 times (0.5, 2); using the last value, 2" in alerts
    assert "Ignored unknown link parameter colour" in alerts
    assert _slider_value(app, "spectrum exponent α") == pytest.approx(2.0)
    assert app.exception_texts() == []


def test_markdown_in_link_shows_as_text(app):
    params = {**SMALL, "normalization": "![i](http://192.0.2.1/x.png) :red[x]"}
    app.open("/" + _query(params))
    alerts = "\n".join(app.alert_texts())
    assert "![i](http://192.0.2.1/x.png) :red[x]"[:40] in alerts
    assert app.page.locator(f"{ALERT_SELECTOR} img").count() == 0
    assert app.blocked_requests == []


def _fuzz_urls(count: int, seed: int) -> list[str]:
    """Random paths and query strings: bad values, repeated, unknown and
    truncated keys, on top of the small view (most of the time)."""
    rng = random.Random(seed)
    names = list(FIELDS)
    urls = []
    for _ in range(count):
        params = list(SMALL.items()) if rng.random() < 0.8 else []
        for _ in range(rng.randint(1, 5)):
            roll = rng.random()
            if roll < 0.6:
                key = rng.choice(names)
            elif roll < 0.8:
                key = rng.choice(["foo", "d ", "D", "width[]", "x" * 200, "é"])
            else:
                key = rng.choice(names)[: rng.randint(0, 3)]
            value = rng.choice(
                SPECIAL_VALUES + [str(rng.uniform(-10, 10)), str(rng.randint(0, 10**6))]
            )
            params.append((key, value))
        url = rng.choice(PAGES) + _query(params)
        if rng.random() < 0.2:
            url = url[: rng.randint(1, len(url))]  # a truncated link
        urls.append(url if url.startswith("/") else "/")
    return urls


@pytest.mark.slow
def test_random_links_never_raise(app):
    failures = []
    for i, url in enumerate(_fuzz_urls(FUZZ_URLS, FUZZ_SEED)):
        app.page.goto(app.base_url + url, wait_until="domcontentloaded")
        app.wait_until_idle(min_charts=0)
        exceptions = app.exception_texts()
        if exceptions:
            failures.append((i, url[:300], exceptions[0][:300]))
        # The page can look idle before its first script run has begun,
        # so a chart or a message gets time to appear.
        try:
            app.page.wait_for_selector(f"{PLOTLY_SELECTOR}, {ALERT_SELECTOR}",
                                       state="attached", timeout=SHOWN_TIMEOUT_MS)
        except PlaywrightTimeoutError:
            failures.append((i, url[:300], "neither a chart nor a message"))
    assert failures == []
    assert app.page_errors == []
    assert app.blocked_requests == []


@pytest.mark.slow
def test_long_run_waits_for_button(app):
    app.open("/" + _query(LONG))
    alerts = "\n".join(app.alert_texts())
    assert "Online SGD waits for the button" in alerts
    button = app.page.get_by_role("button", name=re.compile("^Run online SGD"))
    assert button.count() == 1
    assert _sgd_lines(app) == []
    names = [t["name"] for f in app.figures() for t in f["traces"]]
    assert any("flow" in name for name in names), names
    button.click()
    app.page.wait_for_function(
        """(selector) => Array.from(document.querySelectorAll(selector))
             .some((e) => e.innerText.startsWith("SGD"))""",
        arg=SIDEBAR_CAPTIONS,
        timeout=120_000,
    )
    app.wait_until_idle(min_charts=1, timeout_ms=120_000)
    assert "waits for the button" not in "\n".join(app.alert_texts())
    assert app.exception_texts() == []


@pytest.mark.slow
def test_moving_control_stops_long_run(app):
    # a seed that no other test uses, so the run cannot come from the cache
    params = {**LONG, "seed": "777"}
    app.open("/" + _query(params))
    app.page.get_by_role("button", name=re.compile("^Run online SGD")).click()
    app.page.wait_for_selector('[data-testid="stProgress"]', timeout=60_000)
    time.sleep(1.0)
    # a new value of alpha: its run waits for the button, so it is quick
    slider = _slider(app, "spectrum exponent α")
    slider.focus()
    moved = time.monotonic()
    slider.press("ArrowRight")
    app.page.wait_for_function(
        """() => Array.from(document.querySelectorAll('[data-testid="stAlert"]'))
             .some((e) => e.innerText.includes("waits for the button"))
             && !document.querySelector('[data-testid="stProgress"]')""",
        timeout=INTERRUPT_LIMIT_S * 1000,
    )
    assert time.monotonic() - moved < INTERRUPT_LIMIT_S
    app.page.wait_for_selector(APP_IDLE_SELECTOR, state="attached")
    # Back to the stopped configuration, which stays approved: its run must
    # compute again, because an interrupted cached call stores nothing.
    slider.press("ArrowLeft")
    app.page.wait_for_selector('[data-testid="stProgress"]', timeout=30_000)
    app.wait_until_idle(min_charts=1, timeout_ms=180_000)
    sgd_lines = _sgd_lines(app)
    assert len(sgd_lines) == 1
    assert "from cache" not in sgd_lines[0]
    assert app.exception_texts() == []
