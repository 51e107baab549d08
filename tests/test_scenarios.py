"""Scenarios: settings, signatures with their defaults, and loading in the app.

The signature of each scenario is checked on the engine directly (one
simulation per scenario, shared by the tests of that scenario). Every
scenario is also opened once in the app with AppTest through its link
``?scenario=NAME``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from quadviz import scenarios, theory
from quadviz.app import controls
from quadviz.config import FIELDS, Config
from quadviz.experiment import simulate
from quadviz.teacher import spectrum

APP = str(Path(__file__).resolve().parents[1] / "app.py")
RUN_TIMEOUT_S = 60
NAMES = list(scenarios.SCENARIOS)
# The signature numbers below were measured with these settings on CPU; the
# bounds leave room for other seeds of the same law.
FLOOR_TOLERANCE = 0.02
SGD_FLOOR_TOLERANCE = 0.2


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # The app computes with one thread; more only slow a busy 2-core machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def results() -> dict:
    """Experiments of the scenarios, computed once per module on first use."""
    return {}


def _result(results: dict, name: str):
    if name not in results:
        results[name] = simulate(scenarios.get(name).config())
    return results[name]


@pytest.fixture
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _open(**params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.query_params.update(params)
    at.run()
    return at


# ---------------------------------------------------------------- settings


def test_at_least_six_scenarios():
    assert len(scenarios.SCENARIOS) >= 6


def test_default_config_is_default_scenario():
    assert scenarios.matching(Config()) == scenarios.DEFAULT_SCENARIO


@pytest.mark.parametrize("name", NAMES)
def test_scenario_config_valid(name):
    scenario = scenarios.get(name)
    config = scenario.config()
    assert set(scenario.settings) <= set(FIELDS)
    assert scenario.differences(config) == []
    assert scenarios.matching(config) == name


@pytest.mark.parametrize("name", NAMES)
def test_scenario_within_sidebar_ranges(name):
    config = scenarios.get(name).config()
    for field, widget in controls.WIDGETS.items():
        value = getattr(config, field)
        if value is None or widget.low is None:
            continue
        assert widget.low <= value <= widget.high, (field, value)


@pytest.mark.parametrize("name", NAMES)
def test_scenario_step_size_stability(name):
    config = scenarios.get(name).config()
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    limit = theory.lr_stability_limit(config.d, config.batch, lam)
    if name == "step-too-large":
        assert config.lr > limit
    else:
        assert config.lr <= limit


def test_unknown_scenario_names_known():
    with pytest.raises(ValueError, match="one-at-a-time"):
        scenarios.get("no-such-scenario")


def test_differences_lists_changed_fields():
    scenario = scenarios.get("width-bottleneck")
    config = scenario.config().replace(alpha=1.5, seed=3)
    assert scenario.differences(config) == ["alpha", "seed"]


def test_notices_are_short():
    for scenario in scenarios.SCENARIOS.values():
        sentences = [s for s in scenario.notice.split(". ") if s.strip()]
        assert 2 <= len(sentences) <= 4, scenario.name


# ---------------------------------------------------------------- signatures


@pytest.mark.parametrize("name", NAMES)
def test_signature_holds(results, name):
    signature = scenarios.get(name).check(_result(results, name))
    assert signature.ok, signature.text


def test_one_at_a_time_separated(results):
    values = (
        scenarios.get("one-at-a-time").check(_result(results, "one-at-a-time")).values
    )
    assert values["max_next_rho"] < 0.1
    assert values["min_escape_ratio"] >= 1.5


def test_smooth_power_law_slope(results):
    experiment = _result(results, "smooth-power-law")
    values = scenarios.get("smooth-power-law").check(experiment).values
    assert -1.6 <= values["slope"] <= -0.8
    assert values["learned"] >= 12


def test_width_bottleneck_at_floor(results):
    experiment = _result(results, "width-bottleneck")
    values = scenarios.get("width-bottleneck").check(experiment).values
    floor = theory.width_floor(experiment.lam, experiment.config.width)
    assert values["floor"] == pytest.approx(floor)
    assert values["flow_final"] == pytest.approx(floor, rel=FLOOR_TOLERANCE)
    assert values["sgd_final"] == pytest.approx(floor, rel=SGD_FLOOR_TOLERANCE)


def test_step_too_large_diverges(results):
    experiment = _result(results, "step-too-large")
    assert experiment.sgd.status == "diverged"
    assert "diverged" in experiment.sgd.message
    values = scenarios.get("step-too-large").check(experiment).values
    assert values["t_leave"] < values["t_last_finite"]


def test_flat_spectrum_escapes_together(results):
    experiment = _result(results, "flat-spectrum")
    assert np.allclose(experiment.lam, experiment.lam[0])
    values = scenarios.get("flat-spectrum").check(experiment).values
    assert values["escape_spread"] < 1.6
    assert values["drop_factor"] < 5.0


def test_dimension_escape_grows_like_log_d(results):
    experiment = _result(results, "dimension-matters")
    values = scenarios.get("dimension-matters").check(experiment).values
    assert values["slope"] == pytest.approx(values["predicted"], rel=0.2)


def test_large_init_orthogonal_tail(results):
    experiment = _result(results, "large-init")
    values = scenarios.get("large-init").check(experiment).values
    assert values["initial_risk"] > 10.0
    assert abs(values["tail_gap"]) < 0.1


def test_orthogonal_tail_formula():
    config = Config(r=4, width=16)
    assert scenarios.orthogonal_tail(config, np.array([1.0, 2.0])) == pytest.approx(
        [12 / 64, 12 / 256]
    )


# ---------------------------------------------------------------- app


@pytest.mark.parametrize("name", NAMES)
def test_scenario_link_loads(_clear_cache, name):
    at = _open(scenario=name)
    assert not at.exception
    assert [e.value for e in at.error] == []
    assert at.session_state[controls.CONFIG_KEY] == scenarios.get(name).config()
    assert at.query_params["scenario"] == name
    notes = [m.value for m in at.markdown if m.value.startswith("**Scenario:")]
    assert notes and scenarios.get(name).title in notes[0]
    measured = [c.value for c in at.caption if "Measured:" in c.value]
    assert measured and measured[0].startswith("✓"), measured


def test_empty_link_opens_default_scenario(_clear_cache):
    at = _open()
    assert at.query_params["scenario"] == scenarios.DEFAULT_SCENARIO
    assert at.selectbox(key="qv_scenario").value == scenarios.DEFAULT_SCENARIO


def test_picker_sets_every_control(_clear_cache):
    at = _open(scenario="one-at-a-time")
    at.selectbox(key="qv_scenario").set_value("width-bottleneck").run()
    assert not at.exception
    config = at.session_state[controls.CONFIG_KEY]
    assert config == scenarios.get("width-bottleneck").config()
    assert at.query_params["scenario"] == "width-bottleneck"
    assert "r" not in at.query_params


def test_link_values_override_scenario(_clear_cache):
    at = _open(scenario="width-bottleneck", width="8")
    config = at.session_state[controls.CONFIG_KEY]
    assert config.width == 8
    assert config.alpha == scenarios.get("width-bottleneck").config().alpha
    assert at.query_params["scenario"] == "width-bottleneck"
    changed = [c.value for c in at.caption if c.value.startswith("Changed since")]
    assert changed and "student width m" in changed[0]


def test_restore_button_restores(_clear_cache):
    at = _open(scenario="width-bottleneck", width="8")
    at.button(key="gallery_restore").click().run()
    config = at.session_state[controls.CONFIG_KEY]
    assert config == scenarios.get("width-bottleneck").config()


def test_custom_link_has_no_scenario(_clear_cache):
    at = _open(d="64", r="4", width="4", steps="300", seeds="2")
    assert at.selectbox(key="qv_scenario").value is None
    assert "scenario" not in at.query_params


def test_invalid_scenario_warns(_clear_cache):
    at = _open(scenario="nope", d="64", r="4", width="4", steps="300", seeds="2")
    warnings = [w.value for w in at.warning]
    assert any("scenario=nope" in w and "allowed" in w for w in warnings), warnings
    assert not at.exception
    assert "scenario" not in at.query_params


def test_gallery_open_button(_clear_cache):
    at = _open(scenario="one-at-a-time")
    at.button(key="gallery_open_flat-spectrum").click().run()
    config = at.session_state[controls.CONFIG_KEY]
    assert config == scenarios.get("flat-spectrum").config()
    assert at.query_params["scenario"] == "flat-spectrum"


def test_dimension_scenario_draws_escape_figure(_clear_cache):
    at = _open(scenario="dimension-matters")
    keys = [chart.key for chart in at.get("plotly_chart")]
    assert "gallery_escape_d" in keys
