"""Bounded load test of the app: simultaneous browser sessions on loopback.

    python -m tools.loadtest --sessions 8 --minutes 3

Starts ``streamlit run app.py`` with the production flags on a free
loopback port (or uses --url, which must be a loopback address, with --pid
for its memory), opens ``--sessions`` Chromium contexts through Playwright
and lets each one, until the time is up, repeat random actions: open a link
with a small random configuration on one of the four main pages, move the α
slider, or switch page. After each action it measures the time until the
script has rerun and every chart is drawn (time to figure), and checks for
an exception box. A sampler reads the server's resident memory from /proc
every half second.

Prints one JSON summary (also written to --out) and exits with 1 when a
session failed an action, an exception box appeared, or the server's peak
resident memory passed --rss-limit-mb. Everything stops by itself: each
action has a timeout, and the server is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from google.protobuf.message import DecodeError
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

from tools.browser import CHROMIUM_ARGS, CHROMIUM_PATH, free_port, streamlit_command

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"overview": "/", "sgd": "/sgd", "riccati": "/riccati", "recovery": "/recovery"}
NAV_TITLES = {
    "overview": "Overview",
    "sgd": "SGD dynamics",
    "riccati": "Riccati flow",
    "recovery": "Signal recovery",
}
ALPHA_LABEL = "spectrum exponent α"
# Small configurations, drawn at random; several sessions often draw the same
# one, as students opening one shared link do.
CHOICES = {
    "d": ["32", "64", "128", "256"],
    "r": ["2", "4", "8"],
    "width": ["2", "4", "8"],
    "steps": ["200", "500", "1000"],
    "alpha": ["0.5", "1", "1.5", "2"],
    "seeds": ["1", "2"],
}
ACTION_TIMEOUT_MS = 120_000
SERVER_START_TIMEOUT_S = 90.0
RSS_SAMPLE_SECONDS = 0.5

# True once the script is idle and every chart is drawn.
CHARTS_DRAWN_JS = """
() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app || app.getAttribute("data-test-script-state") !== "notRunning") {
    return false;
  }
  const charts = Array.from(document.querySelectorAll(".js-plotly-plot"));
  return charts.length > 0 && charts.every((gd) => gd._fullLayout);
}
"""
POLL_SECONDS = 0.05


def _health(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url + "/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def start_server(log_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    """Start the app with the production flags; return the process and URL."""
    port = free_port()
    command = streamlit_command(port, "--server.enableXsrfProtection", "true")
    log_dir.mkdir(parents=True, exist_ok=True)
    with (
        open(log_dir / "loadtest-server-stdout.log", "wb") as stdout,
        open(log_dir / "loadtest-server-stderr.log", "wb") as stderr,
    ):
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=stdout, stderr=stderr, env={**os.environ, **env}
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if _health(url):
            return process, url
        time.sleep(0.5)
    stop_server(process)
    raise SystemExit(f"loadtest: the server did not answer on {url}; see {log_dir}")


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _rss_bytes(pid: int) -> int:
    """Resident memory of one process from /proc, 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return 0
    return 0


class RssSampler(threading.Thread):
    """Samples a process's resident memory until stopped; keeps the peak."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.samples: list[tuple[float, int]] = []
        self._stop_event = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._stop_event.wait(RSS_SAMPLE_SECONDS):
            rss = _rss_bytes(self.pid)
            self.peak = max(self.peak, rss)
            self.samples.append((time.monotonic() - start, rss))

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


def _random_query(rng: random.Random) -> str:
    params = {name: rng.choice(values) for name, values in CHOICES.items()}
    return "?" + urllib.parse.urlencode(params)


class Session:
    """One browser context repeating random actions until the deadline."""

    def __init__(self, index: int, context, base_url: str, seed: int):
        self.index = index
        self.context = context
        self.base_url = base_url
        self.rng = random.Random(seed)
        self.times: list[tuple[str, float]] = []
        self.failures: list[str] = []
        self.exceptions = 0
        self.page_name = "overview"
        self.finished_runs = 0

    def _on_websocket(self, websocket) -> None:
        websocket.on("framereceived", self._on_frame)

    def _on_frame(self, payload) -> None:
        """Count script runs that the server reports as finished successfully.

        The server sends one ForwardMsg protobuf per binary frame; a run that
        is stopped for a rerun ends with another status and is not counted.
        """
        if not isinstance(payload, bytes):
            return
        try:
            message = ForwardMsg.FromString(payload)
        except DecodeError:
            return
        if (
            message.WhichOneof("type") == "script_finished"
            and message.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY
        ):
            self.finished_runs += 1

    async def _wait_done(self, page, finished_before: int) -> None:
        """Wait for a run finished after the action, then for drawn charts."""
        deadline = time.monotonic() + ACTION_TIMEOUT_MS / 1000
        while self.finished_runs <= finished_before:
            if time.monotonic() > deadline:
                raise TimeoutError("no script run finished after the action")
            await asyncio.sleep(POLL_SECONDS)
        remaining_ms = max(1000.0, (deadline - time.monotonic()) * 1000)
        await page.wait_for_function(CHARTS_DRAWN_JS, timeout=remaining_ms)

    async def _act(self, page, action: str) -> None:
        finished_before = self.finished_runs
        start = time.monotonic()
        if action == "open":
            self.page_name = self.rng.choice(list(PAGES))
            url = self.base_url + PAGES[self.page_name] + _random_query(self.rng)
            await page.goto(url, wait_until="domcontentloaded")
        elif action == "slider":
            slider = page.locator(
                '[data-testid="stSlider"] input[type="range"]'
                f'[aria-label="{ALPHA_LABEL}"]'
            )
            await slider.focus()
            await slider.press(self.rng.choice(["ArrowRight", "ArrowLeft"]))
        else:
            others = [name for name in PAGES if name != self.page_name]
            self.page_name = self.rng.choice(others)
            link = page.locator('[data-testid="stSidebarNav"] a').filter(
                has_text=NAV_TITLES[self.page_name]
            )
            await link.first.click()
        await self._wait_done(page, finished_before)
        self.times.append((action, time.monotonic() - start))
        await self._record_exceptions(page, action)

    async def _record_exceptions(self, page, action: str) -> None:
        """Count exception boxes on the page and keep the first one's text."""
        boxes = page.locator('[data-testid="stException"]')
        count = await boxes.count()
        if count:
            self.exceptions += count
            text = await boxes.first.inner_text()
            self.failures.append(f"exception box after {action}: {text[:300]}")

    async def run(self, deadline: float) -> None:
        page = await self.context.new_page()
        page.on("websocket", self._on_websocket)
        action = "open"
        while time.monotonic() < deadline:
            try:
                await self._act(page, action)
            except Exception as err:  # noqa: BLE001 - a failed action is a result
                self.failures.append(
                    f"{action} on {page.url} failed: {type(err).__name__}: {err}"[:400]
                )
                await self._record_exceptions(page, action)
                action = "open"
                continue
            action = self.rng.choices(["open", "slider", "page"], [1, 2, 2])[0]


