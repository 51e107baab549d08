"""Scenario picker, the ``scenario=NAME`` link parameter and the gallery.

Choosing a scenario sets every sidebar control at once. The session keeps
the name of the scenario last chosen (its base); after the user changes a
control the base stays, and the notes list the settings that differ from it.

A link's ``scenario`` is applied before the link's own control values, so a
link that names a scenario and some changed controls reproduces both. A
link without ``scenario`` gets the scenario whose settings it matches
exactly, if any; an empty link therefore opens on the default scenario.
"""

from __future__ import annotations

import streamlit as st

from quadviz import scenarios
from quadviz.app import cache, controls, link_checks, plotly_chart
from quadviz.app.lecture import enabled as lecture_enabled
from quadviz.config import FIELDS, Config, config_from_mapping
from quadviz.experiment import Experiment
from quadviz.scenario_figures import escape_against_dimension

SCENARIO_KEY = "qv_scenario"
LINK_PARAM = "scenario"
LINK_READ_KEY = "qv_scenario_link_read"
PLACEHOLDER = "custom settings"
# Columns of the gallery on the Overview page.
GALLERY_COLUMNS = 3

link_checks.register_link_keys(LINK_PARAM)


# Page files and titles, by the url_path that app.py gives each page.
PAGE_FILES = {
    "sgd": "app_pages/sgd_dynamics.py",
    "riccati": "app_pages/riccati_flow.py",
    "recovery": "app_pages/signal_recovery.py",
}
PAGE_TITLES = {
    "sgd": "SGD dynamics",
    "riccati": "Riccati flow",
    "recovery": "Signal recovery",
}


def _label(field: str) -> str:
    widget = controls.WIDGETS.get(field)
    return widget.label if widget is not None else field


def _title(name: str | None) -> str:
    return scenarios.get(name).title if name else PLACEHOLDER


def apply(name: str) -> None:
    """Set every control to the scenario's value and make it the base.

    Safe in a widget callback and before the widgets of a run exist.
    """
    config = scenarios.get(name).config()
    for field in FIELDS:
        st.session_state[controls.widget_key(field)] = getattr(config, field)
    st.session_state[SCENARIO_KEY] = name


def _link_config() -> Config:
    """Configuration that the link's control values describe (defaults elsewhere)."""
    raw = {name: st.query_params[name] for name in st.query_params if name in FIELDS}
    config, _ = config_from_mapping(raw)
    return config


def _read_link() -> str | None:
    """Apply ``?scenario=`` on the first run; return a warning if it is invalid."""
    raw = st.query_params.get(LINK_PARAM)
    if raw is not None and raw in scenarios.SCENARIOS:
        apply(raw)
        return None
    st.session_state[SCENARIO_KEY] = scenarios.matching(_link_config())
    if raw is None:
        return None
    known = ", ".join(scenarios.SCENARIOS)
    shown = link_checks.show_raw(raw)
    return f"Ignored scenario={shown} from the link: allowed one of {known}"


def sidebar() -> None:
    """Draw the scenario picker at the top of the sidebar.

    In lecture mode the previous and next scenario buttons go at the top of
    the page as well. On the first run of a session the link's scenario is
    applied first; this must run before :func:`quadviz.app.controls.sidebar`
    reads the link's control values.
    """
    if not st.session_state.get(LINK_READ_KEY):
        st.session_state[LINK_READ_KEY] = True
        message = _read_link()
        if message:
            st.warning(message)
    st.session_state.setdefault(SCENARIO_KEY, None)
    st.sidebar.selectbox(
        "Scenario",
        list(scenarios.SCENARIOS),
        key=SCENARIO_KEY,
        format_func=_title,
        placeholder=PLACEHOLDER,
        on_change=_on_pick,
        help="Sets every control at once. The notes on the Overview page say "
        "what to notice.",
    )
    lecture_bar()


def _on_pick() -> None:
    name = st.session_state.get(SCENARIO_KEY)
    if name:
        apply(name)


def write_link() -> None:
    """Keep the base scenario in the URL, or remove ``scenario`` when there is none."""
    name = st.session_state.get(SCENARIO_KEY)
    if name:
        if st.query_params.get(LINK_PARAM) != name:
            st.query_params[LINK_PARAM] = name
    elif LINK_PARAM in st.query_params:
        del st.query_params[LINK_PARAM]


