"""Scaling laws: sweeps over alpha, width and d, with fitted exponents."""

import math

import streamlit as st

from quadviz import scaling, sweeps
from quadviz.app import plotly_chart, scaling_cache
from quadviz.config import FIELDS, Config
from quadviz.scaling_figures import (
    compute_figure,
    escape_index_figure,
    risk_sweep_figure,
    run_label,
    samples_figure,
    width_floor_figure,
)

# Page settings: widget key -> default. They are the page's own, apart from
# the sidebar, because scaling laws need many directions (large r) and
# large d, which the sidebar's defaults do not have.
DEFAULTS = {
    "scaling_d": 10**6,
    "scaling_r": 128,
    "scaling_sigma0": 0.1,
    "scaling_lr_scale": 0.1,
    "scaling_points": 60,
    "scaling_seed": 0,
    "scaling_alphas": [0.75, 1.0, 1.5],
    "scaling_alpha_sgd": False,
    "scaling_ladder_alpha": 1.0,
    "scaling_dims": [256, 1024, 4096],
}
DIMENSIONS = [10**k for k in range(3, 10)]
RANKS = [16, 32, 64, 128, 256, 512, 1024]
ALPHAS = [0.6, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0]
SGD_DIMENSIONS = [128, 256, 512, 1024, 2048, 4096, 8192]
# Online SGD on the samples chart: r = m = 8, B = d, lr d / B = 0.05 (a
# third of the measured stability limit), two seeds.
SAMPLES_RANK = 8
SAMPLES_LR_SCALE = 0.05
SAMPLES_SEEDS = 2
SMALLEST_LADDER_WIDTH = 4

for key, value in DEFAULTS.items():
    st.session_state.setdefault(key, value)


def _format_power(n: int) -> str:
    return f"10^{round(math.log10(n))}"


def _settings() -> Config:
    """Shared page settings; returns the base configuration of the sweeps."""
    with st.expander("Sweep settings", expanded=False):
        cols = st.columns(3)
        d = cols[0].select_slider(
            "input dimension d", DIMENSIONS, key="scaling_d",
            format_func=_format_power,
            help="The flow costs the same at every d; escape times grow like ln d.",
        )
        r = cols[1].selectbox("teacher rank r (width m = r unless swept)", RANKS,
                              key="scaling_r")
        sigma0 = cols[2].number_input(
            "initial scale σ₀", min_value=1e-4, max_value=1.0, format="%.4g",
            key="scaling_sigma0",
        )
        cols = st.columns(3)
        scale = cols[0].number_input(
            "lr · d / B", min_value=1e-3, max_value=0.15, format="%.3g",
            key="scaling_lr_scale",
            help="Step size in units of B / d. Samples n = B t / lr = d t / (lr·d/B).",
        )
        points = cols[1].slider("output times per run", 20, 200, key="scaling_points")
        seed = cols[2].number_input("random seed", min_value=0, step=1,
                                    key="scaling_seed")
    batch = min(d, int(FIELDS["batch"].high))
    return Config.create(
        d=d, r=r, width=r, sigma0=sigma0, batch=batch, lr=scale * batch / d,
        points=points, seed=int(seed), seeds=1,
    )


