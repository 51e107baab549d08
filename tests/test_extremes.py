"""Extreme corners of the configuration space, through the engine's entry
points quadviz.experiment.flow_only and simulate, and the figure builders.

Every corner must end in a result (SGD divergence is status "diverged" with
a message) or in a ConfigError, never in another exception, and figures must
stay small enough for a browser.
"""

from __future__ import annotations

import numpy as np
import pytest

from quadviz import budget, figures
from quadviz.config import Config, ConfigError, config_from_mapping
from quadviz.experiment import flow_only, simulate

# Points one Plotly trace may carry; heatmaps count their cells.
MAX_TRACE_POINTS = 5000
MAX_HEATMAP_CELLS = 256 * 400

FLOW_CORNERS = {
    "alpha 0, r 4096, width 1": {
        "d": 4096,
        "r": 4096,
        "width": 1,
        "alpha": 0.0,
        "points": 5,
    },
    "alpha 5, r 4096": {"d": 4096, "r": 4096, "width": 4, "alpha": 5.0, "points": 8},
    "leading-one, d 1e9": {
        "d": 10**9,
        "r": 1024,
        "width": 2,
        "alpha": 0.0,
        "normalization": "leading-one",
        "points": 5,
    },
    "sigma0 1e-300": {
        "d": 256,
        "sigma0": 1e-300,
        "lr": 1.0,
        "t_max": 1e3,
        "points": 20,
    },
    "sigma0 10": {"d": 256, "sigma0": 10.0, "points": 20},
    "width below r, long horizon": {
        "d": 256,
        "r": 64,
        "width": 8,
        "lr": 10.0,
        "t_max": 1e6,
        "points": 20,
    },
    "t 1e9 at d 1e9": {
        "d": 10**9,
        "r": 16,
        "width": 16,
        "lr": 10.0,
        "t_max": 1e9,
        "points": 20,
    },
    "smallest d": {"d": 2, "r": 1, "width": 1, "points": 5},
    "t_max 1e-12": {
        "d": 1000,
        "r": 4,
        "width": 4,
        "lr": 1e-6,
        "t_max": 1e-12,
        "points": 10,
    },
}

SGD_CORNERS = {
    "lr 10, B 1": {
        "d": 64,
        "r": 4,
        "width": 4,
        "lr": 10.0,
        "batch": 1,
        "steps": 500,
        "seeds": 2,
    },
    "lr 10, float64": {
        "d": 64,
        "r": 4,
        "width": 4,
        "lr": 10.0,
        "batch": 1,
        "steps": 500,
        "seeds": 2,
        "dtype": "float64",
    },
    "sigma0 10, lr 0.5": {
        "d": 64,
        "r": 4,
        "width": 4,
        "lr": 0.5,
        "batch": 64,
        "steps": 300,
        "seeds": 2,
        "sigma0": 10.0,
    },
    "reduced, lr 10": {
        "d": 4096,
        "r": 2,
        "width": 2,
        "lr": 10.0,
        "batch": 1,
        "steps": 100,
        "seeds": 1,
        "method": "reduced",
    },
    "noise 10": {
        "d": 64,
        "r": 4,
        "width": 4,
        "lr": 0.01,
        "steps": 300,
        "seeds": 2,
        "noise": 10.0,
    },
    "one step": {
        "d": 256,
        "r": 16,
        "width": 16,
        "lr": 0.02,
        "steps": 1,
        "seeds": 1,
        "points": 2,
    },
    "smallest d, width 2": {
        "d": 2,
        "r": 1,
        "width": 2,
        "lr": 10.0,
        "batch": 1,
        "steps": 100,
    },
    "alpha 0, r 64, width 1": {
        "d": 64,
        "r": 64,
        "width": 1,
        "alpha": 0.0,
        "normalization": "leading-one",
        "lr": 0.1,
        "steps": 200,
        "seeds": 2,
    },
    "sigma0 1e-300": {
        "d": 64,
        "r": 4,
        "width": 4,
        "lr": 1e-6,
        "steps": 50,
        "sigma0": 1e-300,
    },
}


def _draw_all(result) -> list:
    """Every figure the pages draw from one result."""
    return [
        figures.risk_figure(result, "time"),
        figures.risk_figure(result, "samples") if result.sgd is not None else None,
        figures.recovery_figure(result),
        figures.recovery_heatmap(result.flow, result.escape_predicted),
        figures.escape_figure(result),
        figures.spectrum_figure(result, 0),
        figures.overlap_heatmap(result.flow, 0, result.lam),
    ]


def _assert_small(figure) -> None:
    for trace in figure.data:
        if trace.type == "heatmap":
            cells = np.asarray(trace.z).size
            assert cells <= MAX_HEATMAP_CELLS, (trace.name, cells)
            continue
        for axis in ("x", "y"):
            values = getattr(trace, axis, None)
            if values is not None:
                assert len(values) <= MAX_TRACE_POINTS, (trace.name, len(values))


@pytest.mark.parametrize("kwargs", FLOW_CORNERS.values(), ids=FLOW_CORNERS.keys())
def test_flow_corner_is_finite(kwargs):
    result = flow_only(Config.create(**kwargs))
    assert np.all(np.isfinite(result.flow.risk))
    assert np.all(np.isfinite(result.flow.recovery))
    assert np.all(result.flow.risk >= 0)
    for figure in _draw_all(result):
        if figure is not None:
            _assert_small(figure)


@pytest.mark.parametrize("kwargs", SGD_CORNERS.values(), ids=SGD_CORNERS.keys())
def test_sgd_corner_ends_in_result(kwargs):
    config = Config.create(**{"points": 10, **kwargs})
    result = simulate(config)
    sgd = result.sgd
    assert sgd.status in ("ok", "diverged")
    assert sgd.time.size >= 1
    assert np.all(np.isfinite(sgd.risk))
    if sgd.status == "diverged":
        assert "diverged" in sgd.message
        assert "stability limit" in sgd.message
    for figure in _draw_all(result):
        if figure is not None:
            _assert_small(figure)


def test_large_lr_diverges_with_message():
    config = Config.create(d=64, r=4, width=4, lr=10.0, batch=1, steps=500, seeds=2)
    result = simulate(config)
    assert result.sgd.status == "diverged"
    assert "lr = 10" in result.sgd.message


def test_subnormal_lr_with_horizon_is_config_error():
    with pytest.raises(ConfigError, match="t_max"):
        Config.create(lr=5e-324, t_max=1.0)
    config, errors = config_from_mapping({"lr": "5e-324", "t_max": "1"})
    config.validate()
    assert errors


def test_tiny_sigma0_warns():
    float32 = Config.create(sigma0=1e-50)
    fields = [w.field for w in budget.config_warnings(float32)]
    assert fields == ["sigma0"]
    assert budget.config_warnings(float32.replace(dtype="float64")) == []
    tiny = Config.create(sigma0=1e-200, dtype="float64")
    messages = [w.message for w in budget.config_warnings(tiny, with_sgd=False)]
    assert len(messages) == 1
    assert "escape times" in messages[0]


def test_figures_downsample_long_runs():
    # r above the heatmap's 256 rows, 2001 times above its 400 columns
    config = Config.create(d=4096, r=512, width=8, points=2000, alpha=1.0)
    result = flow_only(config)
    for figure in _draw_all(result):
        if figure is not None:
            _assert_small(figure)
