"""Training replay: frames, fixed ranges and the play, pause and slider controls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from quadviz import animation
from quadviz.config import Config
from quadviz.experiment import flow_only, simulate

# t = lr * steps = 6, past the first escapes.
SMALL = Config(d=64, r=4, width=4, lr=0.02, steps=300, seeds=2, points=60)


@pytest.fixture(scope="module")
def experiment():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield simulate(SMALL)
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def figure(experiment):
    return animation.training_animation(experiment, "flow")


def test_frame_indices_positive_and_capped():
    time = np.concatenate([[0.0], np.geomspace(1e-3, 10, 500)])
    indices = animation.frame_indices(time, 80)
    assert indices.size <= 80
    assert np.all(time[indices] > 0)
    assert indices[0] == 1
    assert indices[-1] == time.size - 1


def test_one_frame_per_output_time(experiment, figure):
    positive = int(np.sum(experiment.flow.time > 0))
    assert len(figure.frames) == min(positive, animation.MAX_FRAMES)


def test_frames_update_cursor_heatmap_bars(figure):
    types = [trace.type for trace in figure.frames[0].data]
    assert types == ["scatter", "scatter", "heatmap", "bar"]
    moving = list(figure.frames[0].traces)
    assert [figure.data[i].type for i in moving] == types


def test_heatmap_colour_range_fixed(figure):
    ranges = {(f.data[2].zmin, f.data[2].zmax) for f in figure.frames}
    assert ranges == {(-1.0, 1.0)}


def test_bars_follow_recovery(experiment, figure):
    last = figure.frames[-1]
    index = int(last.name)
    expected = experiment.flow.recovery[0][index, :4]
    assert np.allclose(last.data[3].y, expected, atol=1e-6)


def test_cursor_moves_forward(figure):
    times = [frame.data[1].x[0] for frame in figure.frames]
    assert np.all(np.diff(times) > 0)


def test_play_pause_buttons(figure):
    labels = [b.label for b in figure.layout.updatemenus[0].buttons]
    assert any("Play" in label for label in labels)
    assert any("Pause" in label for label in labels)
    play = figure.layout.updatemenus[0].buttons[0]
    assert play.method == "animate"
    assert play.args[1]["fromcurrent"] is True


def test_slider_steps_match_frames(figure):
    steps = figure.layout.sliders[0].steps
    assert [s.args[0][0] for s in steps] == [f.name for f in figure.frames]


def test_sgd_source_uses_first_seed(experiment):
    figure = animation.training_animation(experiment, "sgd")
    last = figure.frames[-1]
    index = int(last.name)
    assert np.allclose(last.data[3].y, experiment.sgd.recovery[0][index], atol=1e-6)


def test_sgd_source_needs_sgd():
    with pytest.raises(ValueError, match="SGD run"):
        animation.training_animation(flow_only(SMALL), "sgd")


def test_unknown_source_rejected(experiment):
    with pytest.raises(ValueError, match="allowed flow, sgd"):
        animation.training_animation(experiment, "adam")


def test_predicted_escapes_marked(experiment, figure):
    marks = next(t for t in figure.data if t.name == "predicted escape tⱼ")
    assert len(marks.x) >= 1
    assert np.all(np.isin(marks.x, experiment.escape_predicted))
