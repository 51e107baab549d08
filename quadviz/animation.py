"""Replay of one training run as a Plotly animation that plays in the browser.

One figure has three panels that move together over the output times. The
risk has a cursor at the current time, the overlap matrix
Theta^T M Theta / sqrt(lambda_i lambda_j) is a heatmap, and the recovery
rho_j of each direction is a bar. Every frame is precomputed into the figure,
so play, pause and the time slider run in plotly.js without a server round
trip. Colour and axis ranges are fixed across frames.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from quadviz.experiment import Experiment
from quadviz.result import Trajectory

# Largest number of frames. More make the figure larger, not the playback smoother.
MAX_FRAMES = 80
# Directions kept in the heatmap and the bars. Above this the frames of a
# 48 x 48 overlap matrix alone would add megabytes to the page.
MAX_DIRECTIONS = 32
FRAME_MS = 120
RISK_COLOR = "#1f5fa8"
CURSOR_COLOR = "#d62728"
ESCAPE_COLOR = "#7b3294"
FONT_SIZE = 15
HEIGHT = 860
# Smallest risk drawn, relative to the largest: a log axis cannot show 0.
LOG_FLOOR = 1e-15


def frame_indices(time: np.ndarray, frames: int = MAX_FRAMES) -> np.ndarray:
    """At most ``frames`` indices of output times t > 0, evenly spread.

    The output times are log-spaced already, so evenly spread indices give
    frames evenly spread in log t.
    """
    positive = np.nonzero(np.asarray(time) > 0)[0]
    if positive.size <= frames:
        return positive
    spread = np.linspace(0, positive.size - 1, frames).round().astype(int)
    return positive[np.unique(spread)]


def _source(experiment: Experiment, source: str) -> tuple[Trajectory, str]:
    """Trajectory to replay and its legend name; SGD means its first seed."""
    if source == "flow":
        return experiment.flow, "population flow"
    if source == "sgd":
        sgd = experiment.sgd
        if sgd is None or sgd.overlap is None or sgd.time.size < 2:
            raise ValueError("source='sgd' needs an SGD run with overlap matrices")
        return sgd, "SGD, seed 1"
    raise ValueError(f"invalid source={source!r}: allowed flow, sgd")


def _normalised_overlap(trajectory: Trajectory, lam: np.ndarray, k: int) -> np.ndarray:
    """(T, k, k) overlap divided by sqrt(lambda_i lambda_j), as float32."""
    overlap = np.asarray(trajectory.overlap[:, :k, :k], dtype=np.float64)
    scale = np.sqrt(np.asarray(lam[:k], dtype=np.float64))
    overlap = overlap / scale[None, :, None] / scale[None, None, :]
    # float32 halves the size of the frames; the colours cannot show more.
    return overlap.astype(np.float32)


def _bar_colors(k: int) -> list[str]:
    top = math.log(max(k, 2))
    return sample_colorscale("Viridis", [math.log(j) / top for j in range(1, k + 1)])


def _risk_traces(experiment: Experiment, trajectory: Trajectory, name: str, floor):
    flow = experiment.flow
    keep = flow.time > 0
    traces = [
        go.Scatter(
            x=flow.time[keep],
            y=np.maximum(flow.risk[0][keep], floor),
            mode="lines",
            line=dict(color=RISK_COLOR, width=3),
            name="population flow",
            hovertemplate="t = %{x:.3g}: %{y:.3g}<extra></extra>",
        )
    ]
    if trajectory is not flow:
        keep = (trajectory.time > 0) & np.isfinite(trajectory.risk[0])
        traces.append(
            go.Scatter(
                x=trajectory.time[keep],
                y=np.maximum(trajectory.risk[0][keep], floor),
                mode="lines+markers",
                line=dict(color=RISK_COLOR, width=1),
                marker=dict(size=4, color=RISK_COLOR),
                name=name,
                hovertemplate="t = %{x:.3g}: %{y:.3g}<extra></extra>",
            )
        )
    return traces


def _escape_trace(experiment: Experiment, floor: float) -> go.Scatter:
    """Predicted escape times as markers on the flow's risk curve."""
    flow = experiment.flow
    keep = flow.time > 0
    t = np.asarray(experiment.escape_predicted, dtype=np.float64)
    inside = np.isfinite(t) & (t >= flow.time[keep].min()) & (t <= flow.time.max())
    j = np.nonzero(inside)[0] + 1
    y = np.interp(
        np.log(t[inside]),
        np.log(flow.time[keep]),
        np.log(np.maximum(flow.risk[0][keep], floor)),
    )
    return go.Scatter(
        x=t[inside],
        y=np.exp(y),
        mode="markers",
        marker=dict(symbol="x-thin", size=11, line=dict(width=2, color=ESCAPE_COLOR)),
        customdata=j,
        name="predicted escape tⱼ",
        hovertemplate="predicted escape of j = %{customdata}: t = %{x:.3g}"
        "<extra></extra>",
    )


