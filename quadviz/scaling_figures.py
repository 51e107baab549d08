"""Plotly figures of sweeps: risk for several alpha, the width floor, escape
times, loss against compute with its frontier, and SGD risk against samples.

Every builder takes a :class:`quadviz.sweeps.Sweep` (and fits from
:mod:`quadviz.scaling`) and returns a ``go.Figure`` with SVG scatter traces
and log axes ticked at powers of ten, in the style of
:mod:`quadviz.figures`. The flow is drawn solid, SGD with markers, guide
slopes dashed grey and fitted slopes dash-dotted.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from quadviz import scaling, theory
from quadviz.figures import (
    ESCAPE_COLOR,
    FIT_COLOR,
    GUIDE_COLOR,
    LADDER_SCALE,
    RISK_HEIGHT,
    _base_layout,
    _clip_positive,
    _floor_for,
    _format_count,
    _log_axis,
)
from quadviz.sweeps import Run, Sweep

FRONTIER_COLOR = "#111111"
# Legend to the right of the plot area, for full-width figures whose curves
# fill every corner.
LEGEND_OUTSIDE = dict(x=1.02, y=1.0, xanchor="left", yanchor="top")
# Decades shown below the risk at the end of a fit window; see _y_range.
TRIM_DECADES = 2.0
METHOD_NAMES = {"flow": "population flow", "sgd": "online SGD"}
PARAM_SYMBOLS = {
    "alpha": "α",
    "width": "m",
    "d": "d",
    "sigma0": "σ₀",
    "lr": "lr",
    "batch": "B",
}


def run_label(param: str, value: float) -> str:
    """Legend text of one run, such as "α = 1.5" or "d = 10⁶"."""
    symbol = PARAM_SYMBOLS.get(param, param)
    if param in ("d", "width", "batch"):
        return f"{symbol} = {_format_count(int(value))}"
    return f"{symbol} = {value:g}"


def _run_colors(count: int) -> list[str]:
    """Distinct colours along LADDER_SCALE, avoiding its pale yellow end."""
    if count == 1:
        return sample_colorscale(LADDER_SCALE, [0.0])
    return sample_colorscale(LADDER_SCALE, list(np.linspace(0.0, 0.8, count)))


def _sweep_risks(sweep: Sweep) -> list[np.ndarray]:
    """Collect the flow risk and, where SGD ran, the SGD risk of every run."""
    arrays = []
    for run in sweep.runs:
        arrays.append(run.flow.risk)
        if run.sgd is not None and run.sgd.time.size:
            arrays.append(run.sgd.risk)
    return arrays


def _y_range(values: np.ndarray, low: float | None) -> tuple[np.ndarray, dict]:
    """Values kept for the ticks and the y-axis range, cut at ``low``.

    After the last direction is learned the risk collapses by many decades,
    which would squash the power-law stretch. So the axis stops TRIM_DECADES
    below the end of the fit window (``low``), and the collapse leaves the
    frame at the bottom.
    """
    values = values[np.isfinite(values) & (values > 0)]
    if low is None or not values.size or low <= values.min():
        return values, {}
    shown = values[values >= low]
    top = math.log10(shown.max()) + 0.1
    return shown, dict(range=[math.log10(low), top])


def _positive(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = (t > 0) & np.isfinite(y)
    return t[keep], y[keep]


def _line_trace(x, y, name, color, group, dash=None, width=2.5, legend=True):
    return go.Scatter(
        x=x,
        y=y,
        mode="lines",
        line=dict(color=color, width=width, dash=dash),
        name=name,
        legendgroup=group,
        showlegend=legend,
        hovertemplate="%{x:.3g}: %{y:.3g}<extra>" + name + "</extra>",
    )


def _sgd_trace(x, y, name, color, group):
    return go.Scatter(
        x=x,
        y=y,
        mode="markers",
        marker=dict(symbol="circle-open", size=7, color=color, line=dict(width=1.5)),
        name=name,
        legendgroup=group,
        hovertemplate="%{x:.3g}: %{y:.3g}<extra>" + name + "</extra>",
    )


# ---------------------------------------------------------------- risk vs time


def _guide_and_fit(
    fit: scaling.ExponentFit, y_at: callable, color: str, group: str
) -> list[go.Scatter]:
    """Guide slope (anchored at the window start) and fitted slope of one run."""
    if not fit.fit.ok:
        return []
    t0, t1 = fit.fit.t_lo, fit.fit.t_hi
    t = np.geomspace(t0, t1, 20)
    traces = []
    if math.isfinite(fit.predicted):
        y0 = y_at(t0)
        traces.append(
            _line_trace(
                t, y0 * (t / t0) ** fit.predicted,
                f"guide {fit.predicted:.2f}", GUIDE_COLOR, group, "dash", 1.5,
            )
        )
    traces.append(
        _line_trace(
            t, fit.fit.predict(t),
            f"fit {fit.fit.slope:.2f} ± {fit.fit.stderr:.2f}", color, group,
            "dashdot", 2.0,
        )
    )
    return traces


def _interpolator(t: np.ndarray, y: np.ndarray):
    t, y = _positive(t, y)
    keep = y > 0

    def y_at(x: float) -> float:
        return float(np.exp(np.interp(np.log(x), np.log(t[keep]), np.log(y[keep]))))

    return y_at


def risk_sweep_figure(
    sweep: Sweep, fits: dict[tuple[float, str], scaling.ExponentFit]
) -> go.Figure:
    """Risk against time t for every run on log-log axes.

    ``fits`` maps (value, method) to a risk fit; each run gets its guide
    slope (the d -> infinity exponent, anchored at the window start) and
    its fitted slope over the fit window. SGD, where it ran, is drawn as
    open markers in the run's colour.
    """
    fig = go.Figure()
    colors = _run_colors(len(sweep.runs))
    arrays = _sweep_risks(sweep)
    floor = _floor_for(*arrays)
    times = []
    for run, color in zip(sweep.runs, colors):
        label = run_label(sweep.param, run.value)
        group = f"run-{run.value:g}"
        t, y = _positive(run.flow.time, run.flow.risk[0])
        times.append(t)
        fig.add_trace(_line_trace(t, _clip_positive(y, floor), f"{label}, flow",
                                  color, group))
        if run.sgd is not None and run.sgd.time.size:
            ts, ys = _positive(run.sgd.time, run.sgd.risk_mean())
            fig.add_trace(_sgd_trace(ts, _clip_positive(ys, floor),
                                     f"{label}, SGD", color, group))
        fit = fits.get((run.value, "flow"))
        if fit is not None:
            fig.add_traces(_guide_and_fit(fit, _interpolator(t, y), color, group))
    values = np.maximum(np.concatenate([np.ravel(a) for a in arrays]), floor)
    ends = [
        fit.fit.predict(np.array([fit.fit.t_hi]))[0]
        for fit in fits.values() if fit.fit.ok
    ]
    low = min(ends) * 10**-TRIM_DECADES if ends else None
    values, y_range = _y_range(values, low)
    fig.update_layout(
        **_base_layout("Risk against time", f"sweep-risk-{sweep.param}"),
        height=RISK_HEIGHT,
        hovermode="closest",
        xaxis=_log_axis("time t = lr · steps", np.concatenate(times)),
        yaxis=dict(_log_axis("risk ‖M − Q‖²_F", values), **y_range),
    )
    fig.update_layout(legend=LEGEND_OUTSIDE)
    return fig


# ---------------------------------------------------------------- width floor


def width_floor_figure(sweep: Sweep) -> go.Figure:
    """Final risk of the flow against width m < r, beside sum_{j>m} lambda_j^2.

    The floor is drawn for every m from the smallest width to r - 1, and the
    guide m^(1 - 2 alpha) goes through it at the smallest width. Widths
    m >= r have no floor (their risk tends to zero) and are left out.
    """
    first = sweep.runs[0]
    alpha, r, lam = first.config.alpha, first.config.teacher_rank, first.lam
    table = [row for row in scaling.final_risks(sweep) if row["width"] < r]
    fig = go.Figure()
    if table:
        width = np.array([row["width"] for row in table], dtype=np.float64)
        m_line = np.unique(np.geomspace(width.min(), r - 1, 40).round().astype(int))
        floor = np.array([theory.width_floor(lam, int(m)) for m in m_line])
        guide = floor[0] * (m_line / m_line[0]) ** (1.0 - 2.0 * alpha)
        fig.add_trace(_line_trace(m_line, floor, "floor Σ over j > m of λⱼ²",
                                  ESCAPE_COLOR, "floor"))
        fig.add_trace(_line_trace(m_line, guide, f"guide m^{1 - 2 * alpha:.2f}",
                                  GUIDE_COLOR, "guide", "dash", 1.5))
        fig.add_trace(_final_risk_trace(table))
        values = np.concatenate([floor, [row["risk"] for row in table]])
    else:
        width, values = np.array([1.0, 2.0]), np.array([1.0])
    fig.update_layout(
        **_base_layout("Final risk against width m < r", "sweep-width-floor"),
        hovermode="closest",
        xaxis=_log_axis("student width m", width),
        yaxis=_log_axis("risk at the horizon", values),
    )
    fig.update_layout(legend=dict(x=0.01, y=0.01, xanchor="left", yanchor="bottom"))
    return fig


def _final_risk_trace(table: list[dict]) -> go.Scatter:
    return go.Scatter(
        x=[row["width"] for row in table],
        y=[row["risk"] for row in table],
        mode="markers",
        marker=dict(size=10, color=FIT_COLOR),
        name="flow risk at its horizon",
        customdata=[[row["floor"], row["time"]] for row in table],
        hovertemplate="m = %{x}: risk %{y:.3g}, floor %{customdata[0]:.3g}, "
        "t = %{customdata[1]:.3g}<extra></extra>",
    )


# ---------------------------------------------------------------- escape times


ESCAPE_STYLES = {
    "predicted": ("predicted (logistic)", dict(symbol="diamond-open", size=9)),
    "flow": ("measured, flow", dict(symbol="circle", size=7)),
    "sgd": ("measured, SGD seed mean", dict(symbol="x-thin", size=9)),
}


def escape_index_figure(run: Run, param: str) -> go.Figure:
    """Escape times against direction j (log-log): measured and predicted.

    Each method gets its fitted slope over the learnable directions that
    escaped; the dashed guide has slope alpha through the median prediction.
    """
    fig = go.Figure()
    learnable = min(run.lam.size, run.config.width)
    j = np.arange(1, learnable + 1, dtype=np.float64)
    plotted = []
    for method, (name, marker) in ESCAPE_STYLES.items():
        if method == "predicted":
            times = np.asarray(run.escape_predicted)[:learnable]
        elif run.trajectory(method) is None:
            continue
        else:
            times = scaling.escape_times(run, method)[:learnable]
        ok = np.isfinite(times) & (times > 0)
        if not ok.any():
            continue
        plotted.append(times[ok])
        fit = scaling.fit_escape(run, param, method)
        label = name
        if fit.fit.ok:
            label += f": slope {fit.fit.slope:.2f}"
        outline = dict(width=1.5, color=ESCAPE_COLOR)
        fig.add_trace(
            go.Scatter(
                x=j[ok],
                y=times[ok],
                mode="markers",
                marker=dict(marker, color=ESCAPE_COLOR, line=outline),
                name=label,
                legendgroup=method,
                hovertemplate="j = %{x}: t = %{y:.3g}<extra></extra>",
            )
        )
    alpha = run.config.alpha
    predicted = np.asarray(run.escape_predicted)[:learnable]
    ok = np.isfinite(predicted) & (predicted > 0)
    if ok.sum() >= 2:
        mid = int(np.nonzero(ok)[0][ok.sum() // 2])
        line = np.geomspace(j[ok][0], j[ok][-1], 20)
        fig.add_trace(
            _line_trace(line, predicted[mid] * (line / j[mid]) ** alpha,
                        f"guide slope α = {alpha:g}", GUIDE_COLOR, "guide", "dash",
                        1.5)
        )
    values = np.concatenate(plotted) if plotted else np.array([1.0])
    title = f"Escape times, {run_label(param, run.value)}"
    fig.update_layout(
        **_base_layout(title, f"sweep-escape-{param}"),
        hovermode="closest",
        xaxis=_log_axis("direction j", j),
        yaxis=_log_axis("escape time t (ρⱼ = 1/2)", values),
    )
    fig.update_layout(legend=dict(x=0.01, y=0.99, xanchor="left", yanchor="top"))
    return fig


# ---------------------------------------------------------------- compute


def compute_figure(
    sweep: Sweep,
    front: scaling.Frontier,
    fit: scaling.ExponentFit,
    method: str = "flow",
) -> go.Figure:
    """Risk against compute C = 4 d m n for a width ladder (flow or SGD mean).

    The lower envelope over the ladder (the frontier) is drawn thick black
    and its fitted power law dash-dotted over the fit window. The conjectured
    exponent -(2 alpha - 1)/(1 + alpha) is a dashed guide through the fit at
    the window start.
    """
    fig = go.Figure()
    colors = _run_colors(len(sweep.runs))
    xs, ys = [], []
    for run, color in zip(sweep.runs, colors):
        if run.trajectory(method) is None:
            continue
        flops, risk = scaling.compute_curve(run, method)
        ok = np.isfinite(risk) & (risk > 0)
        xs.append(flops[ok])
        ys.append(risk[ok])
        fig.add_trace(
            _line_trace(flops[ok], risk[ok], run_label("width", run.config.width),
                        color, f"m-{run.config.width}", width=1.8)
        )
    finite = np.isfinite(front.risk)
    fig.add_trace(
        _line_trace(front.compute[finite], front.risk[finite], "frontier (lower "
                    "envelope)", FRONTIER_COLOR, "frontier", width=3.5)
    )
    if fit.fit.ok:
        c = np.geomspace(fit.fit.t_lo, fit.fit.t_hi, 20)
        fig.add_trace(
            _line_trace(c, fit.fit.predict(c),
                        f"frontier fit {fit.fit.slope:.2f} ± {fit.fit.stderr:.2f}",
                        FIT_COLOR, "fit", "dashdot", 2.5)
        )
        if math.isfinite(fit.predicted):
            y0 = float(fit.fit.predict(np.array([c[0]]))[0])
            fig.add_trace(
                _line_trace(c, y0 * (c / c[0]) ** fit.predicted,
                            f"conjecture {fit.predicted:.2f} = −(2α−1)/(1+α)",
                            GUIDE_COLOR, "guide", "dash", 2.0)
            )
    low = None
    if fit.fit.ok:
        low = float(fit.fit.predict(np.array([fit.fit.t_hi]))[0]) * 10**-TRIM_DECADES
    values, y_range = _y_range(np.concatenate(ys), low)
    fig.update_layout(
        **_base_layout(f"Loss against compute, {METHOD_NAMES[method]}",
                       f"sweep-compute-{method}"),
        height=RISK_HEIGHT,
        hovermode="closest",
        xaxis=_log_axis("compute C = 4 d m n (flops)", np.concatenate(xs)),
        yaxis=dict(_log_axis("risk", values), **y_range),
    )
    fig.update_layout(legend=LEGEND_OUTSIDE)
    return fig


# ---------------------------------------------------------------- samples


def samples_figure(sweep: Sweep, per_dimension: bool = True) -> go.Figure:
    """SGD risk against samples n (or n / d) for each d, the flow dashed.

    With lr = c B / d the samples to reach time t are n = B t / lr = d t / c,
    so against n / d the curves of different d nearly collapse; escape
    times still grow like ln d.
    """
    fig = go.Figure()
    colors = _run_colors(len(sweep.runs))
    arrays = _sweep_risks(sweep)
    floor = _floor_for(*arrays)
    xs = []
    for run, color in zip(sweep.runs, colors):
        config = run.config
        scale = config.batch / config.lr / (config.d if per_dimension else 1.0)
        label = run_label("d", config.d)
        group = f"d-{config.d}"
        if run.sgd is not None and run.sgd.time.size:
            t, y = _positive(run.sgd.time, run.sgd.risk_mean())
            xs.append(t * scale)
            fig.add_trace(
                go.Scatter(
                    x=t * scale,
                    y=_clip_positive(y, floor),
                    mode="lines+markers",
                    line=dict(color=color, width=1.5),
                    marker=dict(size=5, color=color),
                    name=f"{label}, SGD",
                    legendgroup=group,
                    hovertemplate="%{x:.3g}: %{y:.3g}<extra></extra>",
                )
            )
        t, y = _positive(run.flow.time, run.flow.risk[0])
        xs.append(t * scale)
        fig.add_trace(_line_trace(t * scale, _clip_positive(y, floor),
                                  f"{label}, flow", color, group, "dot", 2.0))
    values = np.maximum(np.concatenate([np.ravel(a) for a in arrays]), floor)
    x_title = "samples per dimension n / d" if per_dimension else "samples n"
    fig.update_layout(
        **_base_layout("Online SGD risk against samples",
                       f"sweep-samples-{per_dimension}"),
        height=RISK_HEIGHT,
        hovermode="closest",
        xaxis=_log_axis(x_title, np.concatenate(xs)),
        yaxis=_log_axis("risk", values),
    )
    fig.update_layout(legend=dict(x=0.01, y=0.01, xanchor="left", yanchor="bottom"))
    return fig
