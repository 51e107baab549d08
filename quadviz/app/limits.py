"""Server-side limits of the app: run budgets, compute slots, interruption.

Every run is estimated with :mod:`quadviz.budget` before it starts. Runs
under the automatic budget start at once. Larger ones wait for a Run button,
while the population flow already shows. Runs above the hard limit are
rejected with a message. The limits are read once per server process
from environment variables, or from Streamlit secrets with the same names:

- QUADVIZ_AUTO_BUDGET_S: estimated seconds that start without a click.
- QUADVIZ_MAX_BUDGET_S: estimated seconds above which a run is rejected.
- QUADVIZ_MAX_MEMORY_MB: working memory or result size above which a run is
  rejected.
- QUADVIZ_MAX_CONCURRENT_RUNS: computations at once across all visitors
  (default: the cores this process may use); further ones wait for a slot.
- QUADVIZ_TORCH_THREADS: torch intra-op threads of one computation (default
  1, capped at the cores available).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import astuple

import streamlit as st
from streamlit.errors import DuplicateWidgetID, StreamlitSecretNotFoundError

from quadviz import budget
from quadviz.config import Config

try:
    # NOTE: private API of Streamlit 1.67. It raises Streamlit's rerun or stop
    # exception when the visitor has changed a control, without sending a
    # message. Without it, runs stop only at their next progress-bar update.
    from streamlit.runtime.scriptrunner_utils.script_run_context import (
        get_run_yield_check,
    )
except ImportError:  # pragma: no cover - other Streamlit versions
    get_run_yield_check = None

log = logging.getLogger("quadviz.app")

ENV_TORCH_THREADS = "QUADVIZ_TORCH_THREADS"
ENV_MAX_CONCURRENT_RUNS = "QUADVIZ_MAX_CONCURRENT_RUNS"
LIMIT_NAMES = (
    budget.ENV_AUTO_SECONDS,
    budget.ENV_MAX_SECONDS,
    budget.ENV_MAX_MEMORY_MB,
)
# Session-state key of the digests of configurations whose Run button was
# pressed, at most MAX_APPROVED short strings.
APPROVED_KEY = "qv_approved_runs"
MAX_APPROVED = 4
SLOT_POLL_SECONDS = 0.1


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where known)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _read_count(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        log.warning(
            "invalid %s=%r: expected a positive integer; using %d",
            name,
            raw[:40],
            default,
        )
        return default
    return value


def torch_threads() -> int:
    """Torch threads per computation: QUADVIZ_TORCH_THREADS (default 1),
    capped at the cores available."""
    return min(_read_count(ENV_TORCH_THREADS, 1), available_cores())


def _setting(name: str) -> object | None:
    """Value of ``name`` from the environment, else from Streamlit secrets."""
    if os.environ.get(name, "").strip():
        return os.environ[name]
    try:
        return st.secrets.get(name)
    except (StreamlitSecretNotFoundError, FileNotFoundError):
        return None


@functools.lru_cache(maxsize=1)
def server_limits() -> budget.Limits:
    """Limits of this server process, read once and logged."""
    limits, problems = budget.Limits.from_mapping(
        {name: _setting(name) for name in LIMIT_NAMES}
    )
    for problem in problems:
        log.warning(problem)
    log.info(
        "run limits: start at once below %.3g s, reject above %.3g s or %.3g MB",
        limits.auto_seconds,
        limits.max_seconds,
        limits.max_memory_bytes / 1e6,
    )
    return limits


_SLOTS = threading.BoundedSemaphore(
    _read_count(ENV_MAX_CONCURRENT_RUNS, available_cores())
)
_slot_depth = threading.local()


def yield_to_rerun() -> None:
    """Stop the script here if the visitor has changed a control meanwhile.

    Raises Streamlit's rerun or stop exception in that case, which unwinds
    any cached function in progress without storing its result.
    """
    if get_run_yield_check is None:
        return
    check = get_run_yield_check()
    if check is not None:
        check()


@contextlib.contextmanager
def compute_slot(on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold one of the server's compute slots for the enclosed computation.

    Calls ``on_wait`` once if every slot is taken, then waits while staying
    interruptible. Nested use in one thread takes one slot only.
    """
    depth = getattr(_slot_depth, "value", 0)
    if depth == 0 and not _SLOTS.acquire(blocking=False):
        if on_wait is not None:
            on_wait()
        while not _SLOTS.acquire(timeout=SLOT_POLL_SECONDS):
            yield_to_rerun()
    _slot_depth.value = depth + 1
    try:
        yield
    finally:
        _slot_depth.value = depth
        if depth == 0:
            _SLOTS.release()


