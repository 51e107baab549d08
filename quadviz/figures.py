"""Plotly figures of quadviz results: risk, recovery, overlaps and spectra.

Every builder takes result objects (an Experiment, a Trajectory or a
dimension ladder) and returns a ``go.Figure``. Nothing here imports
Streamlit, so the same figures serve the app, notebooks and HTML export.

Conventions: one colour per quantity, shared by theory and simulation.
Theory is drawn solid (dotted for the additive model), SGD thin with markers
or dashed, and guide slopes dashed grey. Scatter traces are SVG
(``go.Scatter``), because more than a few WebGL charts on one page go blank
in browsers.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from quadviz import theory
from quadviz.experiment import Experiment
from quadviz.result import Trajectory

RISK_COLOR = "#1f5fa8"
RISK_BAND = "rgba(31, 95, 168, 0.18)"
FIT_COLOR = "#d95f02"
GUIDE_COLOR = "#555555"
ESCAPE_COLOR = "#7b3294"
TEACHER_COLOR = "#222222"
DIRECTION_SCALE = "Viridis"
LADDER_SCALE = "Plasma"
FONT_SIZE = 15
# Pixel height of the risk figure, taller than Plotly's 450 because its log
# axis often spans eight or more decades.
RISK_HEIGHT = 540

# Smallest value drawn on a log axis, relative to the largest one. Zeros and
# negative values (rounding error) are raised to it.
LOG_FLOOR = 1e-15
# Directions drawn as separate lines in the recovery figure. More would only
# make an unreadable bundle and a slow page.
MAX_RECOVERY_LINES = 24
# Rows and columns kept in heatmaps, and markers kept in the escape figure.
MAX_HEATMAP_ROWS = 256
MAX_HEATMAP_COLUMNS = 400
MAX_ESCAPE_MARKERS = 400

X_AXES = {
    "time": "time t = lr · steps",
    "samples": "samples n = B · steps",
    "steps": "SGD steps",
}


# ---------------------------------------------------------------- helpers


def _clip_positive(y: np.ndarray, floor: float) -> np.ndarray:
    """Float copy with non-finite entries as NaN and the rest at least floor."""
    y = np.array(y, dtype=np.float64)
    bad = ~np.isfinite(y)
    y = np.maximum(y, floor)
    y[bad] = np.nan
    return y


def _positive(values: np.ndarray) -> np.ndarray:
    """Return the finite, positive entries of values as float64."""
    values = np.asarray(values, dtype=np.float64).ravel()
    return values[np.isfinite(values) & (values > 0)]


def _floor_for(*arrays: np.ndarray) -> float:
    values = np.concatenate([np.ravel(a) for a in arrays])
    values = values[np.isfinite(values) & (values > 0)]
    if values.size == 0:
        return LOG_FLOOR
    return float(values.max()) * LOG_FLOOR


def _decade_step(values: np.ndarray) -> int | str:
    """Plotly dtick of a log axis, so that it shows about three to nine labels.

    Wide ranges get every k-th power of ten. A range under three decades also
    labels 2 and 5 ("D2"), and one under 1.2 decades every digit ("D1").
    """
    values = _positive(values)
    if values.size < 2:
        return 1
    span = math.log10(values.max() / values.min())
    if span < 1.2:
        return "D1"
    if span < 3:
        return "D2"
    return max(1, math.ceil(span / 8))


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _tick_text(value: float) -> str:
    """Return the label of a tick: plain decimals from 0.001 to 9999, else m×10ᵏ."""
    if 1e-3 <= value < 1e4:
        return f"{value:.4g}"
    exponent = math.floor(math.log10(value))
    mantissa = round(value / 10.0**exponent, 3)
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    return power if mantissa == 1 else f"{mantissa:g}×{power}"


def _narrow_log_ticks(low: float, high: float) -> list[float]:
    """Return tick values for a log axis spanning less than about one decade.

    With dtick "D1" plotly labels such an axis with single digits, so a risk
    falling from 1 to 0.7 reads "1, 9, 8, 7". These ticks are 1, 2 and 5, or
    every digit, times a power of ten. A very narrow range gets evenly spaced
    values with a step of 1, 2 or 5 times a power of ten instead.
    """
    decades = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for mantissas in ((1, 2, 5), range(1, 10)):
        ticks = [m * 10.0**k for k in decades for m in mantissas
                 if low <= m * 10.0**k <= high]
        if len(ticks) >= 3:
            return ticks
    rough = (high - low) / 4
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(f * power for f in (1, 2, 5, 10) if f * power >= rough)
    first = math.ceil(low / step)
    return [i * step for i in range(first, math.floor(high / step) + 1)]


def _log_axis(title: str, values: np.ndarray) -> dict:
    """Axis settings for a log axis with ticks at powers of ten."""
    axis = dict(
        type="log",
        title=dict(text=title),
        dtick=_decade_step(values),
        exponentformat="power",
        showexponent="all",
        showgrid=True,
        gridcolor="#e3e3e3",
        minor=dict(ticks="outside", ticklen=3, showgrid=False),
        zeroline=False,
    )
    if axis["dtick"] == "D1":
        values = _positive(values)
        # plotly's autorange pads the data, so ticks just outside it are shown
        ticks = _narrow_log_ticks(float(values.min()) / 1.05, float(values.max()) * 1.05)
        ticks = [float(f"{v:.12g}") for v in ticks]
        if len(ticks) >= 2:
            del axis["dtick"]
            axis.update(tickmode="array", tickvals=ticks,
                        ticktext=[_tick_text(v) for v in ticks],
                        minor=dict(ticks="", showgrid=False))
    return axis


def _base_layout(title: str, uirevision: str) -> dict:
    return dict(
        title=dict(text=title, x=0.0, xanchor="left"),
        template="plotly_white",
        font=dict(size=FONT_SIZE),
        margin=dict(l=70, r=30, t=60, b=60),
        uirevision=uirevision,
        legend=dict(
            bgcolor="rgba(255, 255, 255, 0.85)",
            bordercolor="#cccccc",
            borderwidth=1,
        ),
    )


def _keep_positive_times(time: np.ndarray) -> np.ndarray:
    """Boolean mask of times that a log axis can show (t > 0)."""
    return np.asarray(time, dtype=np.float64) > 0


def _x_factor(experiment: Experiment, x_axis: str) -> float:
    """Factor turning flow time t into the requested x quantity."""
    config = experiment.config
    if x_axis == "time":
        return 1.0
    if x_axis == "steps":
        return 1.0 / config.lr
    if x_axis == "samples":
        return config.batch / config.lr
    raise ValueError(f"invalid x_axis={x_axis!r}: allowed time, samples, steps")


def _direction_colors(js: np.ndarray, r: int) -> list[str]:
    """Colour of direction j (1-based) on DIRECTION_SCALE, by log j."""
    top = math.log(max(r, 2))
    positions = [min(1.0, math.log(j) / top) for j in js]
    return sample_colorscale(DIRECTION_SCALE, positions)


def _spread_indices(n: int, keep: int) -> np.ndarray:
    """At most ``keep`` indices in [0, n), log-spaced so small j are all kept."""
    if n <= keep:
        return np.arange(n)
    idx = np.unique(np.round(np.geomspace(1, n, keep)).astype(int)) - 1
    return idx


def _even_indices(n: int, keep: int) -> np.ndarray:
    if n <= keep:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, keep).round().astype(int))


# ---------------------------------------------------------------- risk


def risk_fit(experiment: Experiment) -> tuple[str, theory.PowerLawFit]:
    """Fitted power law of the risk: on the SGD seed mean, or on the flow.

    Returns the name of the fitted curve and the fit (``fit.ok`` is False when
    no decaying stretch was found). A diverged SGD run is not fitted.
    """
    sgd = experiment.sgd
    if sgd is not None and sgd.ok and sgd.time.size >= 4:
        return "SGD mean", theory.fit_risk_decay(
            sgd.time, sgd.risk_mean(), experiment.escape_predicted
        )
    flow = experiment.flow
    return "flow", theory.fit_risk_decay(
        flow.time, flow.risk[0], experiment.escape_predicted
    )


def _guide_anchor(
    flow: Trajectory, escape_predicted: np.ndarray
) -> tuple[float, float, float] | None:
    """(t_start, risk at t_start, t_end) of the stretch where the guide sits."""
    fit = theory.fit_risk_decay(flow.time, flow.risk[0], escape_predicted)
    t, y = flow.time, flow.risk[0]
    keep = (t > 0) & np.isfinite(y) & (y > 0)
    t, y = t[keep], y[keep]
    if t.size < 2:
        return None
    if fit.ok:
        t0, t1 = fit.t_lo, fit.t_hi
    else:
        below = np.nonzero(y < 0.5 * y[0])[0]
        if below.size == 0:
            return None
        t0, t1 = float(t[below[0]]), float(t[-1])
    if t1 <= t0:
        return None
    y0 = float(np.exp(np.interp(np.log(t0), np.log(t), np.log(y))))
    return t0, y0, t1


def _risk_band_traces(sgd: Trajectory, x: np.ndarray, floor: float) -> list:
    seeds = sgd.risk.shape[0]
    low = _clip_positive(sgd.risk.min(axis=0), floor)
    high = _clip_positive(sgd.risk.max(axis=0), floor)
    lower = go.Scatter(
        x=x,
        y=low,
        mode="lines",
        line=dict(width=0, color=RISK_BAND),
        legendgroup="sgd",
        showlegend=False,
        hoverinfo="skip",
    )
    upper = go.Scatter(
        x=x,
        y=high,
        mode="lines",
        line=dict(width=0, color=RISK_BAND),
        fill="tonexty",
        fillcolor=RISK_BAND,
        name=f"SGD min to max over {seeds} seeds",
        legendgroup="sgd",
        hoverinfo="skip",
    )
    return [lower, upper]


def _risk_sgd_traces(experiment: Experiment, factor: float, floor: float) -> list:
    sgd = experiment.sgd
    keep = _keep_positive_times(sgd.time)
    x = sgd.time[keep] * factor
    traces = []
    seeds = sgd.risk.shape[0]
    if seeds > 1:
        traces += _risk_band_traces(
            Trajectory(sgd.method, sgd.time[keep], sgd.risk[:, keep]), x, floor
        )
    name = f"SGD, mean of {seeds} seeds" if seeds > 1 else "SGD"
    traces.append(
        go.Scatter(
            x=x,
            y=_clip_positive(sgd.risk_mean()[keep], floor),
            mode="lines+markers",
            line=dict(color=RISK_COLOR, width=1),
            marker=dict(size=5, color=RISK_COLOR),
            name=name,
            legendgroup="sgd",
            hovertemplate="%{y:.3g}",
        )
    )
    return traces


def _risk_theory_traces(experiment: Experiment, factor: float, floor: float) -> list:
    flow, additive = experiment.flow, experiment.additive
    traces = []
    keep = _keep_positive_times(flow.time)
    traces.append(
        go.Scatter(
            x=flow.time[keep] * factor,
            y=_clip_positive(flow.risk[0][keep], floor),
            mode="lines",
            line=dict(color=RISK_COLOR, width=3),
            name="population flow (Riccati), same W₀",
            legendgroup="flow",
            hovertemplate="%{y:.3g}",
        )
    )
    keep = _keep_positive_times(additive.time)
    traces.append(
        go.Scatter(
            x=additive.time[keep] * factor,
            y=_clip_positive(additive.risk[0][keep], floor),
            mode="lines",
            line=dict(color=RISK_COLOR, width=2, dash="dot"),
            name="additive model (decoupled)",
            legendgroup="additive",
            hovertemplate="%{y:.3g}",
        )
    )
    return traces


def _guide_trace(experiment: Experiment, factor: float) -> go.Scatter | None:
    exponent = theory.asymptotic_exponent(experiment.config.alpha)
    if not math.isfinite(exponent):
        return None
    anchor = _guide_anchor(experiment.flow, experiment.escape_predicted)
    if anchor is None:
        return None
    t0, y0, t1 = anchor
    t = np.geomspace(t0, t1, 20)
    return go.Scatter(
        x=t * factor,
        y=y0 * (t / t0) ** exponent,
        mode="lines",
        line=dict(color=GUIDE_COLOR, width=2, dash="dash"),
        name=f"guide slope {exponent:.2f} = -(2α-1)/α",
        legendgroup="guide",
        hoverinfo="skip",
    )


def _fit_trace(experiment: Experiment, factor: float) -> go.Scatter | None:
    label, fit = risk_fit(experiment)
    if not fit.ok:
        return None
    t = np.geomspace(fit.t_lo, fit.t_hi, 20)
    return go.Scatter(
        x=t * factor,
        y=fit.predict(t),
        mode="lines",
        line=dict(color=FIT_COLOR, width=2, dash="dashdot"),
        name=f"fit on {label}: slope {fit.slope:.2f} ± {fit.stderr:.2f}",
        legendgroup="fit",
        hoverinfo="skip",
    )


def _divergence_annotation(sgd: Trajectory) -> dict:
    last = f" (last finite value at t = {sgd.time[-1]:.3g})" if sgd.time.size else ""
    text = sgd.message or "SGD diverged"
    return dict(
        text=f"<b>SGD diverged</b>{last}<br>{_wrap(text, 70)}",
        xref="paper",
        yref="paper",
        # Above the plot area, right of the title: inside it, the box would
        # hide the diverging SGD curve, which rises at the top.
        x=1.0,
        y=1.0,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        align="right",
        font=dict(color="#b2182b", size=FONT_SIZE - 1),
        bgcolor="rgba(255, 240, 240, 0.9)",
        bordercolor="#b2182b",
        borderwidth=1,
    )


def _wrap(text: str, width: int) -> str:
    """Break text into lines of about ``width`` characters with <br>."""
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "<br>".join(lines)


def risk_figure(experiment: Experiment, x_axis: str = "time") -> go.Figure:
    """Population risk against time, samples or steps on log-log axes.

    Draws the SGD seeds as a min-max band with their mean, the population
    flow from the same W_0 (solid), the additive model (dotted), the guide
    slope -(2 alpha - 1)/alpha anchored on the flow (alpha > 1/2 only) and
    the fitted slope. A diverged SGD run gets an annotation.
    """
    factor = _x_factor(experiment, x_axis)
    sgd = experiment.sgd
    arrays = [experiment.flow.risk, experiment.additive.risk]
    if sgd is not None and sgd.time.size:
        arrays.append(sgd.risk)
    floor = _floor_for(*arrays)

    fig = go.Figure()
    if sgd is not None and sgd.time.size:
        fig.add_traces(_risk_sgd_traces(experiment, factor, floor))
    fig.add_traces(_risk_theory_traces(experiment, factor, floor))
    for trace in (_guide_trace(experiment, factor), _fit_trace(experiment, factor)):
        if trace is not None:
            fig.add_trace(trace)

    times = experiment.flow.time[_keep_positive_times(experiment.flow.time)]
    risks = np.concatenate([np.ravel(a) for a in arrays])
    fig.update_layout(
        **_base_layout("Population risk ‖M − Q‖²_F", f"risk-{x_axis}"),
        height=RISK_HEIGHT,
        hovermode="x unified",
        xaxis=_log_axis(X_AXES[x_axis], times * factor),
        yaxis=_log_axis("risk", np.maximum(risks, floor)),
    )
    fig.update_layout(legend=dict(x=0.01, y=0.01, xanchor="left", yanchor="bottom"))
    if sgd is not None and not sgd.ok:
        fig.add_annotation(_divergence_annotation(sgd))
        fig.update_layout(margin=dict(t=110))
    return fig


# ---------------------------------------------------------------- Riccati flow


def overlap_heatmap(
    trajectory: Trajectory, time_index: int, lam: np.ndarray | None = None
) -> go.Figure:
    """Heatmap of Theta^T M Theta at one output time, with a fixed colour range.

    With ``lam`` the matrix is divided by sqrt(lambda_i lambda_j), so the
    diagonal is rho_j, the target is the identity and the colour range is
    [-1, 1]. Without it the range is +- the largest entry over all times.
    """
    if trajectory.overlap is None:
        raise ValueError(f"{trajectory.method} trajectory has no overlap matrices")
    overlap = np.asarray(trajectory.overlap, dtype=np.float64)
    k = overlap.shape[1]
    if lam is not None:
        scale = np.sqrt(np.asarray(lam[:k], dtype=np.float64))
        overlap = overlap / scale[None, :, None] / scale[None, None, :]
        zmax = 1.0
        title = "Θᵀ M Θ / √(λᵢ λⱼ)"
    else:
        zmax = float(np.nanmax(np.abs(overlap))) or 1.0
        title = "Θᵀ M Θ"
    t = float(trajectory.time[time_index])
    j = np.arange(1, k + 1)
    fig = go.Figure(
        go.Heatmap(
            z=overlap[time_index],
            x=j,
            y=j,
            zmin=-zmax,
            zmax=zmax,
            zmid=0.0,
            colorscale="RdBu",
            reversescale=True,
            colorbar=dict(thickness=14),
            hovertemplate="i = %{y}, j = %{x}: %{z:.3g}<extra></extra>",
        )
    )
    fig.update_layout(**_base_layout(f"{title} at t = {t:.3g}", "overlap"))
    fig.update_xaxes(title_text="direction j", constrain="domain")
    fig.update_yaxes(
        title_text="direction i", autorange="reversed", scaleanchor="x"
    )
    return fig


def _nearest_index(time: np.ndarray, t: float) -> int:
    return int(np.argmin(np.abs(np.asarray(time) - t)))


def spectrum_figure(experiment: Experiment, time_index: int) -> go.Figure:
    """Eigenvalues of M (those of W^T W) at one flow output time, beside lambda_j.

    Index on the x axis, value on the y axis, both logarithmic, so a power-law
    teacher is a straight line. SGD (first seed) is drawn at the nearest SGD
    output time.
    """
    flow, sgd, lam = experiment.flow, experiment.sgd, experiment.lam
    t = float(flow.time[time_index])
    eig_flow = flow.spectrum[0, time_index]
    arrays = [lam, eig_flow]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=np.arange(1, lam.size + 1),
            y=lam,
            mode="markers",
            marker=dict(symbol="circle-open", size=10, color=TEACHER_COLOR),
            name="teacher λⱼ",
        )
    )
    if sgd is not None and sgd.spectrum is not None and sgd.time.size:
        i = _nearest_index(sgd.time, t)
        eig_sgd = sgd.spectrum[0, i]
        arrays.append(eig_sgd)
    floor = _floor_for(*arrays)
    fig.add_trace(
        go.Scatter(
            x=np.arange(1, eig_flow.size + 1),
            y=_clip_positive(eig_flow, floor),
            mode="lines+markers",
            line=dict(color=RISK_COLOR, width=2),
            marker=dict(size=7, color=RISK_COLOR),
            name="eigenvalues of M, flow",
        )
    )
    if len(arrays) == 3:
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, arrays[2].size + 1),
                y=_clip_positive(arrays[2], floor),
                mode="markers",
                marker=dict(symbol="x-thin", size=9, color=RISK_COLOR,
                            line=dict(width=2, color=RISK_COLOR)),
                name=f"eigenvalues of M, SGD seed 1 (t = {sgd.time[i]:.3g})",
            )
        )
    index = np.arange(1, max(lam.size, eig_flow.size) + 1)
    values = np.maximum(np.concatenate([np.ravel(a) for a in arrays]), floor)
    fig.update_layout(
        **_base_layout(f"Eigenvalues of M at t = {t:.3g}", "spectrum"),
        xaxis=_log_axis("index", index),
        yaxis=_log_axis("eigenvalue", values),
    )
    fig.update_layout(
        legend=dict(orientation="h", x=0.0, y=-0.22, xanchor="left", yanchor="top"),
        margin=dict(b=110),
    )
    return fig


def dimension_figure(
    ladder: list[tuple[int, Trajectory]], rescale: bool = True
) -> go.Figure:
    """Population risk at several d, against t / ln d (or t).

    Escape times grow like ln d, so in t / ln d the curves collapse onto the
    d -> infinity limit.
    """
    fig = go.Figure()
    dims = [d for d, _ in ladder]
    low, high = math.log(min(dims)), math.log(max(dims))
    span = high - low if high > low else 1.0
    colors = sample_colorscale(
        LADDER_SCALE, [0.85 * (math.log(d) - low) / span for d in dims]
    )
    floor = _floor_for(*[traj.risk for _, traj in ladder])
    xs = []
    for (d, traj), color in zip(ladder, colors):
        keep = _keep_positive_times(traj.time)
        x = traj.time[keep] / (math.log(d) if rescale else 1.0)
        xs.append(x)
        fig.add_trace(
            go.Scatter(
                x=x,
                y=_clip_positive(traj.risk[0][keep], floor),
                mode="lines",
                line=dict(color=color, width=2.5),
                name=f"d = {_format_count(d)}",
                hovertemplate="%{y:.3g}",
            )
        )
    x_title = "t / ln d" if rescale else "time t"
    values = np.concatenate([np.ravel(traj.risk) for _, traj in ladder])
    fig.update_layout(
        **_base_layout("Population flow as d grows", f"ladder-{rescale}"),
        hovermode="x unified",
        xaxis=_log_axis(x_title, np.concatenate(xs)),
        yaxis=_log_axis("risk", np.maximum(values, floor)),
    )
    fig.update_layout(legend=dict(x=0.01, y=0.01, xanchor="left", yanchor="bottom"))
    return fig


def _format_count(n: int) -> str:
    """1000000 -> '10⁶', 4096 -> '4096'."""
    exponent = math.log10(n)
    if n >= 10_000 and abs(exponent - round(exponent)) < 1e-9:
        return f"10{_superscript(round(exponent))}"
    return f"{n:,}".replace(",", " ")


def _superscript(n: int) -> str:
    return str(n).translate(str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻"))


# ---------------------------------------------------------------- recovery


def _legend_stub(name: str, group: str, line: dict, marker: dict | None = None):
    """Legend-only trace that explains a line style shared by a group."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="lines+markers" if marker else "lines",
        line=line,
        marker=marker or {},
        name=name,
        legendgroup=group,
    )


