"""Run budgets and server limits: quadviz.budget and quadviz.app.limits.

The app tests run app.py in-process with AppTest and the default limits
(start at once below 8 s, reject above 60 s or 300 MB).
"""

from __future__ import annotations

import pickle
import threading
import time
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from quadviz import budget
from quadviz.app import limits
from quadviz.config import Config

APP = str(Path(__file__).resolve().parents[1] / "app.py")
RUN_TIMEOUT_S = 60
SMALL = {"d": "64", "r": "4", "width": "4", "lr": "0.02", "steps": "500", "seeds": "2"}
# Estimated about 17 s of full SGD: above 8 s, below 60 s.
CONFIRM = {"d": "2048", "r": "4", "width": "4", "steps": "20000", "seeds": "2",
           "batch": "64", "method": "full"}  # fmt: skip
# Estimated hours of full SGD: rejected; the flow alone is cheap.
REJECT = {"d": "4096", "r": "4", "width": "4", "steps": "1000000", "seeds": "8",
          "batch": "1024", "method": "full"}  # fmt: skip
# Largest session state of one visitor, pickled.
MAX_SESSION_STATE_BYTES = 100_000


@pytest.fixture(autouse=True)
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _open(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.query_params.update(params)
    at.run()
    return at


def _texts(elements) -> str:
    return "\n".join(element.value for element in elements)


def test_limits_from_environment():
    values = {
        budget.ENV_AUTO_SECONDS: "30",
        budget.ENV_MAX_SECONDS: "600",
        budget.ENV_MAX_MEMORY_MB: "4000",
    }
    parsed, problems = budget.Limits.from_mapping(values)
    assert parsed == budget.Limits(30.0, 600.0, 4e9)
    assert problems == []


@pytest.mark.parametrize("raw", ["abc", "-1", "0", "nan", "inf"])
def test_invalid_limit_keeps_default(raw):
    parsed, problems = budget.Limits.from_mapping({budget.ENV_MAX_SECONDS: raw})
    assert parsed.max_seconds == budget.DEFAULT_MAX_SECONDS
    assert len(problems) == 1
    assert budget.ENV_MAX_SECONDS in problems[0]


def test_auto_budget_capped_at_max():
    parsed, _ = budget.Limits.from_mapping(
        {budget.ENV_AUTO_SECONDS: "100", budget.ENV_MAX_SECONDS: "10"}
    )
    assert parsed.auto_seconds == 10.0


def test_decisions_follow_estimate():
    limits = budget.Limits(auto_seconds=1.0, max_seconds=10.0, max_memory_bytes=1e9)
    cost = budget.CostEstimate("full", 0.5, 0.1, 10, 10, 10)
    assert budget.decide_sgd(cost, limits).action == "run"
    cost = budget.CostEstimate("full", 5.0, 0.1, 10, 10, 10)
    assert budget.decide_sgd(cost, limits).action == "confirm"
    cost = budget.CostEstimate("full", 50.0, 0.1, 10, 10, 10)
    decision = budget.decide_sgd(cost, limits)
    assert decision.action == "reject"
    assert "limit of 10 s" in decision.reason
    cost = budget.CostEstimate("full", 0.5, 0.1, 2e9, 10, 10)
    assert budget.decide_sgd(cost, limits).action == "reject"


def test_memory_estimate_counts_batch_times_d():
    config = Config.create(d=4096, batch=4096, seeds=3, method="full")
    cost = budget.estimate(config)
    # one step's float32 batches, seeds x B x d, are drawn at once
    assert cost.sgd_bytes >= 4 * 3 * 4096 * 4096
    assert budget.decide_sgd(cost, budget.Limits()).action == "reject"


def test_torch_threads_capped_by_cores(monkeypatch):
    monkeypatch.setenv(limits.ENV_TORCH_THREADS, "512")
    assert limits.torch_threads() == limits.available_cores()
    monkeypatch.setenv(limits.ENV_TORCH_THREADS, "zero")
    assert limits.torch_threads() == 1


def test_compute_slot_nested_takes_one():
    with limits.compute_slot(), limits.compute_slot():
        pass
    assert limits._SLOTS.acquire(blocking=False)
    limits._SLOTS.release()


def test_compute_slot_waits_when_full(monkeypatch):
    monkeypatch.setattr(limits, "_SLOTS", threading.BoundedSemaphore(1))
    waited = []
    release = threading.Event()

    def hold() -> None:
        with limits.compute_slot():
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.2)
    threading.Timer(0.3, release.set).start()
    with limits.compute_slot(lambda: waited.append(True)):
        pass
    holder.join(5)
    assert waited == [True]


def test_small_run_starts_at_once():
    at = _open(**SMALL)
    assert not at.exception
    assert "Cost: estimated" in _texts(at.caption)
    assert not [b for b in at.button if b.key and b.key.startswith("qv_run_")]
    assert "SGD" in _texts(at.sidebar.caption)


def test_long_run_waits_for_button():
    at = _open(**CONFIRM)
    assert not at.exception
    assert "Online SGD waits for the button" in _texts(at.info)
    buttons = [b for b in at.button if b.key and b.key.startswith("qv_run_")]
    assert len(buttons) == 1
    assert buttons[0].label.startswith("Run online SGD (about")
    assert "Flow" in _texts(at.sidebar.caption)


def test_huge_run_rejected_flow_shown():
    at = _open(**REJECT)
    assert not at.exception
    info = _texts(at.info)
    assert "Online SGD not computed" in info
    assert "above this server's limit" in info
    assert "Flow" in _texts(at.sidebar.caption)


def test_session_state_stays_small():
    at = _open(**SMALL)
    at.switch_page("app_pages/sgd_dynamics.py").run()
    size = len(pickle.dumps(at.session_state.to_dict()))
    assert size < MAX_SESSION_STATE_BYTES


def test_estimate_follows_loop_readiness(monkeypatch):
    """Before the app has compiled its loops, small steps run in the torch
    loops, about 100 times slower at B = 1, and the estimate includes that."""
    from quadviz import reduced_kernel

    full = Config.create(method="full", d=8, r=2, width=1, batch=1, steps=100000, lr=1e-4,
                         seeds=1)
    reduced = full.replace(method="reduced")
    monkeypatch.setattr(reduced_kernel, "part_ready", lambda part: True)
    monkeypatch.setattr(reduced_kernel, "ready", lambda: True)
    warm_full = budget.sgd_seconds(full)
    warm_reduced = budget.sgd_seconds(reduced)
    eight_seeds = budget.fixed_step_seconds(full.replace(seeds=8))
    assert eight_seeds == pytest.approx(8 * budget.fixed_step_seconds(full))
    monkeypatch.setattr(reduced_kernel, "part_ready", lambda part: part == "gaussian")
    monkeypatch.setattr(reduced_kernel, "ready", lambda: False)
    assert budget.sgd_seconds(full) > 10 * warm_full
    assert budget.sgd_seconds(reduced) > 10 * warm_reduced
    # TorchScript runs all seeds in one call
    assert budget.fixed_step_seconds(full.replace(seeds=8)) == budget.SECONDS_PER_SCRIPTED_STEP