def _moving_traces(trajectory, overlap, recovery, i, y_range, colors):
    """Cursor line, cursor marker, heatmap and bars at output index ``i``."""
    t = float(trajectory.time[i])
    risk = float(trajectory.risk[0][i])
    k = overlap.shape[1]
    return [
        go.Scatter(
            x=[t, t],
            y=list(y_range),
            mode="lines",
            line=dict(color=CURSOR_COLOR, width=1.5, dash="dot"),
            hoverinfo="skip",
            showlegend=False,
        ),
        go.Scatter(
            x=[t],
            y=[max(risk, y_range[0])] if math.isfinite(risk) else [None],
            mode="markers",
            marker=dict(size=13, color=CURSOR_COLOR, line=dict(width=1, color="white")),
            name="current time",
            hovertemplate="t = %{x:.3g}: risk %{y:.3g}<extra></extra>",
        ),
        go.Heatmap(
            z=overlap[i],
            x=np.arange(1, k + 1),
            y=np.arange(1, k + 1),
            zmin=-1.0,
            zmax=1.0,
            zmid=0.0,
            colorscale="RdBu",
            reversescale=True,
            colorbar=dict(thickness=12, len=0.5, y=0.27, x=0.41, xanchor="left"),
            hovertemplate="i = %{y}, j = %{x}: %{z:.3f}<extra></extra>",
            showscale=True,
        ),
        go.Bar(
            x=np.arange(1, k + 1),
            y=recovery[i].astype(np.float32),
            marker=dict(color=colors),
            hovertemplate="j = %{x}: ρ = %{y:.3f}<extra></extra>",
            showlegend=False,
        ),
    ]


def _animate_button(label: str, from_current: bool) -> dict:
    """Button that plays the frames, from the shown frame or from the first."""
    return dict(
        label=label,
        method="animate",
        args=[
            None,
            dict(
                frame=dict(duration=FRAME_MS, redraw=True),
                transition=dict(duration=0),
                fromcurrent=from_current,
                mode="immediate",
            ),
        ],
    )


def _controls(labels: list[str], names: list[str]) -> tuple[list[dict], list[dict]]:
    """Play, pause and restart buttons and the time slider driving the frames."""
    play = _animate_button("▶ Play", from_current=True)
    pause = dict(
        label="❚❚ Pause",
        method="animate",
        args=[
            [None],
            dict(
                frame=dict(duration=0, redraw=False),
                mode="immediate",
                transition=dict(duration=0),
            ),
        ],
    )
    restart = _animate_button("↺ Restart", from_current=False)
    menus = [
        dict(
            type="buttons",
            direction="left",
            buttons=[play, pause, restart],
            x=0.0,
            y=-0.13,
            xanchor="left",
            yanchor="top",
            pad=dict(t=10, r=10),
            showactive=False,
        )
    ]
    steps = [
        dict(
            method="animate",
            label=label,
            args=[
                [name],
                dict(
                    frame=dict(duration=0, redraw=True),
                    mode="immediate",
                    transition=dict(duration=0),
                ),
            ],
        )
        for label, name in zip(labels, names)
    ]
    sliders = [
        dict(
            active=0,
            steps=steps,
            x=0.3,
            len=0.7,
            y=-0.11,
            yanchor="top",
            currentvalue=dict(prefix="t = ", visible=True, xanchor="right"),
            pad=dict(t=30),
        )
    ]
    return menus, sliders


