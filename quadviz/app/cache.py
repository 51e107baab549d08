"""Cached engine calls for the pages, with a progress bar while computing.

Cache keys are plain values: the Config fields as a sorted tuple of
(name, value) pairs, plus flags. Results are the engine's CPU numpy objects,
so ``st.cache_data`` can pickle them. The progress bar is created inside the
cached function: Streamlit records elements made in a cached function and
replays them on a cache hit, and a bar made outside could not be replayed.
Updates are throttled so that a replay stays short.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator

import streamlit as st
import torch

from quadviz import experiment as engine
from quadviz.app import limits
from quadviz.app.controls import MAX_SGD_NUMBERS
from quadviz.config import FIELDS, Config, ConfigError
from quadviz.experiment import Experiment
from quadviz.result import Trajectory

CACHE_ENTRIES = 16
CACHE_TTL_SECONDS = 3600
# Progress updates closer than this (in fraction of the work) are skipped.
PROGRESS_STEP = 0.04
# Largest d of the dimension ladder; the flow cost does not depend on d.
LADDER_MAX_D = 10**9

ConfigKey = tuple[tuple[str, object], ...]

# One torch intra-op thread per computation, because a server runs several
# sessions at once and the reduced SGD path works on (r + m) x m matrices,
# where a thread pool only adds synchronisation. Measured with the default
# configuration inside Streamlit 1.67 on a busy 2-core machine: about 3 s with
# one thread, 20 to 60 s with two. QUADVIZ_TORCH_THREADS overrides it, capped
# at the cores available.
torch.set_num_threads(limits.torch_threads())


def config_key(config: Config) -> ConfigKey:
    """Hashable, plain-value cache key of a configuration."""
    return tuple((name, getattr(config, name)) for name in sorted(FIELDS))


def _config_from_key(key: ConfigKey) -> Config:
    return Config(**dict(key))


@contextlib.contextmanager
def _progress_bar(text: str) -> Iterator:
    """Yield a progress(fraction, text) callback drawing a bar, removed after."""
    bar = st.progress(0.0, text=text)
    last = [0.0]

    def report(fraction: float, message: str) -> None:
        # a moved control stops the run here, between two engine chunks
        limits.yield_to_rerun()
        fraction = min(max(float(fraction), 0.0), 1.0)
        if fraction - last[0] >= PROGRESS_STEP:
            last[0] = fraction
            bar.progress(fraction, text=f"{text}: {message}")

    def show_wait() -> None:
        bar.progress(0.0, text=f"{text}: waiting for a free compute slot")

    try:
        with limits.compute_slot(show_wait):
            yield report
    finally:
        bar.empty()


@st.cache_data(max_entries=CACHE_ENTRIES, ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _run_experiment(key: ConfigKey, with_sgd: bool) -> tuple[Experiment, float]:
    config = _config_from_key(key)
    start = time.perf_counter()
    if with_sgd:
        with _progress_bar("Online SGD and population flow") as report:
            result = engine.simulate(config, report)
    else:
        with _progress_bar("Population flow") as report:
            result = engine.flow_only(config, report)
    return result, time.perf_counter() - start


@st.cache_data(max_entries=CACHE_ENTRIES, ttl=CACHE_TTL_SECONDS, show_spinner=False)
def _run_ladder(
    key: ConfigKey, dims: tuple[int, ...]
) -> tuple[list[tuple[int, Trajectory]], float]:
    config = _config_from_key(key)
    start = time.perf_counter()
    with _progress_bar("Population flow at several d") as report:
        ladder = engine.dimension_ladder(config, list(dims), report)
    return ladder, time.perf_counter() - start


def sgd_cost(config: Config) -> float:
    """Gaussian numbers an SGD run draws, seeds * steps * batch * n.

    n is d for the full d-dimensional path and r + width for the reduced one.
    """
    if config.sgd_method == "full":
        n = config.d
    else:
        n = config.teacher_rank + config.width
    return float(config.seeds) * config.num_steps * config.batch * n


def sgd_skip_reason(config: Config) -> str | None:
    """Why SGD is not run for ``config`` (too large), or None if it is."""
    cost = sgd_cost(config)
    if cost > MAX_SGD_NUMBERS:
        return (
            f"Online SGD skipped: it would draw {cost:.2g} Gaussian numbers "
            f"(seeds · steps · B · n with n = d, or r + m in reduced "
            f"coordinates), above this server's limit of {MAX_SGD_NUMBERS:.2g}. "
            "Lower steps, batch, d or seeds to see SGD; the population flow "
            "below is exact."
        )
    try:
        config.check_sgd_memory()
    except ConfigError as err:
        return f"Online SGD skipped: {err}"
    return None


def _report_time(label: str, elapsed: float, start: float, device: str) -> None:
    """Sidebar line: what ran, on which device, and how long it took.

    A call that returned in well under the stored compute time was a cache hit.
    """
    cached = time.perf_counter() - start < 0.5 * elapsed
    note = ", from cache" if cached else ""
    st.sidebar.caption(f"{label}: {elapsed:.2f} s on {device}{note}")


def experiment(config: Config) -> Experiment | None:
    """SGD, flow and theory for ``config``, as far as the server's limits allow.

    :func:`limits.plan_experiment` shows the cost estimate and decides: SGD
    with the flow, the flow alone (SGD rejected or waiting for its Run
    button), or nothing. Shows an st.error, without a traceback, when the
    engine rejects the configuration. Returns None when nothing was computed.
    """
    with_sgd = limits.plan_experiment(config, sgd_skip_reason(config))
    if with_sgd is None:
        return None
    start = time.perf_counter()
    try:
        result, elapsed = _run_experiment(config_key(config), with_sgd)
    except (ConfigError, ValueError, RuntimeError, MemoryError) as err:
        st.error(f"The simulation failed: {err}")
        return None
    if result.sgd is not None:
        label = f"SGD ({result.sgd.info.get('method', 'full')} path) and flow"
    else:
        label = "Flow"
    _report_time(label, elapsed, start, result.device)
    return result


def ladder_dimensions(d: int, count: int = 5) -> tuple[int, ...]:
    """d, 10 d, 100 d, ... (``count`` values at most, up to LADDER_MAX_D)."""
    dims = [d * 10**k for k in range(count) if d * 10**k <= LADDER_MAX_D]
    return tuple(dims)


def dimension_ladder(config: Config) -> list[tuple[int, Trajectory]] | None:
    """Population flow at d, 10 d, 100 d, ... for the d -> infinity figure.

    Escape times grow like ln d, so the horizon is stretched by
    ln(d_max) / ln(d) to let every curve reach the same t / ln d. r is passed
    explicitly, because r derived from beta would grow with d.
    """
    dims = ladder_dimensions(config.d)
    stretch = math.log(dims[-1]) / math.log(max(config.d, 2))
    try:
        ladder_config = config.replace(
            r=config.teacher_rank, t_max=config.horizon * stretch
        )
        if not limits.plan_ladder(ladder_config, dims):
            return None
        start = time.perf_counter()
        ladder, elapsed = _run_ladder(config_key(ladder_config), dims)
    except (ConfigError, ValueError, RuntimeError, MemoryError) as err:
        st.error(f"The dimension ladder failed: {err}")
        return None
    _report_time("Dimension ladder", elapsed, start, "cpu")
    return ladder