def _digest(config: Config, part: str) -> str:
    text = repr((part, astuple(config)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_approved(digest: str) -> bool:
    return digest in st.session_state.get(APPROVED_KEY, [])


def _approve(digest: str) -> None:
    approved = [d for d in st.session_state.get(APPROVED_KEY, []) if d != digest]
    st.session_state[APPROVED_KEY] = (approved + [digest])[-MAX_APPROVED:]


def _run_button(digest: str, what: str, reason: str, seconds: float) -> bool:
    """Explain why ``what`` waits and draw its Run button; True once pressed.

    A second button for the same run in one script run is skipped.
    """
    slot = st.empty()
    try:
        with slot.container():
            st.info(f"{what} waits for the button: {reason}.")
            pressed = st.button(
                f"Run {what[0].lower() + what[1:]} "
                f"(about {budget.format_seconds(seconds)})",
                key=f"qv_run_{digest}",
                type="primary",
            )
    except DuplicateWidgetID:
        return False
    if pressed:
        slot.empty()
        _approve(digest)
        log.info("run approved by a visitor: %s, %.3g s estimated", what, seconds)
    return pressed


def _allowed(
    config: Config, part: str, what: str, decision: budget.Decision, seconds: float
) -> bool:
    """Whether ``what`` may run now: allowed, or approved, or just approved."""
    if decision.action == "run":
        return True
    if decision.action == "reject":
        st.info(f"{what} not computed: {decision.reason}.")
        return False
    digest = _digest(config, part)
    if _is_approved(digest):
        return True
    return _run_button(digest, what, decision.reason, seconds)


def plan_experiment(config: Config, skip_reason: str | None = None) -> bool | None:
    """Decide what of ``config`` runs now, showing the estimate and messages.

    Returns True to run SGD with the flow, False to run the flow alone, and
    None to run nothing. ``skip_reason`` is a message that excludes SGD
    whatever its estimate.
    """
    limits = server_limits()
    cost = budget.estimate(config)
    st.caption(f"Cost: {cost.describe()}.")
    for warning in budget.config_warnings(config):
        if warning.field != "lr":  # the sidebar shows the step-size warning
            st.warning(warning.message)
    flow = budget.decide_flow(cost, limits)
    if not _allowed(config, "flow", "The population flow", flow, cost.flow_seconds):
        return None
    if skip_reason is not None:
        st.info(skip_reason)
        return False
    sgd = budget.decide_sgd(cost, limits)
    if sgd.action == "reject":
        st.info(
            f"Online SGD not computed: {sgd.reason}. The population flow below "
            "is exact."
        )
        return False
    return _allowed(config, "sgd", "Online SGD", sgd, cost.total_seconds)


def plan_ladder(config: Config, dims: tuple[int, ...]) -> bool:
    """Whether the flow at several d (the d -> infinity figure) runs now."""
    limits = server_limits()
    seconds = budget.ladder_seconds(config, dims)
    cost = budget.estimate(config, with_sgd=False)
    memory = max(cost.flow_bytes, cost.result_bytes * len(dims))
    if memory > limits.max_memory_bytes:
        decision = budget.Decision(
            "reject",
            f"it needs about {budget.format_bytes(memory)} of memory, above this "
            f"server's limit of {budget.format_bytes(limits.max_memory_bytes)}",
        )
    elif seconds > limits.max_seconds:
        decision = budget.Decision(
            "reject",
            f"it would take about {budget.format_seconds(seconds)}, above this "
            f"server's limit of {budget.format_seconds(limits.max_seconds)}",
        )
    elif seconds > limits.auto_seconds:
        decision = budget.Decision(
            "confirm",
            f"it would take about {budget.format_seconds(seconds)}, more than the "
            f"{budget.format_seconds(limits.auto_seconds)} that start by themselves",
        )
    else:
        decision = budget.Decision("run")
    return _allowed(config, "ladder", "The flow at several d", decision, seconds)