def _window_control(sweep) -> dict:
    """Optional user fit window (flow time), the same for every run."""
    mode = st.radio("fit window", ["automatic", "choose"], horizontal=True,
                    key="scaling_window_mode")
    if mode == "automatic":
        return {}
    times = sorted({float(t) for run in sweep.runs for t in run.flow.time if t > 0})
    grid = [times[i] for i in range(0, len(times), max(1, len(times) // 80))]
    lo, hi = st.select_slider(
        "fit window t", options=grid, value=(grid[len(grid) // 4],
                                             grid[3 * len(grid) // 4]),
        format_func=lambda t: f"{t:.3g}", key="scaling_window",
    )
    return {run.value: (lo, hi) for run in sweep.runs}


def _download(sweep, name: str) -> None:
    st.download_button(
        "Download the table (CSV)", sweeps.rows_to_csv(sweep.rows()),
        file_name=f"quadviz-sweep-{name}.csv", mime="text/csv",
        key=f"scaling_csv_{name}",
    )


def _notes(sweep) -> None:
    for note in sweep.notes:
        st.caption(note)


def alpha_section(base: Config) -> tuple:
    st.header("Risk against time for several α")
    alphas = st.multiselect("α values", ALPHAS, key="scaling_alphas")
    with_sgd = st.checkbox(
        "add online SGD where affordable (reduced coordinates when d ≥ 8 (r + m))",
        key="scaling_alpha_sgd",
    )
    if not alphas:
        st.info("Choose at least one α.")
        return None, {}
    spec = sweeps.SweepSpec(base, "alpha", tuple(sorted(alphas)), sgd=with_sgd)
    sweep = scaling_cache.sweep(spec, "Sweep over α", "scaling_run_alpha")
    if sweep is None:
        return None, {}
    windows = _window_control(sweep)
    fits = {
        (run.value, "flow"): scaling.fit_risk(run, "alpha", "flow",
                                              windows.get(run.value))
        for run in sweep.runs
    }
    plotly_chart(risk_sweep_figure(sweep, fits), key="scaling_risk_alpha")
    st.caption(
        "Population flow (exact, solid) from one random W₀ per α, with m = r. "
        "Dashed grey: the d → ∞ slope −(2α−1)/α from the start of the fit "
        "window; dash-dotted: the least-squares fit on that window."
    )
    _notes(sweep)
    _download(sweep, "alpha")
    return sweep, windows


def escape_section(sweep) -> None:
    st.header("Escape time against direction index")
    values = [run.value for run in sweep.runs]
    value = st.selectbox("α", values, index=len(values) // 2,
                         key="scaling_escape_alpha")
    run = next(run for run in sweep.runs if run.value == value)
    plotly_chart(escape_index_figure(run, "alpha"), key="scaling_escape")
    st.caption(
        "Direction j escapes its plateau when ρⱼ crosses 1/2. The logistic "
        "prediction is tⱼ = ln(λⱼ / zⱼ(0) − 1) / (8 λⱼ), which grows like "
        "j^α ln d; competition between directions delays the late ones."
    )


def width_section(base: Config):
    st.header("Width: the floor and loss against compute")
    alpha = st.select_slider("α of the width ladder", ALPHAS,
                             key="scaling_ladder_alpha")
    r = base.teacher_rank
    widths = []
    m = SMALLEST_LADDER_WIDTH
    while m <= r:
        widths.append(m)
        m *= 2

    spec = sweeps.SweepSpec(base.replace(alpha=alpha), "width", tuple(widths))
    sweep = scaling_cache.sweep(spec, "Sweep over width", "scaling_run_width")
    if sweep is None:
        return None, None

    front = scaling.frontier(sweep)
    front_fit = scaling.fit_frontier(front)
    plotly_chart(compute_figure(sweep, front, front_fit), key="scaling_compute")
    st.caption(
        "Curves from the exact population flow: time t maps to samples "
        "n = B t / lr and compute C = 4 d m n flops of online SGD updates. "
        "The frontier is the lowest risk any width reaches at that compute. "
        "Its exponent −(2α−1)/(1+α) is a conjecture, inferred from "
        "R ≈ max(m^(1−2α), t^(−(2α−1)/α)) with C ∝ m t, not a theorem."
    )

    left, right = st.columns(2)
    with left:
        plotly_chart(width_floor_figure(sweep), key="scaling_width_floor")
    with right:
        st.markdown(
            "A student of width m < r learns the m strongest directions, and "
            "the flow stops at the floor Σ over j > m of λⱼ², which falls like "
            "m^(1−2α). Risk at the horizon (6 times the last predicted escape) "
            "beside the floor:"
        )
        st.dataframe(_floor_table(sweep), hide_index=True)
    _download(sweep, "width")
    return sweep, front_fit


def _floor_table(sweep) -> list[dict]:
    return [
        {
            "width m": row["width"],
            "risk at horizon": f"{row['risk']:.4g}",
            "floor": f"{row['floor']:.4g}" if row["floor"] > 0 else "0 (m ≥ r)",
            "horizon t": f"{row['time']:.3g}",
        }
        for row in scaling.final_risks(sweep)
    ]


def samples_section(seed: int):
    st.header("Online SGD against samples at several d")
    dims = st.multiselect("dimensions d", SGD_DIMENSIONS, key="scaling_dims")
    if not dims:
        st.info("Choose at least one d.")
        return None
    smallest = min(dims)
    base = Config.create(
        d=smallest, r=SAMPLES_RANK, width=SAMPLES_RANK, batch=smallest,
        lr=SAMPLES_LR_SCALE, seeds=SAMPLES_SEEDS, points=40, seed=seed,
    )
    spec = sweeps.SweepSpec(base, "d", tuple(sorted(dims)), sgd=True,
                            keep_lr_scale=True, batch_equals_d=True)
    sweep = scaling_cache.sweep(spec, "Online SGD at several d", "scaling_run_dims")
    if sweep is None:
        return None
    per_dimension = st.toggle("samples per dimension n / d", value=True,
                              key="scaling_per_dimension")
    plotly_chart(samples_figure(sweep, per_dimension), key="scaling_samples")
    st.caption(
        f"r = m = {SAMPLES_RANK}, batch B = d, lr · d / B = {SAMPLES_LR_SCALE}, "
        f"mean of {SAMPLES_SEEDS} seeds; the flow from the same W₀ dotted. "
        "Stability forces lr below about 0.15 B / d, so reaching time t takes "
        "n = B t / lr ∝ d t samples: against n / d the curves nearly collapse, "
        "and what is left is the ln d in the escape times."
    )
    _notes(sweep)
    _download(sweep, "d")
    return sweep


def exponent_table(alpha_sweep, windows, front_fit, samples_sweep) -> None:
    st.header("Fitted against predicted exponents")
    rows = []
    if alpha_sweep is not None:
        rows += scaling.exponent_rows(alpha_sweep, windows)
    if front_fit is not None:
        rows.append(front_fit.row())
    if samples_sweep is not None:
        rows += [row for row in scaling.exponent_rows(samples_sweep)
                 if row["quantity"] == "escape time vs j"]
    if not rows:
        return
    st.dataframe(_table(rows), hide_index=True, width="stretch")
    st.markdown(
        "**Why finite sizes give steeper slopes.** Direction j escapes at "
        "tⱼ = ln(λⱼ / zⱼ(0) − 1) / (8 λⱼ). The ratio λⱼ / zⱼ(0) shrinks "
        "as j grows, so the logarithm grows more slowly than j^α ln d: later "
        "directions escape relatively earlier, the risk falls faster, and the "
        "fitted slope is steeper than the d → ∞ value −(2α−1)/α. With "
        "ℓ = ln(λ_J / z₀ − 1) at the last direction J of the window, the local "
        "slope is about −(2α−1) / (α (1 − 1/ℓ)) (column *log bound*). The "
        "finite rank r steepens the end of the window further; the additive "
        "model keeps both effects but ignores the competition between "
        "directions, so the flow lies between it and the d → ∞ value."
    )


def _table(rows: list[dict]) -> list[dict]:
    return [
        {
            "quantity": row["quantity"],
            "run": _run_text(row),
            "method": row["method"],
            "fitted": _fitted_text(row),
            "predicted": f"{_number_text(row['predicted'])} = {row['prediction']}",
            "log bound": _number_text(row["finite_size"]),
            "additive model": _number_text(row["additive"]),
            "window": _window_text(row),
        }
        for row in rows
    ]


def _number_text(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"


def _fitted_text(row: dict) -> str:
    if row["fitted"] is None:
        return "none"
    return f"{row['fitted']:.3f} ± {row['stderr']:.3f}"


def _run_text(row: dict) -> str:
    if row["value"] is None:
        return f"{row['param']} ladder"
    return run_label(row["param"], row["value"])


def _window_text(row: dict) -> str:
    if row["window_lo"] is None:
        return row["window"]
    return f"[{row['window_lo']:.3g}, {row['window_hi']:.3g}], {row['window']}"


def reconstruction_section() -> None:
    st.header("Reconstruction: loss against compute at d = 3200, r = 2400")
    plan = sweeps.reconstruction()
    for note in plan.notes:
        st.markdown(f"- {note}")
    sweep = scaling_cache.sweep(plan.flow, "Reconstruction, population flow",
                                "scaling_run_reconstruction_flow")
    if sweep is None:
        return
    front = scaling.frontier(sweep)
    fit = scaling.fit_frontier(front)
    plotly_chart(compute_figure(sweep, front, fit), key="scaling_reconstruction_flow")
    st.caption(
        "Population flow at the full size d = 3200, r = 2400, one random W₀ per "
        "width. Compute C = 4 d m n with n = B t / lr samples of online SGD "
        "with B = d."
    )
    _download(sweep, "reconstruction-flow")
    if plan.sgd is None:
        return
    sgd_sweep = scaling_cache.sweep(plan.sgd, "Reconstruction, online SGD",
                                    "scaling_run_reconstruction_sgd")
    if sgd_sweep is not None:
        front = scaling.frontier(sgd_sweep, "sgd")
        fit = scaling.fit_frontier(front)
        plotly_chart(compute_figure(sgd_sweep, front, fit, "sgd"),
                     key="scaling_reconstruction_sgd")
        _notes(sgd_sweep)
        _download(sgd_sweep, "reconstruction-sgd")


st.title("Scaling laws")
st.markdown(
    "With λⱼ ∝ j^(−α), the teacher's directions emerge one after another at "
    "times that grow like j^α ln d. Summing what is still missing, "
    "Σ over unlearned j of λⱼ², turns this staircase into power laws of the "
    "risk in time, samples and width. Each sweep below varies one setting; "
    "the exact population flow does the heavy lifting and online SGD is "
    "added where it is affordable."
)
st.caption(
    "This page uses its own settings below; the sidebar applies to the other "
    "pages. Time t = lr · steps."
)
base_config = _settings()
alpha_sweep, fit_windows = alpha_section(base_config)
if alpha_sweep is not None:
    escape_section(alpha_sweep)
width_sweep, frontier_fit = width_section(base_config)
samples_sweep = samples_section(base_config.seed)
exponent_table(alpha_sweep, fit_windows, frontier_fit, samples_sweep)
reconstruction_section()
