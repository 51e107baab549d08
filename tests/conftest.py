"""Shared fixtures: the CUDA skip for ``gpu`` tests, and a Streamlit server
with a headless Chromium page for the ``browser`` tests.

The browser tests start ``streamlit run app.py`` on a free loopback port and
drive Debian's Chromium (``/usr/bin/chromium``) through Playwright. Chromium
may reach only 127.0.0.1: other host names do not resolve, and requests to
any other address are aborted.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.browser import CHROMIUM_ARGS, CHROMIUM_PATH, free_port, streamlit_command

ROOT = Path(__file__).resolve().parents[1]
OUTPUT_DIR = ROOT / "test-output"
SCREENSHOT_DIR = OUTPUT_DIR / "screenshots"

SERVER_START_TIMEOUT_S = 60.0
SERVER_STOP_TIMEOUT_S = 10.0
# Limit for one page load or script run, with the small settings most browser
# tests use. The default settings take longer and pass their own limit.
PAGE_TIMEOUT_MS = 60_000
VIEWPORT = {"width": 1280, "height": 900}
# Cap on the screenshot height, so that a runaway layout cannot make a huge
# image.
MAX_SCREENSHOT_HEIGHT = 12_000

APP_IDLE_SELECTOR = '[data-testid="stApp"][data-test-script-state="notRunning"]'
PLOTLY_SELECTOR = ".js-plotly-plot"
EXCEPTION_SELECTOR = '[data-testid="stException"]'


@pytest.fixture(autouse=True)
def _skip_gpu_without_cuda(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("gpu") is None:
        return
    import torch

    if not torch.cuda.is_available():
        pytest.skip("gpu test: torch.cuda.is_available() is False")


def _skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it under CI, where a missing browser is an error."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def _read_health(url: str) -> str | None:
    """Return the body of the health endpoint, or None while it is not up."""
    # An empty ProxyHandler keeps urllib from sending loopback requests to a
    # proxy named in the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.read().decode("utf-8", "replace").strip()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=SERVER_STOP_TIMEOUT_S)


def _wait_for_health(process: subprocess.Popen, url: str, stderr_path: Path) -> None:
    """Poll the health endpoint until it returns "ok".

    Fails the test with the server's stderr if the server exits or the
    timeout passes first.
    """
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        if _read_health(url) == "ok":
            return
        time.sleep(0.5)
    if process.poll() is None:
        problem = f"did not answer 'ok' on {url} within {SERVER_START_TIMEOUT_S:g} s"
    else:
        problem = f"exited with code {process.returncode} before answering {url}"
    stderr_text = stderr_path.read_text(errors="replace")[-4000:]
    pytest.fail(f"Streamlit server {problem}. Its stderr:\n{stderr_text}")


@pytest.fixture(scope="session")
def streamlit_url() -> Iterator[str]:
    """Start ``streamlit run app.py`` on a free loopback port and yield its
    base URL. The server is stopped by its pid when the session ends."""
    port = free_port()
    OUTPUT_DIR.mkdir(exist_ok=True)
    stdout_path = OUTPUT_DIR / "streamlit-stdout.log"
    stderr_path = OUTPUT_DIR / "streamlit-stderr.log"
    command = streamlit_command(port)
    with open(stdout_path, "wb") as stdout, open(stderr_path, "wb") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=stderr)
    try:
        base_url = f"http://127.0.0.1:{port}"
        _wait_for_health(process, f"{base_url}/_stcore/health", stderr_path)
        yield base_url
    finally:
        _stop_process(process)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Launch Debian's Chromium through Playwright for the whole session."""
    if not CHROMIUM_PATH.exists():
        _skip_or_fail(
            f"{CHROMIUM_PATH} not found; install Debian's chromium package "
            "(apt-get install -y chromium) to run the browser tests"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail(
            "playwright is not installed (pip install -r requirements-test.txt)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


def _is_loopback(url: str) -> bool:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("data", "blob", "about"):
        return True
    return parsed.hostname in ("127.0.0.1", "localhost")


# Summarises each Plotly graph div. Traces come from _fullData, where plotly.js
# has already decoded base64 arrays. Typed arrays are copied into plain arrays
# so that they survive the trip to Python.
_READ_FIGURES_JS = """
(selector) => {
  const plain = (value) =>
    value == null ? null : ArrayBuffer.isView(value) ? Array.from(value)
      : Array.isArray(value) ? value.map(plain) : value;
  // Titles come from the figure's own layout, because plotly.js fills empty
  // axis titles in _fullLayout with placeholder text. Tags such as <b> are
  // dropped.
  const titleText = (title) => {
    const text = title == null ? "" : typeof title === "string" ? title
      : title.text || "";
    return text.replace(/<[^>]*>/g, "");
  };
  return Array.from(document.querySelectorAll(selector)).map((gd) => {
    const full = gd._fullLayout || {};
    const own = gd.layout || {};
    const axes = {};
    for (const key of Object.keys(full)) {
      if (/^[xy]axis[0-9]*$/.test(key)) {
        axes[key] = {type: full[key].type, title: titleText(own[key]?.title)};
      }
    }
    const traces = (gd._fullData || []).map((trace) => ({
      name: trace.name ?? "",
      type: trace.type,
      mode: trace.mode ?? null,
      visible: trace.visible,
      x: plain(trace.x),
      y: plain(trace.y),
      z: plain(trace.z),
    }));
    return {title: titleText(own.title), axes: axes, traces: traces};
  });
}
"""

_PAGE_HEIGHT_JS = """
() => Math.max(
  document.documentElement.scrollHeight,
  ...Array.from(
    document.querySelectorAll(
      '[data-testid="stMain"], [data-testid="stAppViewContainer"], ' +
      '[data-testid="stSidebarContent"]'
    ),
    (element) => element.scrollHeight,
  ),
)
"""


class AppPage:
    """A Playwright page on the test server, with helpers that wait for the
    Streamlit script and read the Plotly figures."""

    def __init__(self, page: Any, base_url: str):
        self.page = page
        self.base_url = base_url
        self.page_errors: list[str] = []
        self.blocked_requests: list[str] = []
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def open(
        self, path: str, min_charts: int = 1, timeout_ms: float = PAGE_TIMEOUT_MS
    ) -> None:
        """Load ``base_url + path`` and wait until the script has finished and
        at least ``min_charts`` Plotly charts have been drawn."""
        self.page.goto(
            self.base_url + path, wait_until="domcontentloaded", timeout=timeout_ms
        )
        self.wait_until_idle(min_charts, timeout_ms)

    def wait_until_idle(
        self, min_charts: int = 1, timeout_ms: float = PAGE_TIMEOUT_MS
    ) -> None:
        """Wait for the script run to finish and the charts to be drawn.

        The idle state is checked again after a short pause, in case a
        rerun starts right after the first run ends.
        """
        self.page.wait_for_selector(
            APP_IDLE_SELECTOR, state="attached", timeout=timeout_ms
        )
        self.page.wait_for_timeout(300)
        self.page.wait_for_selector(
            APP_IDLE_SELECTOR, state="attached", timeout=timeout_ms
        )
        if min_charts > 0:
            self.page.wait_for_function(
                """([selector, count]) => {
                  const charts = document.querySelectorAll(selector);
                  return charts.length >= count &&
                    Array.from(charts).every((gd) => gd._fullLayout);
                }""",
                arg=[PLOTLY_SELECTOR, min_charts],
                timeout=timeout_ms,
            )

    def exception_texts(self) -> list[str]:
        return self.page.locator(EXCEPTION_SELECTOR).all_inner_texts()

    def alert_texts(self) -> list[str]:
        return self.page.locator('[data-testid="stAlert"]').all_inner_texts()

    def figures(self) -> list[dict[str, Any]]:
        """Return title, axis types and traces (name, type, x, y, z) of every
        Plotly chart on the page, in document order."""
        return self.page.evaluate(_READ_FIGURES_JS, PLOTLY_SELECTOR)

    def screenshot(self, name: str) -> Path:
        """Save a screenshot of the whole app under test-output/screenshots/.

        Streamlit scrolls inside its main container and its sidebar, so a
        full-page shot alone shows only the first screen. The viewport is
        made as tall as the longer of the two (up to MAX_SCREENSHOT_HEIGHT)
        for the shot.
        """
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{name}.png"
        height = min(int(self.page.evaluate(_PAGE_HEIGHT_JS)), MAX_SCREENSHOT_HEIGHT)
        self.page.set_viewport_size(
            {"width": VIEWPORT["width"], "height": max(height, VIEWPORT["height"])}
        )
        # Plotly redraws responsive charts after a resize.
        self.page.wait_for_timeout(500)
        self.page.screenshot(path=str(path), full_page=True)
        self.page.set_viewport_size(VIEWPORT)
        return path


@pytest.fixture
def app_page(chromium: Any, streamlit_url: str) -> Iterator[AppPage]:
    """A fresh browser context and page on the test server."""
    with loopback_app_page(chromium, streamlit_url) as app:
        yield app


@contextmanager
def loopback_app_page(chromium: Any, base_url: str) -> Iterator[AppPage]:
    """A fresh browser context and page on ``base_url``. Requests to any
    address but loopback are aborted and recorded in ``blocked_requests``."""
    context = chromium.new_context(viewport=VIEWPORT)
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    app = AppPage(context.new_page(), base_url)

    def abort_remote(route: Any) -> None:
        app.blocked_requests.append(route.request.url)
        route.abort()

    context.route(lambda url: not _is_loopback(url), abort_remote)
    try:
        yield app
    finally:
        context.close()