def training_animation(
    experiment: Experiment, source: str = "flow", frames: int = MAX_FRAMES
) -> go.Figure:
    """Animated replay of the risk, the overlap matrix and the recovery bars.

    Parameters
    ----------
    experiment : the run to replay.
    source : "flow" (population flow) or "sgd" (first SGD seed).
    frames : largest number of frames; the output times are thinned to it.

    Returns a figure whose frames hold, for each replayed output time, the
    cursor on the risk curve, the overlap heatmap (first MAX_DIRECTIONS
    directions, colour range [-1, 1]) and the bars of rho_j (range [0, 1.2]).
    """
    trajectory, name = _source(experiment, source)
    lam = experiment.lam
    k = min(lam.size, MAX_DIRECTIONS, trajectory.overlap.shape[1])
    overlap = _normalised_overlap(trajectory, lam, k)
    recovery = np.asarray(trajectory.recovery[0][:, :k], dtype=np.float64)
    indices = frame_indices(trajectory.time, frames)
    if indices.size == 0:
        raise ValueError("the trajectory has no output time t > 0 to replay")

    risks = [experiment.flow.risk[0], trajectory.risk[0]]
    values = np.concatenate([np.ravel(r) for r in risks])
    values = values[np.isfinite(values) & (values > 0)]
    floor = float(values.max()) * LOG_FLOOR
    y_range = (max(float(values.min()), floor) / 2.0, float(values.max()) * 2.0)
    colors = _bar_colors(k)

    fig = make_subplots(
        rows=2,
        cols=2,
        specs=[[{"colspan": 2}, None], [{}, {}]],
        row_heights=[0.42, 0.58],
        vertical_spacing=0.12,
        horizontal_spacing=0.2,
        subplot_titles=(
            f"Risk ‖M − Q‖²_F, {name}",
            "Θᵀ M Θ / √(λᵢ λⱼ)",
            "Recovery ρⱼ",
        ),
    )
    for trace in _risk_traces(experiment, trajectory, name, floor):
        fig.add_trace(trace, row=1, col=1)
    fig.add_trace(_escape_trace(experiment, floor), row=1, col=1)
    first = _moving_traces(trajectory, overlap, recovery, indices[0], y_range, colors)
    moving = []
    for trace, (row, col) in zip(first, [(1, 1), (1, 1), (2, 1), (2, 2)]):
        fig.add_trace(trace, row=row, col=col)
        moving.append(len(fig.data) - 1)

    names = [str(i) for i in indices]
    fig.frames = [
        go.Frame(
            data=_moving_traces(trajectory, overlap, recovery, i, y_range, colors),
            traces=moving,
            name=frame_name,
        )
        for i, frame_name in zip(indices, names)
    ]
    labels = [f"{trajectory.time[i]:.3g}" for i in indices]
    menus, sliders = _controls(labels, names)
    _layout(fig, y_range, trajectory, k, menus, sliders)
    return fig


def _layout(fig, y_range, trajectory, k, menus, sliders) -> None:
    times = trajectory.time[trajectory.time > 0]
    fig.update_layout(
        template="plotly_white",
        font=dict(size=FONT_SIZE),
        height=HEIGHT,
        margin=dict(l=70, r=30, t=60, b=190),
        title=dict(text="Training replay", x=0.0, xanchor="left"),
        # Bottom left of the risk panel, where the early risk is high and
        # the curve never passes.
        legend=dict(
            x=0.01,
            y=0.66,
            xanchor="left",
            yanchor="bottom",
            bgcolor="rgba(255, 255, 255, 0.85)",
        ),
        updatemenus=menus,
        sliders=sliders,
        uirevision="animation",
        bargap=0.15,
    )
    fig.update_xaxes(
        type="log",
        range=[math.log10(times.min()), math.log10(times.max())],
        title_text="time t = lr · steps",
        exponentformat="power",
        row=1,
        col=1,
    )
    fig.update_yaxes(
        type="log",
        range=[math.log10(y_range[0]), math.log10(y_range[1])],
        title_text="risk",
        exponentformat="power",
        row=1,
        col=1,
    )
    ticks = dict(tickmode="linear", tick0=1, dtick=max(1, math.ceil(k / 8)))
    fig.update_xaxes(
        title_text="direction j",
        range=[0.5, k + 0.5],
        constrain="domain",
        row=2,
        col=1,
        **ticks,
    )
    fig.update_yaxes(
        title_text="direction i",
        range=[k + 0.5, 0.5],
        scaleanchor="x2",
        row=2,
        col=1,
        **ticks,
    )
    fig.update_xaxes(
        title_text="direction j", range=[0.5, k + 0.5], row=2, col=2, **ticks
    )
    fig.update_yaxes(title_text="ρⱼ", range=[0.0, 1.2], row=2, col=2)
    fig.add_hline(y=1.0, line=dict(color="#aaaaaa", width=1, dash="dot"), row=2, col=2)
