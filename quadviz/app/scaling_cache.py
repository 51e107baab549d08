"""Cached sweeps for the Scaling laws page, with progress and a Run button.

A sweep is keyed on plain values: the base Config as a sorted tuple of
(name, value) pairs (``cache.config_key``), the swept parameter, its values
and the flags of :class:`quadviz.sweeps.SweepSpec`. The progress bar is
drawn inside the cached function, so a cache hit replays it and a rerun
stops the sweep at its next progress update. A sweep whose estimated cost
exceeds AUTO_RUN_SECONDS waits for a Run button that shows the estimate.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import fields

import streamlit as st

from quadviz import sweeps
from quadviz.app.cache import CACHE_TTL_SECONDS, config_key
from quadviz.config import Config, ConfigError
from quadviz.sweeps import Sweep, SweepSpec

# Sweeps estimated to finish within this many seconds start on their own.
AUTO_RUN_SECONDS = 10.0
# Sweeps hold up to a few thousand curves' worth of arrays; a few suffice.
SWEEP_CACHE_ENTRIES = 8
# Progress updates closer than this (fraction of the sweep) are skipped.
PROGRESS_STEP = 0.02
APPROVED_KEY = "scaling_approved_runs"

SpecKey = tuple


def spec_key(spec: SweepSpec) -> SpecKey:
    """Plain, hashable cache key of a sweep specification."""
    rest = tuple(getattr(spec, f.name) for f in fields(spec) if f.name != "base")
    return (config_key(spec.base),) + rest


def _spec_from_key(key: SpecKey) -> SweepSpec:
    base = Config(**dict(key[0]))
    names = [f.name for f in fields(SweepSpec) if f.name != "base"]
    return SweepSpec(base, **dict(zip(names, key[1:])))


@contextlib.contextmanager
def _progress_bar(text: str) -> Iterator:
    """Yield a progress(fraction, text) callback drawing a bar, removed after."""
    bar = st.progress(0.0, text=text)
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction - last[0] >= PROGRESS_STEP:
            last[0] = fraction
            bar.progress(fraction, text=f"{text}: {message}")

    try:
        yield report
    finally:
        bar.empty()


@st.cache_data(
    max_entries=SWEEP_CACHE_ENTRIES, ttl=CACHE_TTL_SECONDS, show_spinner=False
)
def _cached_sweep(key: SpecKey, label: str) -> tuple[Sweep, float]:
    spec = _spec_from_key(key)
    start = time.perf_counter()
    with _progress_bar(label) as report:
        sweep = sweeps.run_sweep(spec, report)
    return sweep, time.perf_counter() - start


def _approved(key: SpecKey) -> bool:
    return key in st.session_state.get(APPROVED_KEY, set())


def _approve(key: SpecKey) -> None:
    st.session_state.setdefault(APPROVED_KEY, set()).add(key)


def sweep(spec: SweepSpec, label: str, button_key: str) -> Sweep | None:
    """Run ``spec`` through the cache, or wait for its Run button.

    Cheap sweeps (estimate at most AUTO_RUN_SECONDS) start at once. Others
    show their estimated cost and a Run button, and start once it was
    pressed for these exact settings. Returns None while waiting, or after
    an st.error when the engine rejects the settings.
    """
    try:
        estimate = spec.estimated_seconds()
        key = spec_key(spec)
    except (ConfigError, ValueError) as err:
        st.error(f"Invalid sweep settings: {err}")
        return None
    if estimate > AUTO_RUN_SECONDS and not _approved(key):
        st.info(
            f"{label}: estimated cost about {estimate:.0f} s of computing on this "
            f"server (sweeps above {AUTO_RUN_SECONDS:.0f} s wait for a click)."
        )
        if not st.button(f"Run ({estimate:.0f} s)", key=button_key):
            return None
        _approve(key)
    start = time.perf_counter()
    try:
        result, elapsed = _cached_sweep(key, label)
    except (ConfigError, ValueError, RuntimeError, MemoryError) as err:
        st.error(f"The sweep failed: {err}")
        return None
    cached = time.perf_counter() - start < 0.5 * elapsed
    note = ", from cache" if cached else ""
    st.caption(
        f"{label}: computed in {elapsed:.1f} s (estimated {estimate:.1f} s){note}."
    )
    return result
