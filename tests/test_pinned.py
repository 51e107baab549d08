"""Pinned runs: small copies, legend labels, the cap of four, and overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quadviz import pinned
from quadviz.config import Config
from quadviz.experiment import flow_only, simulate
from quadviz.figures import risk_figure

SMALL = Config(d=64, r=4, width=4, steps=300, seeds=2, points=12)


@pytest.fixture(scope="module")
def experiment():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield simulate(SMALL)
    finally:
        torch.set_num_threads(threads)


def test_pin_keeps_sgd_mean(experiment):
    run = pinned.pin(experiment)
    keep = experiment.sgd.time > 0
    assert run.source == "SGD mean"
    assert np.array_equal(run.time, experiment.sgd.time[keep])
    assert np.array_equal(run.risk, experiment.sgd.risk_mean()[keep])
    assert run.config == SMALL


def test_pin_flow_without_sgd():
    run = pinned.pin(flow_only(SMALL))
    assert run.source == "flow"
    assert np.all(run.time > 0)


def test_pin_thins_long_curves():
    run = pinned.pin(flow_only(SMALL.replace(points=1000)))
    assert run.time.size <= pinned.MAX_PINNED_POINTS
    assert run.risk.size == run.time.size


def test_label_names_differences(experiment):
    run = pinned.pin(experiment)
    current = SMALL.replace(alpha=1.5, width=2)
    assert pinned.differences(run, current) == ["α = 1", "m = 4"]
    assert pinned.label(run, current, 0) == "pinned 1: α = 1, m = 4 (SGD mean)"


def test_label_same_settings(experiment):
    run = pinned.pin(experiment)
    assert pinned.label(run, SMALL, 1) == "pinned 2: same settings (SGD mean)"


def test_push_caps_at_four(experiment):
    runs = []
    for seed in range(6):
        run = pinned.pin(experiment)
        run = pinned.PinnedRun({**run.values, "seed": seed}, run.time, run.risk, "x")
        runs = pinned.push(runs, run)
    assert len(runs) == pinned.MAX_PINNED_RUNS
    assert [r.values["seed"] for r in runs] == [2, 3, 4, 5]


def test_push_replaces_same_settings(experiment):
    run = pinned.pin(experiment)
    assert len(pinned.push([run], run)) == 1


def test_overlay_dashed_and_scaled(experiment):
    run = pinned.pin(experiment)
    figure = pinned.add_pinned(
        risk_figure(experiment, "samples"), [run], SMALL, "samples"
    )
    trace = figure.data[-1]
    assert trace.line.dash == "dash"
    assert trace.name.startswith("pinned 1")
    factor = SMALL.batch / SMALL.lr
    assert np.allclose(trace.x, run.time * factor)


def test_overlay_rejects_unknown_axis(experiment):
    with pytest.raises(ValueError, match="x_axis"):
        pinned.pinned_traces([pinned.pin(experiment)], SMALL, "epochs")


def test_label_counts_extra_differences(experiment):
    run = pinned.pin(experiment)
    current = SMALL.replace(d=128, alpha=1.5, width=2, sigma0=0.5, seed=9)
    label = pinned.label(run, current, 0)
    assert label == "pinned 1: d = 64, α = 1, m = 4 and 2 more (SGD mean)"


def test_label_unset_field(experiment):
    run = pinned.pin(experiment)
    current = SMALL.replace(t_max=2.0)
    assert pinned.differences(run, current) == ["t_max = lr · steps"]