def current() -> scenarios.Scenario | None:
    """Return the base scenario of this session, or None for custom settings."""
    name = st.session_state.get(SCENARIO_KEY)
    return scenarios.get(name) if name else None


@st.cache_data(max_entries=16, ttl=3600, show_spinner=False)
def _signature(name: str, _experiment: Experiment, key: tuple) -> scenarios.Signature:
    # The experiment is not hashed (leading underscore); ``key`` is its
    # configuration, which determines it.
    return scenarios.get(name).check(_experiment)


def _config_key(config: Config) -> tuple:
    return tuple((name, getattr(config, name)) for name in FIELDS)


def notes(config: Config, result: Experiment | None = None) -> None:
    """Title, what to notice and the measured signature of the base scenario.

    When the controls differ from the scenario, the measured line is left
    out (it checks the scenario's own settings) and a button restores them.
    """
    scenario = current()
    if scenario is None:
        return
    changed = scenario.differences(config)
    with st.container(border=True):
        st.markdown(f"**Scenario: {scenario.title}.** {scenario.notice}")
        if changed:
            names = ", ".join(_label(n) for n in changed)
            st.caption(f"Changed since the scenario was chosen: {names}.")
            st.button(
                "Restore the scenario's settings",
                key="gallery_restore",
                on_click=apply,
                args=(scenario.name,),
            )
        elif result is not None:
            signature = _signature(scenario.name, result, _config_key(config))
            mark = "✓" if signature.ok else "✗"
            st.caption(f"{mark} Measured: {signature.text}")
        if scenario.page in PAGE_FILES:
            st.page_link(
                PAGE_FILES[scenario.page],
                label=f"The {PAGE_TITLES[scenario.page]} page shows it in detail",
                icon=":material/arrow_forward:",
            )


def _step(offset: int) -> None:
    names = list(scenarios.SCENARIOS)
    name = st.session_state.get(SCENARIO_KEY) or scenarios.DEFAULT_SCENARIO
    apply(names[(names.index(name) + offset) % len(names)])


def lecture_bar() -> None:
    """Previous and next scenario buttons, with the keys P and N, in lecture mode."""
    if not lecture_enabled():
        return
    left, right, title = st.columns([1, 1, 2], vertical_alignment="center")
    left.button(
        "◀ Previous (P)",
        key="gallery_previous",
        on_click=_step,
        args=(-1,),
        shortcut="p",
        width="stretch",
    )
    right.button(
        "Next (N) ▶",
        key="gallery_next",
        on_click=_step,
        args=(1,),
        shortcut="n",
        width="stretch",
    )
    title.markdown(f"**{_title(st.session_state.get(SCENARIO_KEY))}**")


def cards() -> None:
    """Draw the gallery: one card per scenario with its notes and an Open button."""
    st.subheader("Scenarios")
    st.caption(
        "Each scenario sets every control at once; its name is kept in the "
        "link as scenario=NAME."
    )
    names = list(scenarios.SCENARIOS)
    base = st.session_state.get(SCENARIO_KEY)
    for start in range(0, len(names), GALLERY_COLUMNS):
        columns = st.columns(GALLERY_COLUMNS)
        for column, name in zip(columns, names[start : start + GALLERY_COLUMNS]):
            scenario = scenarios.get(name)
            with column.container(border=True):
                st.markdown(f"**{scenario.title}**")
                st.caption(scenario.notice)
                st.button(
                    "Open" if name != base else "Open again",
                    key=f"gallery_open_{name}",
                    on_click=apply,
                    args=(name,),
                    type="primary" if name == base else "secondary",
                )


def figures(config: Config) -> None:
    """Figures that a scenario needs beyond the hero figure.

    Dimension matters: the escape time of each direction against d, from
    population flows at d, 10 d, 100 d, ...
    """
    scenario = current()
    if scenario is None or not scenario.ladder:
        return
    ladder = cache.dimension_ladder(config)
    if ladder is None:
        return
    plotly_chart(escape_against_dimension(ladder, config), key="gallery_escape_d")
    st.caption(
        "Population flows with r, α, m and σ₀ fixed and d growing tenfold, each "
        "from its own random start. Dashed: the logistic prediction with the "
        "expected initial overlap σ₀² m / d."
    )
