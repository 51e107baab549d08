"""Sidebar controls for every Config field, bound to the URL query string.

The link is read once per session, before any widget exists. Each value is
validated with :func:`quadviz.config.config_from_mapping`, and valid values go
into ``st.session_state`` under the widget keys. Each rejected or clamped
value gets a warning that names it, its allowed range and the value used
instead. After the widgets are read, the configuration in use is written back
to ``st.query_params``, so a copied link reproduces the screen.

Streamlit's own ``bind="query-params"`` is not used because it drops an
invalid URL value without telling the user (checked with Streamlit 1.67).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any

import streamlit as st

from quadviz import theory
from quadviz.app import link_checks
from quadviz.config import FIELDS, Config, ConfigError, config_from_mapping
from quadviz.teacher import spectrum

KEY_PREFIX = "cfg_"
CONFIG_KEY = "qv_config"
LINK_READ_KEY = "qv_link_read"
MESSAGES_KEY = "qv_link_messages"
SETTING_MESSAGES_KEY = "qv_setting_messages"

# Optional cap on one SGD run, counted in Gaussian numbers drawn
# (seeds * steps * batch * n, n = d for full SGD and r + m for the reduced
# path); above it the app shows the population flow alone. No cap by default,
# because the run budgets of quadviz.app.limits (QUADVIZ_MAX_BUDGET_S) bound
# every run's estimated time, of which this count is one part.
MAX_SGD_NUMBERS = float(os.environ.get("QUADVIZ_MAX_SGD_NUMBERS", "inf"))


@dataclass(frozen=True)
class Widget:
    """Sidebar widget of one Config field, with the range the sidebar offers.

    The range may be narrower than the Config range, for example the width only
    up to 1024. A link value outside it is clamped with a warning.
    """

    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    format: str | None = None
    label: str = ""


WIDGETS: dict[str, Widget] = {
    # The flow and reduced SGD cost the same at any d, so d goes up to 10^9;
    # the compute budget decides what runs at a given size.
    "d": Widget("number", 2, 10**9, 64, label="input dimension d"),
    "beta": Widget("slider", 0.0, 0.99, 0.01, label="rank exponent β (r = d^β)"),
    "r": Widget("number", 1, 4096, 1, label="teacher rank r (empty: from β)"),
    "alpha": Widget("slider", 0.0, 5.0, 0.05, label="spectrum exponent α"),
    "normalization": Widget("radio", label="teacher normalisation"),
    "width": Widget("slider", 1, 1024, 1, label="student width m"),
    "sigma0": Widget("number", 1e-4, 10.0, 0.01, "%.4g", label="initial scale σ₀"),
    "noise": Widget("number", 0.0, 10.0, 0.1, "%.3g", label="label noise σ_ε"),
    "lr": Widget("number", 1e-9, 10.0, 0.001, "%.4g", label="learning rate lr"),
    "batch": Widget("number", 1, 4096, 1, label="batch size B"),
    "steps": Widget("number", 1, 1_000_000, 1000, label="SGD steps"),
    "t_max": Widget(
        "number", 1e-6, 1e9, 1.0, "%.4g", label="horizon t (empty: lr · steps)"
    ),
    "points": Widget("slider", 2, 500, 1, label="output times"),
    "seeds": Widget("slider", 1, 16, 1, label="SGD seeds"),
    "seed": Widget("number", 0, 2**31 - 1, 1, label="random seed"),
    "device": Widget("select", label="device"),
    "dtype": Widget("select", label="SGD float type"),
    "method": Widget("select", label="SGD path"),
}

GROUPS = {
    "Teacher": ("d", "beta", "r", "alpha", "normalization"),
    "Student": ("width", "sigma0"),
    "Online SGD": ("lr", "batch", "steps", "seeds", "noise"),
}
ADVANCED = ("t_max", "points", "seed", "device", "dtype", "method")


def _widget(name: str) -> Widget:
    """Widget of a field, or a plain one for a field that WIDGETS lacks."""
    if name in WIDGETS:
        return WIDGETS[name]
    spec = FIELDS[name]
    if spec.choices is not None:
        return Widget("select", label=name)
    return Widget("number", spec.low, spec.high, 1, label=name)


def _advanced_fields() -> list[str]:
    """ADVANCED plus every Config field that no group lists."""
    grouped = {name for names in GROUPS.values() for name in names}
    extra = [n for n in FIELDS if n not in grouped and n not in ADVANCED]
    return [name for name in ADVANCED if name in FIELDS] + extra


def widget_key(name: str) -> str:
    """Session-state key of the widget of Config field ``name``."""
    return KEY_PREFIX + name


def _show(name: str, value: Any) -> str:
    if value is None:
        return "r = d^β" if name == "r" else "t = lr · steps"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _url_text(value: Any) -> str:
    """Link text of a value; floats use the shortest text that parses back to
    the same float, so a link reproduces the settings exactly."""
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    return str(value)


def _clamp(name: str, value: Any) -> tuple[Any, str | None]:
    """Clamp ``value`` to the sidebar range of ``name``.

    Returns the value and a warning text, or None as text when unchanged.
    """
    widget = _widget(name)
    if value is None or widget.low is None or isinstance(value, str):
        return value, None
    kind = FIELDS[name].kind
    if value < widget.low:
        clamped, side = kind(widget.low), "smallest"
    elif value > widget.high:
        clamped, side = kind(widget.high), "largest"
    else:
        return value, None
    message = (
        f"Clamped {name}={_show(name, value)} from the link to "
        f"{_show(name, clamped)}, the {side} value the sidebar offers"
    )
    return clamped, message


def _read_link() -> list[str]:
    """Validate the URL query values and store them under the widget keys."""
    raw = {name: st.query_params[name] for name in st.query_params if name in FIELDS}
    messages = link_checks.link_messages(st.query_params, st.query_params.get_all)
    if not raw:
        return messages
    config, errors = config_from_mapping(raw)
    messages += [_rejection(err, config) for err in errors]
    for name in raw:
        value, note = _clamp(name, getattr(config, name))
        if note:
            messages.append(note)
        st.session_state[widget_key(name)] = value
    return messages


def _rejection(err: ConfigError, config: Config) -> str:
    used = getattr(config, err.field, None) if err.field in FIELDS else None
    return (
        f"Ignored {err.field}={link_checks.show_raw(err.value)} from the link: "
        f"allowed {err.allowed}; "
        f"using {_show(err.field, used)}"
    )


def _init_state() -> None:
    """Read the link on the first run of a session, then fill missing defaults."""
    if not st.session_state.get(LINK_READ_KEY):
        st.session_state[LINK_READ_KEY] = True
        st.session_state[MESSAGES_KEY] = _read_link()
    for name, spec in FIELDS.items():
        st.session_state.setdefault(widget_key(name), spec.default)


def _draw_widget(name: str) -> Any:
    """Create the widget of one field, which takes its value from session state."""
    widget, spec = _widget(name), FIELDS[name]
    key, label, help_text = widget_key(name), widget.label, spec.help
    if widget.kind == "radio":
        return st.radio(label, spec.choices, key=key, help=help_text, horizontal=True)
    if widget.kind == "select":
        return st.selectbox(label, spec.choices, key=key, help=help_text)
    number = spec.kind
    bounds = dict(
        min_value=number(widget.low),
        max_value=number(widget.high),
        step=number(widget.step),
    )
    if widget.kind == "slider":
        return st.slider(label, key=key, help=help_text, **bounds)
    extra = {"format": widget.format} if widget.format else {}
    if spec.optional:
        extra["value"] = None
    return st.number_input(label, key=key, help=help_text, **bounds, **extra)


def _step_size_note(config: Config) -> None:
    """Caption with lr · d / B and the estimated stability limit of SGD."""
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    limit = theory.lr_stability_limit(config.d, config.batch, lam)
    scaled = config.lr * config.d / config.batch
    scaled_limit = limit * config.d / config.batch
    text = (
        f"lr · d / B = {scaled:.3g}; estimated stability limit "
        f"lr < {limit:.3g} (lr · d / B < {scaled_limit:.3g})"
    )
    if config.lr > limit:
        st.warning(f"Step size above the stability limit: {text}. SGD may diverge.")
    elif config.lr > 0.7 * limit:
        st.caption(f":orange[{text}]")
    else:
        st.caption(text)


def _write_link(config: Config) -> None:
    """Put the configuration in use into the URL, changing only what differs."""
    for f in fields(config):
        value = getattr(config, f.name)
        current = st.query_params.get(f.name)
        if value is None:
            if current is not None:
                del st.query_params[f.name]
        elif current != _url_text(value):
            st.query_params[f.name] = _url_text(value)


def sidebar() -> Config:
    """Draw the sidebar controls and return the validated configuration.

    Also stores the configuration under ``st.session_state[CONFIG_KEY]`` for
    the pages, keeps the URL in sync and collects the messages that
    :func:`show_messages` displays.
    """
    _init_state()
    values: dict[str, Any] = {}
    with st.sidebar:
        for group, names in GROUPS.items():
            st.subheader(group)
            for name in names:
                values[name] = _draw_widget(name)
                if name == "lr":
                    placeholder = st.empty()
        with st.expander("Output and numerics"):
            for name in _advanced_fields():
                values[name] = _draw_widget(name)
    config, errors = config_from_mapping(values)
    with placeholder.container():
        _step_size_note(config)
    st.session_state[CONFIG_KEY] = config
    st.session_state[SETTING_MESSAGES_KEY] = [
        f"Invalid setting {err.field}={_show(err.field, err.value)}: allowed "
        f"{err.allowed}; using {_show(err.field, getattr(config, err.field, None))}"
        for err in errors
    ]
    _write_link(config)
    return config


def show_messages() -> None:
    """Warn about link values that were ignored or clamped, and bad settings.

    Link messages are shown on the first run of a session only.
    """
    for message in st.session_state.pop(MESSAGES_KEY, []):
        st.warning(message)
    for message in st.session_state.get(SETTING_MESSAGES_KEY, []):
        st.warning(message)


def current_config() -> Config:
    """Configuration chosen in the sidebar on this run."""
    config = st.session_state.get(CONFIG_KEY)
    if config is None:
        return sidebar()
    return config