def _colorbar_trace(r: int) -> go.Scatter:
    """Invisible trace that carries the colour bar of the direction index j."""
    top = math.log(max(r, 2))
    ticks = [j for j in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
             if j <= r]
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        showlegend=False,
        hoverinfo="skip",
        marker=dict(
            colorscale=DIRECTION_SCALE,
            cmin=0.0,
            cmax=1.0,
            color=[0.0],
            showscale=True,
            colorbar=dict(
                title=dict(text="j"),
                thickness=14,
                tickvals=[math.log(j) / top for j in ticks],
                ticktext=[str(j) for j in ticks],
            ),
        ),
    )


def recovery_figure(
    experiment: Experiment, max_lines: int = MAX_RECOVERY_LINES
) -> go.Figure:
    """rho_j(t) of the flow (solid) and the SGD seed mean (dashed) per direction.

    Colour encodes j. Predicted escape times of the logistic model are
    markers at rho = 1/2. With more than ``max_lines`` directions a
    log-spaced subset is drawn (all of the first few, fewer later).
    """
    flow, sgd, lam = experiment.flow, experiment.sgd, experiment.lam
    r = lam.size
    idx = _spread_indices(r, max_lines)
    colors = _direction_colors(idx + 1, r)
    keep = _keep_positive_times(flow.time)
    t_flow = flow.time[keep]
    rec_flow = flow.recovery[0][keep]
    fig = go.Figure()
    has_sgd = sgd is not None and sgd.recovery is not None and sgd.time.size > 1
    if has_sgd:
        keep_sgd = _keep_positive_times(sgd.time)
        t_sgd = sgd.time[keep_sgd]
        rec_sgd = sgd.recovery.mean(axis=0)[keep_sgd]
    for i, color in zip(idx, colors):
        j = i + 1
        fig.add_trace(
            go.Scatter(
                x=t_flow,
                y=rec_flow[:, i],
                mode="lines",
                line=dict(color=color, width=2.5),
                name=f"j = {j}, flow",
                legendgroup="flow",
                showlegend=False,
            )
        )
        if has_sgd:
            fig.add_trace(
                go.Scatter(
                    x=t_sgd,
                    y=rec_sgd[:, i],
                    mode="lines",
                    line=dict(color=color, width=1.3, dash="dash"),
                    name=f"j = {j}, SGD mean",
                    legendgroup="sgd",
                    showlegend=False,
                )
            )
    fig.add_trace(_escape_marker_trace(experiment, idx, colors, t_flow))
    fig.add_trace(_colorbar_trace(r))
    stubs = [_legend_stub("flow", "flow", dict(color=GUIDE_COLOR, width=2.5))]
    if has_sgd:
        stubs.append(
            _legend_stub(
                "SGD seed mean", "sgd", dict(color=GUIDE_COLOR, width=1.3, dash="dash")
            )
        )
    fig.add_traces(stubs)
    fig.add_hline(y=0.5, line=dict(color="#aaaaaa", width=1, dash="dot"))
    subset = f" ({idx.size} of {r} directions)" if idx.size < r else ""
    fig.update_layout(
        **_base_layout(f"Recovery ρⱼ(t) per direction{subset}", "recovery"),
        hovermode="closest",
        xaxis=_log_axis("time t", t_flow),
        yaxis=dict(title=dict(text="ρⱼ"), range=[-0.02, 1.15], gridcolor="#e3e3e3"),
    )
    fig.update_layout(legend=dict(x=0.01, y=0.99, xanchor="left", yanchor="top"))
    return fig


