"""Figures that single scenarios add to the Overview page.

escape_against_dimension: the escape time of each direction against d, from
population flows at several d. With d on a log axis and t on a linear one,
the logistic prediction t_j = ln(lambda_j d / (sigma0^2 m) - 1) / (8 lambda_j)
is a straight line per direction, of slope ln 10 / (8 lambda_j) per decade.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from quadviz import theory
from quadviz.config import Config
from quadviz.result import Trajectory
from quadviz.teacher import spectrum

# Directions drawn; more make an unreadable bundle of lines.
MAX_DIRECTIONS = 8


def measured_escapes(ladder: list[tuple[int, Trajectory]]) -> np.ndarray:
    """(D, r) first time rho_j reaches 1/2 in each flow of the ladder; nan if never."""
    return np.array(
        [theory.measured_escape_times(tr.time, tr.recovery[0]) for _, tr in ladder]
    )


def predicted_escapes(config: Config, dims: np.ndarray) -> np.ndarray:
    """(D, r) logistic escape times with the expected overlap sigma0^2 m / d."""
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    rows = []
    for d in dims:
        z0 = np.full(lam.size, config.sigma0**2 * config.width / d)
        rows.append(theory.escape_times(lam, z0, config.width))
    return np.array(rows)


def escape_against_dimension(
    ladder: list[tuple[int, Trajectory]], config: Config
) -> go.Figure:
    """Measured (markers) and predicted (dashed) escape times against d.

    ``ladder`` contains population flows at several d with r, alpha, m and
    sigma0 fixed, as :func:`quadviz.experiment.dimension_ladder` returns.
    """
    dims = np.array([d for d, _ in ladder], dtype=np.float64)
    measured = measured_escapes(ladder)
    fine = np.geomspace(dims.min(), dims.max(), 50)
    predicted = predicted_escapes(config, fine)
    r = measured.shape[1]
    drawn = min(r, config.width, MAX_DIRECTIONS)
    colors = sample_colorscale(
        "Viridis", [0.85 * j / max(drawn - 1, 1) for j in range(drawn)]
    )
    fig = go.Figure()
    for j, color in zip(range(drawn), colors):
        fig.add_trace(
            go.Scatter(
                x=dims,
                y=measured[:, j],
                mode="lines+markers",
                line=dict(color=color, width=2.5),
                marker=dict(size=9, color=color),
                name=f"j = {j + 1}, flow",
                legendgroup=f"j{j}",
                hovertemplate="d = %{x:.3g}: t = %{y:.3g}<extra></extra>",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=fine,
                y=predicted[:, j],
                mode="lines",
                line=dict(color=color, width=1.5, dash="dash"),
                name=f"j = {j + 1}, predicted",
                legendgroup=f"j{j}",
                showlegend=j == 0,
                hoverinfo="skip",
            )
        )
    fig.update_layout(
        title=dict(text="Escape time against d", x=0.0, xanchor="left"),
        template="plotly_white",
        font=dict(size=15),
        margin=dict(l=70, r=30, t=60, b=60),
        hovermode="closest",
        uirevision="escape-dimension",
        xaxis=dict(
            type="log",
            title=dict(text="input dimension d"),
            dtick=1,
            exponentformat="power",
            showexponent="all",
        ),
        yaxis=dict(title=dict(text="escape time t (ρⱼ = 1/2)"), rangemode="tozero"),
    )
    if drawn < r:
        fig.update_layout(
            title_text=f"Escape time against d (first {drawn} of {r} directions)"
        )
    return fig
