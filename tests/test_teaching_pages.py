"""Teaching features in the app, run with AppTest: pinned runs, lecture mode,
the replay and theory pages, and the download buttons."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from quadviz import pinned, scenarios
from quadviz.app import controls, lecture

APP = str(Path(__file__).resolve().parents[1] / "app.py")
RUN_TIMEOUT_S = 60
# d=64, r=4, width 4, t = 6, 2 seeds: about a second per run.
SMALL = {"d": "64", "r": "4", "width": "4", "lr": "0.02", "steps": "300", "seeds": "2"}
REPLAY = "app_pages/replay.py"
THEORY = "app_pages/theory.py"
SGD_PAGE = "app_pages/sgd_dynamics.py"


@pytest.fixture(autouse=True)
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _open(page: str | None = None, **params: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.query_params.update(params)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def _charts(at: AppTest) -> dict[str, dict]:
    return {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}


def _names(at: AppTest, key: str) -> list[str]:
    return [t.get("name", "") for t in _charts(at)[key]["data"]]


# ---------------------------------------------------------------- compare


def test_pin_overlays_dashed_run():
    at = _open(**SMALL)
    at.button(key="overview_pin").click().run()
    names = _names(at, "overview_risk")
    assert "pinned 1: same settings (SGD mean)" in names
    trace = _charts(at)["overview_risk"]["data"][names.index(names[-1])]
    assert trace["line"]["dash"] == "dash"


def test_pinned_label_names_changed_setting():
    at = _open(**SMALL)
    at.button(key="overview_pin").click().run()
    at.slider(key="cfg_alpha").set_value(1.5).run()
    names = _names(at, "overview_risk")
    assert "pinned 1: α = 1 (SGD mean)" in names, names


def test_pinned_runs_capped_and_small():
    at = _open(**SMALL)
    for alpha in (1.0, 1.2, 1.4, 1.6, 1.8):
        at.slider(key="cfg_alpha").set_value(alpha).run()
        at.button(key="overview_pin").click().run()
    runs = at.session_state["qv_pinned"]
    assert len(runs) == pinned.MAX_PINNED_RUNS
    assert [r.values["alpha"] for r in runs] == [1.2, 1.4, 1.6, 1.8]
    for run in runs:
        assert run.time.size <= pinned.MAX_PINNED_POINTS
        assert run.risk.shape == run.time.shape


def test_pinned_runs_on_sgd_page_and_cleared():
    at = _open(**SMALL)
    at.button(key="overview_pin").click().run()
    at.switch_page(SGD_PAGE).run()
    assert any(n.startswith("pinned 1") for n in _names(at, "sgd_risk"))
    at.button(key="sgd_clear").click().run()
    assert not any(n.startswith("pinned") for n in _names(at, "sgd_risk"))


def test_pin_button_disabled_when_pinned():
    at = _open(**SMALL)
    at.button(key="overview_pin").click().run()
    assert at.button(key="overview_pin").disabled


# ---------------------------------------------------------------- lecture


def test_lecture_figures_large():
    at = _open(**SMALL, lecture="1")
    layout = _charts(at)["overview_risk"]["layout"]
    assert layout["font"]["size"] == lecture.FONT_SIZE
    assert layout["height"] >= lecture.FIGURE_HEIGHT


def test_lecture_hides_downloads():
    normal = _open(**SMALL)
    projected = _open(**SMALL, lecture="1")
    assert "overview_risk_csv" in [b.key for b in normal.get("download_button")]
    keys = [b.key for b in projected.get("download_button")]
    assert "overview_risk_csv" not in keys


def test_lecture_next_scenario_button():
    at = _open(scenario="one-at-a-time", lecture="1")
    at.button(key="gallery_next").click().run()
    names = list(scenarios.SCENARIOS)
    following = names[names.index("one-at-a-time") + 1]
    assert at.query_params["scenario"] == following
    assert at.session_state[controls.CONFIG_KEY] == scenarios.get(following).config()


def test_lecture_previous_wraps_around():
    first = next(iter(scenarios.SCENARIOS))
    at = _open(scenario=first, lecture="1")
    at.button(key="gallery_previous").click().run()
    assert at.query_params["scenario"] == list(scenarios.SCENARIOS)[-1]


def test_lecture_buttons_absent_normally():
    at = _open(**SMALL)
    assert "gallery_next" not in [b.key for b in at.button]


# ---------------------------------------------------------------- pages


def test_replay_page_animation():
    at = _open(REPLAY, **SMALL)
    assert not at.exception
    spec = _charts(at)["replay_animation"]
    assert 2 <= len(spec["frames"]) <= 80
    assert spec["layout"]["sliders"][0]["steps"]
    labels = [b["label"] for b in spec["layout"]["updatemenus"][0]["buttons"]]
    assert any("Play" in label for label in labels)


def test_replay_page_sgd_source():
    at = _open(REPLAY, **SMALL)
    at.radio(key="replay_source").set_value("SGD, seed 1").run()
    title = _charts(at)["replay_animation"]["layout"]["annotations"][0]["text"]
    assert "SGD, seed 1" in title


def test_theory_page_runs():
    at = _open(THEORY, **SMALL)
    assert not at.exception
    headers = [h.value for h in at.header]
    assert headers[-1] == "References"
    text = "\n".join(m.value for m in at.markdown)
    for marker in ("2508.03688", "2504.19983", "2311.03794", "Ziyin", "Pesme"):
        assert marker in text, marker
    assert "conjecture" in text


def test_theory_table_follows_settings():
    at = _open(THEORY, **{**SMALL, "alpha": "1.5"})
    values = at.table[0].value
    row = values[values["quantity"] == "exponent −(2α−1)/α"]
    assert row["value"].iloc[0] == "-1.33"


# ---------------------------------------------------------------- downloads


def test_download_buttons_per_chart():
    at = _open(**SMALL)
    keys = {b.key for b in at.get("download_button")}
    for suffix in ("csv", "json", "html"):
        assert f"overview_risk_{suffix}" in keys
    assert "share_config_json" in keys
