"""Pinned runs: small copies of earlier risk curves, overlaid on later figures.

A pinned run keeps its Config field values, the output times and one risk
curve (the SGD seed mean, or the population flow when SGD did not run),
thinned to at most MAX_PINNED_POINTS points. Overlaid traces are dashed and
named by the settings in which the pinned run differs from the current one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import plotly.graph_objects as go

from quadviz.config import FIELDS, Config
from quadviz.experiment import Experiment

MAX_PINNED_RUNS = 4
MAX_PINNED_POINTS = 200
# Differences named in a legend label; the rest are counted, so that the
# legend of a run pinned from another scenario stays one short line.
MAX_LABEL_CHANGES = 3
# Line colours of pinned runs, distinct from those of the risk figure (blue
# risk, orange fit, grey guide, purple escapes).
PINNED_COLORS = ("#1b9e77", "#e7298a", "#66a61e", "#a6761d")

# Short symbol of each Config field in legend labels.
SYMBOLS = {
    "d": "d",
    "beta": "β",
    "r": "r",
    "alpha": "α",
    "normalization": "norm",
    "width": "m",
    "sigma0": "σ₀",
    "noise": "σ_ε",
    "lr": "lr",
    "batch": "B",
    "steps": "steps",
    "t_max": "t_max",
    "points": "points",
    "seeds": "seeds",
    "seed": "seed",
    "device": "device",
    "dtype": "dtype",
    "method": "method",
}


@dataclass(frozen=True)
class PinnedRun:
    """Risk curve of an earlier run and the settings that produced it.

    values : Config field values of the run.
    time : (T,) output times t > 0 (t = lr * steps).
    risk : (T,) SGD seed-mean risk, or the flow risk where SGD did not run.
    source : "SGD mean" or "flow".
    """

    values: dict[str, Any]
    time: np.ndarray
    risk: np.ndarray
    source: str

    @property
    def config(self) -> Config:
        return Config(**self.values)


def pin(experiment: Experiment) -> PinnedRun:
    """Small copy of an experiment's risk curve for later overlays."""
    sgd = experiment.sgd
    if sgd is not None and sgd.time.size >= 2:
        time, risk, source = sgd.time, sgd.risk_mean(), "SGD mean"
    else:
        time, risk, source = experiment.flow.time, experiment.flow.risk[0], "flow"
    # A log axis cannot show t = 0 or a risk of 0.
    keep = (time > 0) & np.isfinite(risk) & (risk > 0)
    time, risk = time[keep], risk[keep]
    if time.size > MAX_PINNED_POINTS:
        index = np.unique(np.linspace(0, time.size - 1, MAX_PINNED_POINTS).round())
        time, risk = time[index.astype(int)], risk[index.astype(int)]
    values = {name: getattr(experiment.config, name) for name in FIELDS}
    return PinnedRun(values, time.astype(np.float64), risk.astype(np.float64), source)


# How the unset optional fields read in a label.
UNSET = {"r": "d^β", "t_max": "lr · steps"}


def _show(name: str, value: Any) -> str:
    if value is None:
        return UNSET.get(name, "unset")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def differences(run: PinnedRun, config: Config) -> list[str]:
    """Settings of ``run`` that differ from ``config``, as "symbol = value"."""
    out = []
    for name in FIELDS:
        value = run.values[name]
        if value != getattr(config, name):
            out.append(f"{SYMBOLS.get(name, name)} = {_show(name, value)}")
    return out


def label(run: PinnedRun, config: Config, index: int) -> str:
    """Legend name such as "pinned 1: α = 1.5, m = 8 (SGD mean)".

    At most MAX_LABEL_CHANGES differences are named, and the rest counted.
    """
    changes = differences(run, config)
    text = ", ".join(changes[:MAX_LABEL_CHANGES]) if changes else "same settings"
    if len(changes) > MAX_LABEL_CHANGES:
        text += f" and {len(changes) - MAX_LABEL_CHANGES} more"
    return f"pinned {index + 1}: {text} ({run.source})"


def _x_factor(run: PinnedRun, x_axis: str) -> float:
    """Factor from flow time t to the requested x quantity, with the run's own lr, B."""
    if x_axis == "time":
        return 1.0
    if x_axis == "steps":
        return 1.0 / run.values["lr"]
    if x_axis == "samples":
        return run.values["batch"] / run.values["lr"]
    raise ValueError(f"invalid x_axis={x_axis!r}: allowed time, samples, steps")


def pinned_traces(
    runs: list[PinnedRun], config: Config, x_axis: str = "time"
) -> list[go.Scatter]:
    """Dashed traces of the pinned runs, labelled by how they differ from ``config``."""
    traces = []
    for index, run in enumerate(runs):
        color = PINNED_COLORS[index % len(PINNED_COLORS)]
        traces.append(
            go.Scatter(
                x=run.time * _x_factor(run, x_axis),
                y=run.risk,
                mode="lines",
                line=dict(color=color, width=2, dash="dash"),
                name=label(run, config, index),
                legendgroup=f"pinned-{index}",
                hovertemplate="%{y:.3g}",
            )
        )
    return traces


def add_pinned(
    figure: go.Figure, runs: list[PinnedRun], config: Config, x_axis: str = "time"
) -> go.Figure:
    """Add the pinned runs to a risk figure in place and return it."""
    if runs:
        figure.add_traces(pinned_traces(runs, config, x_axis))
    return figure


def push(runs: list[PinnedRun], run: PinnedRun) -> list[PinnedRun]:
    """New list with ``run`` appended, dropping the oldest beyond MAX_PINNED_RUNS.

    A run with the same settings as one already pinned replaces it.
    """
    kept = [old for old in runs if old.values != run.values]
    return (kept + [run])[-MAX_PINNED_RUNS:]