def _is_remote(url: str) -> bool:
    """True for any address but loopback; such requests are aborted."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme in ("data", "blob", "about"):
        return False
    return parsed.hostname not in ("127.0.0.1", "localhost")


async def _abort(route) -> None:
    await route.abort()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _drive(base_url: str, sessions: int, seconds: float, seed: int) -> list:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS, headless=True
        )
        try:
            contexts = [
                await browser.new_context(viewport={"width": 1280, "height": 900})
                for _ in range(sessions)
            ]
            for context in contexts:
                context.set_default_timeout(ACTION_TIMEOUT_MS)
                await context.route(_is_remote, _abort)
            runners = [
                Session(i, context, base_url, seed + i)
                for i, context in enumerate(contexts)
            ]
            deadline = time.monotonic() + seconds
            await asyncio.gather(*(runner.run(deadline) for runner in runners))
            return runners
        finally:
            await browser.close()


def summarize(runners: list[Session], peak_rss: int, args, wall: float) -> dict:
    times = [seconds for runner in runners for _, seconds in runner.times]
    by_action: dict[str, list[float]] = {}
    for runner in runners:
        for action, seconds in runner.times:
            by_action.setdefault(action, []).append(seconds)
    return {
        "sessions": args.sessions,
        "minutes": args.minutes,
        "wall_seconds": round(wall, 1),
        "actions": len(times),
        "sessions_with_figures": sum(1 for runner in runners if runner.times),
        "failures": [f for runner in runners for f in runner.failures],
        "exception_boxes": sum(runner.exceptions for runner in runners),
        "time_to_figure_s": {
            "p50": round(_percentile(times, 50), 2),
            "p90": round(_percentile(times, 90), 2),
            "p99": round(_percentile(times, 99), 2),
            "max": round(max(times), 2) if times else None,
            "mean": round(statistics.fmean(times), 2) if times else None,
        },
        "time_to_figure_p50_by_action_s": {
            action: round(_percentile(values, 50), 2)
            for action, values in sorted(by_action.items())
        },
        "peak_rss_mb": round(peak_rss / 1e6, 1),
        "rss_limit_mb": args.rss_limit_mb,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="browser sessions")
    parser.add_argument("--minutes", type=float, default=3.0, help="test duration")
    parser.add_argument(
        "--rss-limit-mb", type=float, default=1500.0,
        help="largest allowed resident memory of the server, in MB",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--url", help="test a running server at this loopback URL instead"
    )
    parser.add_argument("--pid", type=int, help="pid of that server, for memory")
    parser.add_argument(
        "--out", default=str(ROOT / "test-output" / "loadtest.json"),
        help="JSON summary file",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 32 or not 0 < args.minutes <= 30:
        parser.error("expected 1 to 32 sessions and at most 30 minutes")
    if args.url and urllib.parse.urlsplit(args.url).hostname not in (
        "127.0.0.1",
        "localhost",
    ):
        parser.error("--url must be a loopback address (127.0.0.1 or localhost)")
    process = None
    if args.url:
        base_url, pid = args.url.rstrip("/"), args.pid
    else:
        process, base_url = start_server(Path(args.out).parent, {})
        pid = process.pid
    sampler = RssSampler(pid) if pid else None
    if sampler:
        sampler.start()
    start = time.monotonic()
    try:
        runners = asyncio.run(
            _drive(base_url, args.sessions, args.minutes * 60, args.seed)
        )
    finally:
        if sampler:
            sampler.stop()
        if process is not None:
            stop_server(process)
    summary = summarize(
        runners, sampler.peak if sampler else 0, args, time.monotonic() - start
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    failed = (
        summary["failures"]
        or summary["sessions_with_figures"] < args.sessions
        or (sampler is not None and summary["peak_rss_mb"] > args.rss_limit_mb)
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
