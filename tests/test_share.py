"""Share links: state to link to state, and the figures a link reproduces.

Each round trip opens the app from a link with AppTest, reads the link the
app writes back (the URL and the Share box), opens a fresh session from that
link and compares the configurations and the chart data.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from quadviz import scenarios
from quadviz.app import controls
from quadviz.config import FIELDS

APP = str(Path(__file__).resolve().parents[1] / "app.py")
RUN_TIMEOUT_S = 60
# d=64, r=4, width 4, 300 steps, 2 seeds: about a second per run.
SMALL = {"d": "64", "r": "4", "width": "4", "steps": "300", "seeds": "2"}
# Values that a 12-digit format would not reproduce exactly.
AWKWARD = {
    **SMALL,
    "alpha": "1.1500000000000001",
    "lr": "0.0012345678901234567",
    "sigma0": "0.1",
    "seed": "987654321",
    "t_max": "0.7",
}


@pytest.fixture(autouse=True)
def _clear_cache():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def _open(params: dict[str, str], page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    at.query_params.update(params)
    at.run()
    if page is not None:
        at.switch_page(page).run()
    return at


def _link_params(at: AppTest) -> dict[str, str]:
    """Query parameters of the link in the Share box."""
    link = at.sidebar.code[0].value
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))


def _config(at: AppTest):
    return at.session_state[controls.CONFIG_KEY]


def _chart(at: AppTest, key: str) -> dict:
    charts = {el.key: json.loads(el.proto.spec) for el in at.get("plotly_chart")}
    return charts[key]


@pytest.mark.parametrize(
    "params",
    [SMALL, AWKWARD, {"scenario": "width-bottleneck"}, {"scenario": "large-init"}],
    ids=["small", "awkward-floats", "scenario", "scenario-2"],
)
def test_link_round_trip_same_config(params):
    first = _open(params)
    link = _link_params(first)
    second = _open(link)
    assert not first.exception
    assert not second.exception
    assert _config(second) == _config(first)
    assert _link_params(second) == link


def test_link_holds_every_field_and_seed():
    link = _link_params(_open(AWKWARD))
    set_fields = [name for name in FIELDS if name not in ("r", "t_max")]
    for name in set_fields:
        assert name in link, name
    assert link["seed"] == "987654321"
    assert link["r"] == "4"
    assert link["t_max"] == "0.7"


def test_link_floats_exact():
    at = _open(AWKWARD)
    config = _config(at)
    assert config.alpha == 1.1500000000000001
    assert config.lr == 0.0012345678901234567
    assert float(_link_params(at)["lr"]) == config.lr


def test_share_box_matches_url():
    at = _open({"scenario": "one-at-a-time"})
    assert _link_params(at) == dict(at.query_params)
    assert next(iter(_link_params(at))) == "scenario"


def test_link_reproduces_figure_exactly():
    first = _open(SMALL)
    chart = _chart(first, "overview_risk")
    link = _link_params(first)
    st.cache_data.clear()
    second = _open(link)
    assert _chart(second, "overview_risk")["data"] == chart["data"]


def test_changed_control_follows_into_link():
    at = _open({"scenario": "width-bottleneck"})
    at.slider(key="cfg_alpha").set_value(1.5).run()
    link = _link_params(at)
    assert link["alpha"] == "1.5"
    assert link["scenario"] == "width-bottleneck"
    again = _open(link)
    assert _config(again).alpha == 1.5
    assert _config(again).width == scenarios.get("width-bottleneck").config().width


def test_lecture_mode_in_link():
    at = _open({**SMALL, "lecture": "1"})
    assert at.query_params["lecture"] == "1"
    assert _link_params(at)["lecture"] == "1"
    assert at.session_state["qv_lecture"] is True


def test_lecture_toggle_off_removes_param():
    at = _open({**SMALL, "lecture": "1"})
    at.toggle(key="qv_lecture").set_value(False).run()
    assert "lecture" not in at.query_params


def test_invalid_lecture_value_warns():
    at = _open({**SMALL, "lecture": "maybe"})
    warnings = [w.value for w in at.warning]
    assert any("lecture=maybe" in w and "allowed" in w for w in warnings), warnings
    assert "lecture" not in at.query_params


def test_scenario_and_lecture_not_unknown():
    at = _open({**SMALL, "lecture": "1", "scenario": "flat-spectrum"})
    warnings = [w.value for w in at.warning]
    assert not any("unknown" in w for w in warnings), warnings


def test_link_survives_page_switch():
    at = _open({"scenario": "one-at-a-time", "lecture": "1"}, "app_pages/theory.py")
    assert at.query_params["scenario"] == "one-at-a-time"
    assert at.query_params["lecture"] == "1"
    assert _config(at) == scenarios.get("one-at-a-time").config()