def _escape_marker_trace(
    experiment: Experiment, idx: np.ndarray, colors: list[str], t_range: np.ndarray
) -> go.Scatter:
    t_pred = np.asarray(experiment.escape_predicted, dtype=np.float64)[idx]
    in_range = np.isfinite(t_pred) & (t_pred > 0)
    if t_range.size:
        in_range &= (t_pred >= t_range.min()) & (t_pred <= t_range.max())
    marker_colors = [color for color, keep in zip(colors, in_range) if keep]
    return go.Scatter(
        x=t_pred[in_range],
        y=np.full(int(in_range.sum()), 0.5),
        mode="markers",
        marker=dict(
            symbol="x-thin",
            size=12,
            color=marker_colors,
            line=dict(width=2.5, color=marker_colors),
        ),
        customdata=idx[in_range] + 1,
        hovertemplate="predicted escape of j = %{customdata}: t = %{x:.3g}"
        "<extra></extra>",
        name="predicted escape (logistic)",
        legendgroup="predicted",
    )


def recovery_heatmap(
    trajectory: Trajectory,
    escape_predicted: np.ndarray | None = None,
    title: str | None = None,
) -> go.Figure:
    """Heatmap of rho_j(t) (seed mean): direction j down, log time across.

    Colour range is fixed to [0, 1]. Predicted escape times, when given, are
    drawn as white markers. Large r or many times are thinned to at most
    MAX_HEATMAP_ROWS x MAX_HEATMAP_COLUMNS cells.
    """
    if trajectory.recovery is None:
        raise ValueError(f"{trajectory.method} trajectory has no recovery")
    keep = _keep_positive_times(trajectory.time)
    time = trajectory.time[keep]
    recovery = trajectory.recovery.mean(axis=0)[keep]
    cols = _even_indices(time.size, MAX_HEATMAP_COLUMNS)
    rows = _even_indices(recovery.shape[1], MAX_HEATMAP_ROWS)
    fig = go.Figure(
        go.Heatmap(
            z=recovery[np.ix_(cols, rows)].T,
            x=time[cols],
            y=rows + 1,
            zmin=0.0,
            zmax=1.0,
            colorscale="Viridis",
            colorbar=dict(title=dict(text="ρⱼ"), thickness=14),
            hovertemplate="j = %{y}, t = %{x:.3g}: ρ = %{z:.3f}<extra></extra>",
            name="",
        )
    )
    if escape_predicted is not None:
        t_pred = np.asarray(escape_predicted, dtype=np.float64)[rows]
        in_range = (
            np.isfinite(t_pred) & (t_pred >= time.min()) & (t_pred <= time.max())
        )
        fig.add_trace(
            go.Scatter(
                x=t_pred[in_range],
                y=rows[in_range] + 1,
                mode="markers",
                marker=dict(symbol="x-thin", size=8, color="white",
                            line=dict(width=2, color="white")),
                name="predicted escape",
                hovertemplate="predicted escape of j = %{y}: t = %{x:.3g}"
                "<extra></extra>",
            )
        )
    label = title or f"Recovery ρⱼ(t), {trajectory.method}"
    fig.update_layout(
        **_base_layout(label, "recovery-heatmap"),
        xaxis=_log_axis("time t", time),
        yaxis=dict(
            title=dict(text="direction j"),
            range=[rows[-1] + 1.5, rows[0] + 0.5],
            tick0=1,
            dtick=max(1, math.ceil((rows[-1] + 1) / 8)),
        ),
    )
    fig.update_layout(
        legend=dict(x=0.99, y=0.01, xanchor="right", yanchor="bottom")
    )
    return fig


