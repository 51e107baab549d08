"""Chromium, loopback-port and Streamlit-server settings shared by the
browser tests, the load test and the latency benchmark."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

CHROMIUM_PATH = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps trying to reach
# Google's servers, which a closed network refuses. The resolver rule makes
# every host name but 127.0.0.1 fail to resolve.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free at the time of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def streamlit_command(port: int, *options: str) -> list[str]:
    """Build the command that serves app.py headless on 127.0.0.1:``port``.

    Usage statistics are off, because the browser would send them to a
    remote host. ``options`` are further Streamlit flags and values.
    """
    return [
        sys.executable, "-m", "streamlit", "run", "app.py",
        "--server.headless", "true",
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--browser.gatherUsageStats", "false",
        *options,
    ]  # fmt: skip
