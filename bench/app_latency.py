"""Time from a slider release to redrawn figures, measured in Chromium.

    python -m bench.app_latency [--repeats 3]

Starts ``streamlit run app.py`` on a free loopback port, opens the Overview
page in Debian's chromium through Playwright, then moves the alpha slider one
step with the keyboard and waits until the script has finished and the risk
chart's data changed. A value not seen before is a cold (uncached) run; moving
back to a value already shown is a warm (cached) one. Also prints the
server's peak resident memory (VmHWM) at the end. The server is stopped by its
process id.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

from tools.browser import CHROMIUM_ARGS, CHROMIUM_PATH, free_port, streamlit_command

ROOT = Path(__file__).resolve().parents[1]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def wait_healthy(url: str, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as resp:
                if resp.read().decode() == "ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not become healthy within 60 s")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def chart_signature(page) -> str:
    return page.evaluate(
        "() => { const g = document.querySelector('.js-plotly-plot');"
        " return g && g.data ? JSON.stringify(g.data.map(t => t.y).slice(0, 3)) : '' }"
    )


def timed_change(page, key: str) -> float:
    """Press ``key`` on the alpha slider; seconds until the chart changed."""
    before = chart_signature(page)
    slider = page.locator(
        '[data-testid="stSlider"] input[type="range"][aria-label="spectrum exponent α"]'
    )
    slider.focus()
    start = time.perf_counter()
    slider.press(key)
    page.wait_for_function(
        "(before) => { const g = document.querySelector('.js-plotly-plot');"
        " const app = document.querySelector('[data-testid=stApp]');"
        " return g && g.data && app.dataset.testScriptState === 'notRunning'"
        " && JSON.stringify(g.data.map(t => t.y).slice(0, 3)) !== before }",
        arg=before,
        timeout=120_000,
    )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.app_latency")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        streamlit_command(port), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(url)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=str(CHROMIUM_PATH), args=CHROMIUM_ARGS
            )
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            start = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_selector(".js-plotly-plot", timeout=120_000)
            page.wait_for_selector(IDLE, timeout=120_000)
            first = time.perf_counter() - start
            cold, warm = [], []
            for _ in range(args.repeats):
                cold.append(timed_change(page, "ArrowRight"))
                warm.append(timed_change(page, "ArrowLeft"))
                # the value to the right is now cached; move twice to reach a new one
                timed_change(page, "ArrowRight")
                cold.append(timed_change(page, "ArrowRight"))
                warm.append(timed_change(page, "ArrowLeft"))
            browser.close()
        print(f"first figure after page load: {first:.2f} s (cache empty)")
        print(f"slider release to figure, cold: median {statistics.median(cold):.2f} s,"
              f" max {max(cold):.2f} s over {len(cold)}")
        print(f"slider release to figure, warm: median {statistics.median(warm):.2f} s,"
              f" max {max(warm):.2f} s over {len(warm)}")
        print(f"server peak resident memory: {peak_rss_mib(server.pid):.0f} MiB")
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