def escape_times(experiment: Experiment) -> dict[str, np.ndarray]:
    """Predicted and measured escape times per direction, each of shape (r,).

    Keys: "predicted" (logistic model, inf if never), "flow" and, when SGD
    ran, "sgd" (first time the seed-mean rho_j reaches 1/2, nan if never).
    """
    out = {"predicted": np.asarray(experiment.escape_predicted, dtype=np.float64)}
    flow = experiment.flow
    out["flow"] = theory.measured_escape_times(flow.time, flow.recovery[0])
    sgd = experiment.sgd
    if sgd is not None and sgd.recovery is not None and sgd.time.size > 1:
        out["sgd"] = theory.measured_escape_times(sgd.time, sgd.recovery.mean(axis=0))
    return out


def escape_figure(experiment: Experiment) -> go.Figure:
    """Measured and predicted escape times against j, both axes logarithmic.

    The dashed guide has slope alpha (t_j grows like j^alpha log d) and goes
    through the median predicted time.
    """
    times = escape_times(experiment)
    r = experiment.lam.size
    idx = _spread_indices(r, MAX_ESCAPE_MARKERS)
    j = idx + 1
    styles = {
        "predicted": ("predicted (logistic)", dict(symbol="diamond-open", size=10)),
        "flow": ("measured, flow", dict(symbol="circle", size=8)),
        "sgd": ("measured, SGD seed mean", dict(symbol="x-thin", size=10)),
    }
    fig = go.Figure()
    plotted_times = []
    for key, values in times.items():
        name, marker = styles[key]
        y = values[idx]
        ok = np.isfinite(y) & (y > 0)
        plotted_times.append(y[ok])
        outline = dict(width=2, color=ESCAPE_COLOR)
        marker = dict(marker, color=ESCAPE_COLOR, line=outline)
        fig.add_trace(
            go.Scatter(
                x=j[ok],
                y=y[ok],
                mode="markers",
                marker=marker,
                name=name,
                legendgroup=key,
                hovertemplate="j = %{x}: t = %{y:.3g}",
            )
        )
    guide = _escape_guide(experiment.config.alpha, j, times["predicted"][idx])
    if guide is not None:
        fig.add_trace(guide)
    values = np.concatenate(plotted_times) if plotted_times else np.array([1.0])
    fig.update_layout(
        **_base_layout("Escape times: ρⱼ reaches 1/2", "escape"),
        hovermode="closest",
        xaxis=_log_axis("direction j", j.astype(np.float64)),
        yaxis=_log_axis("escape time t", values),
    )
    fig.update_layout(legend=dict(x=0.99, y=0.01, xanchor="right", yanchor="bottom"))
    return fig


def _escape_guide(alpha: float, j: np.ndarray, predicted: np.ndarray):
    ok = np.isfinite(predicted) & (predicted > 0)
    if ok.sum() < 2 or alpha <= 0:
        return None
    j_ok, t_ok = j[ok], predicted[ok]
    mid = j_ok.size // 2
    j_line = np.geomspace(j_ok.min(), j_ok.max(), 20)
    return go.Scatter(
        x=j_line,
        y=t_ok[mid] * (j_line / j_ok[mid]) ** alpha,
        mode="lines",
        line=dict(color=GUIDE_COLOR, width=2, dash="dash"),
        name=f"guide slope α = {alpha:.2f}",
        legendgroup="guide",
        hoverinfo="skip",
    )
