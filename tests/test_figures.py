"""Figure builders on small real experiments: axes, traces, names, limits."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import pytest

from quadviz import figures
from quadviz.config import Config
from quadviz.experiment import dimension_ladder, flow_only, simulate

SMALL = dict(d=64, r=4, width=4, lr=0.02, steps=500, seeds=2)
# Upper bound on the points of all traces of one figure; more makes SVG charts
# slow in the browser.
MAX_POINTS = 5000


@pytest.fixture(scope="module")
def experiment():
    return simulate(Config.create(**SMALL))


@pytest.fixture(scope="module")
def diverged():
    result = simulate(Config.create(**{**SMALL, "lr": 0.5, "steps": 200}))
    assert result.sgd.status == "diverged"
    return result


def _names(fig: go.Figure) -> list[str]:
    return [trace.name or "" for trace in fig.data]


def _point_count(fig: go.Figure) -> int:
    total = 0
    for trace in fig.data:
        values = trace.z if isinstance(trace, go.Heatmap) else trace.x
        total += 0 if values is None else np.asarray(values, dtype=object).size
    return total


def _scatter_only_svg(fig: go.Figure) -> bool:
    return all(not isinstance(trace, go.Scattergl) for trace in fig.data)


@pytest.mark.parametrize("x_axis", ["time", "samples", "steps"])
def test_risk_figure_log_axes(experiment, x_axis):
    fig = figures.risk_figure(experiment, x_axis)
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.exponentformat == "power"
    assert fig.layout.hovermode == "x unified"
    assert fig.layout.uirevision
    assert _scatter_only_svg(fig)


def test_risk_figure_traces(experiment):
    names = _names(figures.risk_figure(experiment))
    assert any(name.startswith("SGD, mean of 2 seeds") for name in names)
    assert any("min to max" in name for name in names)
    assert any(name.startswith("population flow") for name in names)
    assert any(name.startswith("additive") for name in names)
    assert any(name.startswith("fit on") and "slope" in name for name in names)


def test_risk_guide_names_exponent():
    result = simulate(Config.create(**{**SMALL, "alpha": 1.5}))
    names = _names(figures.risk_figure(result))
    guides = [name for name in names if name.startswith("guide")]
    assert len(guides) == 1
    assert "-1.33" in guides[0]


def test_risk_guide_absent_for_small_alpha():
    result = simulate(Config.create(**{**SMALL, "alpha": 0.4}))
    names = _names(figures.risk_figure(result))
    assert not any(name.startswith("guide") for name in names)


def test_risk_values_positive(experiment):
    fig = figures.risk_figure(experiment)
    for trace in fig.data:
        y = np.asarray(trace.y, dtype=np.float64)
        assert np.all(y[np.isfinite(y)] > 0), trace.name
        x = np.asarray(trace.x, dtype=np.float64)
        assert np.all(x > 0), trace.name


def test_risk_x_axis_scales(experiment):
    config = experiment.config
    flow_max = {}
    for x_axis in ("time", "steps", "samples"):
        fig = figures.risk_figure(experiment, x_axis)
        flow = next(t for t in fig.data if (t.name or "").startswith("population"))
        flow_max[x_axis] = float(np.max(flow.x))
    assert flow_max["steps"] == pytest.approx(flow_max["time"] / config.lr)
    assert flow_max["samples"] == pytest.approx(
        flow_max["time"] * config.batch / config.lr
    )


def test_risk_figure_without_sgd():
    result = flow_only(Config.create(**SMALL))
    names = _names(figures.risk_figure(result))
    assert not any(name.startswith("SGD") for name in names)
    assert any(name.startswith("population flow") for name in names)


def test_divergence_annotation(diverged):
    fig = figures.risk_figure(diverged)
    texts = [annotation.text for annotation in fig.layout.annotations]
    assert len(texts) == 1
    assert "diverged" in texts[0]


def test_no_annotation_when_stable(experiment):
    assert len(figures.risk_figure(experiment).layout.annotations) == 0


def test_overlap_heatmap_fixed_range(experiment):
    first = figures.overlap_heatmap(experiment.flow, 1, experiment.lam)
    last = figures.overlap_heatmap(
        experiment.flow, experiment.flow.time.size - 1, experiment.lam
    )
    for fig in (first, last):
        heatmap = fig.data[0]
        assert (heatmap.zmin, heatmap.zmax) == (-1.0, 1.0)
        assert np.asarray(heatmap.z).shape == (4, 4)


def test_overlap_heatmap_converges_to_identity(experiment):
    last = experiment.flow.time.size - 1
    fig = figures.overlap_heatmap(experiment.flow, last, experiment.lam)
    z = np.asarray(fig.data[0].z)
    assert np.allclose(z, np.eye(4), atol=0.2)


def test_spectrum_figure(experiment):
    fig = figures.spectrum_figure(experiment, experiment.flow.time.size - 1)
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.type == "log"
    assert len(fig.data) == 3
    assert _names(fig)[0].startswith("teacher")


def test_dimension_figure_rescales_time(experiment):
    dims = [64, 6400]
    ladder = dimension_ladder(experiment.config, dims)
    fig = figures.dimension_figure(ladder)
    assert len(fig.data) == len(dims)
    assert fig.layout.xaxis.title.text == "t / ln d"
    for trace, (d, trajectory) in zip(fig.data, ladder):
        expected = trajectory.time[trajectory.time > 0].max() / math.log(d)
        assert np.max(trace.x) == pytest.approx(expected)


def test_recovery_figure_lines(experiment):
    fig = figures.recovery_figure(experiment)
    names = _names(fig)
    assert sum(name.endswith(", flow") for name in names) == 4
    assert sum(name.endswith(", SGD mean") for name in names) == 4
    assert "predicted escape (logistic)" in names
    assert fig.layout.xaxis.type == "log"
    assert _scatter_only_svg(fig)


def test_recovery_figure_caps_lines():
    result = flow_only(Config.create(d=4096, r=200, width=200, steps=500))
    fig = figures.recovery_figure(result)
    flow_lines = sum(name.endswith(", flow") for name in _names(fig))
    assert flow_lines <= figures.MAX_RECOVERY_LINES
    assert "of 200 directions" in fig.layout.title.text
    assert _point_count(fig) < MAX_POINTS


def test_recovery_heatmap(experiment):
    fig = figures.recovery_heatmap(experiment.flow, experiment.escape_predicted)
    heatmap = fig.data[0]
    positive_times = int(np.sum(experiment.flow.time > 0))
    assert np.asarray(heatmap.z).shape == (4, positive_times)
    assert (heatmap.zmin, heatmap.zmax) == (0.0, 1.0)
    assert fig.layout.xaxis.type == "log"


def test_escape_figure(experiment):
    fig = figures.escape_figure(experiment)
    names = _names(fig)
    assert fig.layout.xaxis.type == "log"
    assert fig.layout.yaxis.type == "log"
    assert names[0].startswith("predicted")
    assert any(name == "guide slope α = 1.00" for name in names)


def test_escape_times_keys(experiment):
    times = figures.escape_times(experiment)
    assert set(times) == {"predicted", "flow", "sgd"}
    for values in times.values():
        assert values.shape == (4,)


def test_point_counts_bounded(experiment):
    builders = [
        figures.risk_figure(experiment),
        figures.recovery_figure(experiment),
        figures.recovery_heatmap(experiment.flow),
        figures.escape_figure(experiment),
        figures.spectrum_figure(experiment, 3),
        figures.overlap_heatmap(experiment.flow, 3, experiment.lam),
    ]
    for fig in builders:
        assert _point_count(fig) < MAX_POINTS, fig.layout.title.text


@pytest.mark.parametrize(
    "low, high, labels",
    [
        (0.7, 0.99, ["0.7", "0.8", "0.9", "1"]),
        (0.012, 0.09, ["0.02", "0.03", "0.04", "0.05", "0.06", "0.07", "0.08", "0.09"]),
        (1.2e-5, 8e-5, ["2×10⁻⁵", "3×10⁻⁵", "4×10⁻⁵", "5×10⁻⁵", "6×10⁻⁵", "7×10⁻⁵",
                        "8×10⁻⁵"]),
        (3.21e-6, 3.49e-6, ["3.2×10⁻⁶", "3.4×10⁻⁶", "3.6×10⁻⁶"]),
    ],
)
def test_narrow_log_axis_has_plain_labels(low, high, labels):
    """Under a decade, ticks read as numbers, not plotly's single digits."""
    axis = figures._log_axis("risk", np.geomspace(low, high, 30))
    assert "dtick" not in axis
    assert axis["tickmode"] == "array"
    assert axis["ticktext"] == labels
    for value, text in zip(axis["tickvals"], axis["ticktext"]):
        plain = text.replace("×10", "e").translate(str.maketrans("⁻⁰¹²³⁴⁵⁶⁷⁸⁹", "-0123456789"))
        if plain.startswith("e"):
            plain = "1" + plain
        assert float(plain) == pytest.approx(value)


def test_wide_log_axis_keeps_decade_ticks():
    axis = figures._log_axis("risk", np.geomspace(1e-6, 1.0, 30))
    assert axis["dtick"] == 1
    assert "tickvals" not in axis
