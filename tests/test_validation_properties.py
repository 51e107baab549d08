"""Property-based tests (hypothesis) of validation, link parsing and budgets.

Inputs are what a hand-edited or truncated link can carry: any text for any
key, numbers out of range, NaN, infinities, empty values, over-long strings
and unknown keys. The properties: parsing never raises anything but
ConfigError, the resulting configuration is valid, valid values survive,
every rejection names its field and range, and a configuration survives the
round trip through link text.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from quadviz import budget
from quadviz.app import link_checks
from quadviz.app.controls import _url_text
from quadviz.cli import SIMULATE_FIELDS, build_parser, config_from_args
from quadviz.config import (
    FIELDS,
    MAX_SHOWN_CHARS,
    Config,
    ConfigError,
    config_from_mapping,
    parse_field,
)

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
SPECIAL_TEXTS = [
    "",
    " ",
    "nan",
    "NaN",
    "-nan",
    "inf",
    "-inf",
    "Infinity",
    "1e309",
    "-0",
    "0",
    "-1",
    "1e-320",
    "1e30",
    "2.5",
    "0x10",
    "1_000",
    "true",
    "None",
    "x" * 5000,
    "%00",
    "\x00",
    "١٢٣",
    "1e2",
    " 64 ",
    "[1]",
    "$x$",
    ":red[x]",
]
ALL_FIELDS = sorted(FIELDS)


def _number_text() -> st.SearchStrategy[str]:
    numbers = st.one_of(
        st.integers(min_value=-(10**12), max_value=10**12),
        st.floats(allow_nan=True, allow_infinity=True),
    )
    return numbers.map(str)


def _link_value() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(SPECIAL_TEXTS),
        _number_text(),
        st.text(max_size=60),
        st.sampled_from(
            [
                "unit-norm",
                "leading-one",
                "auto",
                "full",
                "reduced",
                "cpu",
                "cuda",
                "float32",
                "float64",
            ]
        ),
    )


def _link() -> st.SearchStrategy[dict[str, str]]:
    keys = st.one_of(st.sampled_from(ALL_FIELDS), st.text(min_size=1, max_size=20))
    return st.dictionaries(keys, _link_value(), max_size=12)


@st.composite
def _valid_config(draw) -> Config:
    """A valid Config with every field drawn from its range."""
    values = {}
    for name, spec in FIELDS.items():
        if draw(st.booleans()):
            continue
        if spec.choices is not None:
            values[name] = draw(st.sampled_from(spec.choices))
        elif spec.kind is int:
            high = int(min(spec.high, 10**9))
            values[name] = draw(st.integers(int(spec.low), high))
        else:
            values[name] = draw(
                st.floats(
                    spec.low,
                    spec.high,
                    exclude_min=spec.low_open,
                    exclude_max=spec.high_open,
                    allow_nan=False,
                )
            )
    try:
        return Config.create(**values)
    except ConfigError:
        assume(False)


@PROPERTY_SETTINGS
@given(_link())
def test_mapping_never_raises_and_is_valid(raw):
    config, errors = config_from_mapping(raw)
    config.validate()
    for err in errors:
        assert err.field in FIELDS
        assert "allowed" in str(err)


@PROPERTY_SETTINGS
@given(_link())
def test_mapping_keeps_unreported_fields(raw):
    config, errors = config_from_mapping(raw)
    reported = {err.field for err in errors}
    for name, text in raw.items():
        if name not in FIELDS or name in reported:
            continue
        try:
            value = parse_field(name, text)
        except ConfigError:
            pytest.fail(f"{name}={text!r} is invalid but was not reported")
        assert getattr(config, name) == value, name


@PROPERTY_SETTINGS
@given(_link())
def test_rejected_values_are_short(raw):
    _, errors = config_from_mapping(raw)
    for err in errors:
        if isinstance(err.value, str):
            assert len(err.value) <= MAX_SHOWN_CHARS + 3


@PROPERTY_SETTINGS
@given(st.sampled_from(ALL_FIELDS), _link_value())
def test_parse_field_raises_only_config_error(name, text):
    try:
        value = parse_field(name, text)
    except ConfigError as err:
        assert err.field == name
        return
    spec = FIELDS[name]
    if value is None:
        assert spec.optional
    elif spec.choices is not None:
        assert value in spec.choices
    else:
        assert math.isfinite(value)
        assert spec.low <= value <= spec.high


@PROPERTY_SETTINGS
@given(_valid_config())
def test_link_text_round_trip_is_exact(config):
    raw = {
        name: _url_text(getattr(config, name))
        for name in FIELDS
        if getattr(config, name) is not None
    }
    parsed, errors = config_from_mapping(raw)
    assert errors == []
    assert parsed == config


@PROPERTY_SETTINGS
@given(_valid_config())
def test_budget_estimate_is_finite(config):
    cost = budget.estimate(config)
    assert math.isfinite(cost.sgd_seconds) and cost.sgd_seconds > 0
    assert math.isfinite(cost.flow_seconds) and cost.flow_seconds > 0
    assert cost.sgd_bytes > 0
    assert cost.result_bytes > 0
    limits = budget.Limits()
    assert budget.decide_sgd(cost, limits).action in ("run", "confirm", "reject")
    assert budget.decide_flow(cost, limits).action in ("run", "confirm", "reject")


@PROPERTY_SETTINGS
@given(_valid_config(), st.integers(2, 10))
def test_budget_grows_with_steps(config, factor):
    assume(config.t_max is None and config.steps * factor <= FIELDS["steps"].high)
    longer = config.replace(steps=config.steps * factor)
    assert budget.sgd_seconds(longer) > budget.sgd_seconds(config)


@PROPERTY_SETTINGS
@given(
    st.dictionaries(
        st.one_of(st.sampled_from(ALL_FIELDS), st.text(min_size=1, max_size=80)),
        st.lists(_link_value(), min_size=1, max_size=8),
        max_size=10,
    )
)
def test_link_messages_are_escaped(query):
    messages = link_checks.link_messages(query, lambda key: query[key])
    repeated = [k for k, v in query.items() if len(v) > 1 and k in FIELDS]
    assert len(messages) >= len(repeated)
    for message in messages:
        assert "![" not in message
        assert "](" not in message
        assert len(message) < 2000


@PROPERTY_SETTINGS
@given(st.text(max_size=200))
def test_show_raw_escapes_punctuation(text):
    shown = link_checks.show_raw(text)
    if text.strip() == "":
        assert shown == "(empty)"
        return
    assert len(shown) <= 2 * (link_checks.MAX_SHOWN_CHARS + 1)
    escaped = False
    for ch in shown:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        else:
            assert ch not in "[]()!*_`$:<>#", shown


@PROPERTY_SETTINGS
@given(st.sampled_from(SIMULATE_FIELDS), _link_value())
def test_cli_flag_is_valid_or_config_error(name, text):
    assume(not text.startswith("-"))  # argparse reads it as another flag
    args = build_parser().parse_args(["simulate", "--" + name.replace("_", "-"), text])
    try:
        config = config_from_args(args, SIMULATE_FIELDS)
    except ConfigError as err:
        assert "allowed" in str(err)
        return
    config.validate()


@pytest.mark.parametrize(
    "raw",
    [
        {"d": "-5"},
        {"d": "0"},
        {"d": "1e30"},
        {"alpha": "nan"},
        {"lr": "inf"},
        {"d": ""},
        {"width": "abc"},
        {"normalization": "x" * 5000},
    ],
)
def test_bad_link_value_falls_back_to_default(raw):
    ((name, _text),) = raw.items()
    config, errors = config_from_mapping({**raw, "seeds": "2"})
    assert getattr(config, name) == FIELDS[name].default
    assert config.seeds == 2
    assert [err.field for err in errors] == [name]


def test_default_width_clamped_without_message():
    config, errors = config_from_mapping({"d": "8"})
    assert config.d == 8
    assert config.width == 8
    assert errors == []


def test_repeated_key_message_names_values():
    query = {"d": ["16", "32", "64"], "width": ["4"]}
    messages = link_checks.link_messages(query, lambda key: query[key])
    assert len(messages) == 1
    assert "d 3 times" in messages[0]
    assert "using the last value, 64" in messages[0]


def test_registered_key_is_not_unknown():
    link_checks.register_link_keys("test-only-key")
    query = {"test-only-key": ["1"], "bogus": ["2"]}
    messages = link_checks.link_messages(query, lambda key: query[key])
    assert len(messages) == 1
    assert messages[0].startswith("Ignored unknown link parameter bogus;")
