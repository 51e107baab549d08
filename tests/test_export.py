"""Export: figure data as CSV and JSON, HTML, and configurations the CLI reads.

The round trip at the end takes the configuration of a run shown in the app,
writes it as JSON, runs ``python -m quadviz simulate --config`` on it in a
subprocess and compares the numbers with the app's figure.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import streamlit as st
import torch
from streamlit.testing.v1 import AppTest

from quadviz import export
from quadviz.app import controls
from quadviz.cli import experiment_json, main
from quadviz.config import FIELDS, Config, ConfigError
from quadviz.experiment import simulate
from quadviz.figures import overlap_heatmap, risk_figure

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
SMALL = Config(d=64, r=4, width=4, steps=300, seeds=2, points=12)


@pytest.fixture(scope="module")
def experiment():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield simulate(SMALL)
    finally:
        torch.set_num_threads(threads)


def _figure() -> go.Figure:
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[1.0, 2.0, 3.0], y=[0.5, np.nan, 0.125], name="a"))
    fig.add_trace(go.Scatter(x=[None], y=[None], name="legend stub"))
    fig.add_trace(go.Heatmap(z=[[1.0, 2.0], [3.0, 4.0]], x=[10, 20], y=[1, 2]))
    fig.update_layout(title_text="test figure", xaxis_title="t", yaxis_title="R")
    return fig


# ---------------------------------------------------------------- figures


def test_csv_rows_per_point_and_cell():
    rows = list(csv.reader(io.StringIO(export.figure_csv(_figure()))))
    assert rows[0] == list(export.CSV_COLUMNS)
    assert len(rows) == 1 + 3 + 4


def test_csv_nan_is_empty_cell():
    rows = list(csv.reader(io.StringIO(export.figure_csv(_figure()))))
    assert rows[2] == ["test figure", "a", "2.0", "", ""]


def test_csv_heatmap_cells():
    rows = list(csv.reader(io.StringIO(export.figure_csv(_figure()))))
    cells = [(r[2], r[3], r[4]) for r in rows[4:]]
    assert cells == [
        ("10", "1", "1.0"),
        ("20", "1", "2.0"),
        ("10", "2", "3.0"),
        ("20", "2", "4.0"),
    ]


def test_json_traces_and_titles():
    document = json.loads(export.figure_json(_figure()))
    assert document["title"] == "test figure"
    assert document["x_title"] == "t"
    assert [t["name"] for t in document["traces"]] == ["a", "trace 3"]
    assert document["traces"][0]["y"] == [0.5, None, 0.125]
    assert document["traces"][1]["z"] == [1.0, 2.0, 3.0, 4.0]


def test_risk_figure_csv_matches_traces(experiment):
    figure = risk_figure(experiment)
    rows = list(csv.DictReader(io.StringIO(export.figure_csv(figure))))
    names = [t.name or "" for t in figure.data]
    flow_name = next(n for n in names if n.startswith("population"))
    flow_rows = [r for r in rows if r["trace"] == flow_name]
    flow_trace = next(t for t in figure.data if t.name == flow_name)
    assert [float(r["y"]) for r in flow_rows] == list(flow_trace.y)


def test_heatmap_figure_json(experiment):
    figure = overlap_heatmap(experiment.flow, 3, experiment.lam)
    document = json.loads(export.figure_json(figure))
    assert len(document["traces"][0]["z"]) == 4 * 4


def test_html_is_standalone(experiment):
    html = export.figure_html(risk_figure(experiment))
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert '<script src="http' not in html
    assert "Plotly.newPlot" in html
    assert len(html) > 1_000_000


# ---------------------------------------------------------------- configs


def test_config_json_has_exactly_fields():
    document = json.loads(export.config_json(SMALL))
    assert list(document) == list(FIELDS)
    assert document["t_max"] is None


def test_config_json_round_trip(tmp_path):
    config = Config(d=128, alpha=1.15, lr=0.0012345678901234567, t_max=3.5, seed=7)
    path = tmp_path / "config.json"
    path.write_text(export.config_json(config))
    assert Config.create(**export.load_config(path)) == config


def test_config_values_accept_cli_output(experiment):
    document = json.loads(json.dumps(experiment_json(experiment)))
    values = export.config_values(document)
    assert Config.create(**values) == SMALL


def test_config_values_reject_unknown_key():
    with pytest.raises(ConfigError, match="colour"):
        export.config_values({"d": 64, "colour": "red"})


def test_config_values_reject_non_object():
    with pytest.raises(ConfigError):
        export.config_values([1, 2, 3])


# ---------------------------------------------------------------- CLI


def test_cli_config_flag(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(export.config_json(SMALL))
    code = main(["flow", "--config", str(path), "--points", "5"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["config"]["d"] == 64
    assert document["config"]["points"] == 5


def test_cli_flag_overrides_config(tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(export.config_json(SMALL))
    code = main(["simulate", "--config", str(path), "--seed", "5", "--steps", "20"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["config"]["seed"] == 5
    assert document["config"]["width"] == 4


@pytest.mark.parametrize(
    "text, message",
    [("{not json", "invalid JSON"), ('{"d": -5}', "invalid d=-5"), ("[]", "config")],
)
def test_cli_bad_config_file(tmp_path, capsys, text, message):
    path = tmp_path / "config.json"
    path.write_text(text)
    code = main(["flow", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err


def test_cli_missing_config_file(tmp_path, capsys):
    code = main(["flow", "--config", str(tmp_path / "missing.json")])
    assert code == 2
    assert "failed to read --config" in capsys.readouterr().err


def _decode(values) -> np.ndarray:
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), values["dtype"])
    return np.asarray(values, dtype=np.float64)


def test_app_config_reruns_identically_in_cli(tmp_path):
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(
        {"d": "64", "r": "4", "width": "4", "steps": "300", "seeds": "2"}
    )
    at.run()
    config = at.session_state[controls.CONFIG_KEY]
    spec = json.loads(next(c for c in at.get("plotly_chart")).proto.spec)
    traces = {t.get("name", ""): t for t in spec["data"]}
    st.cache_data.clear()

    path, out = tmp_path / "config.json", tmp_path / "out.json"
    path.write_text(export.config_json(config))
    # One torch thread, as in the app; more only slow a busy 2-core machine.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "quadviz", "simulate", "--config", str(path)]
    subprocess.run(command + ["--out", str(out)], cwd=ROOT, env=env, check=True)
    document = json.loads(out.read_text())

    assert Config.create(**export.config_values(document)) == config
    flow = traces["population flow (Riccati), same W₀"]
    sgd_mean = next(t for name, t in traces.items() if name.startswith("SGD, mean"))
    time = np.asarray(document["time"])
    risk_sgd = np.asarray(document["risk_sgd"]).mean(axis=0)
    assert np.array_equal(_decode(flow["x"]), time[time > 0])
    assert np.array_equal(_decode(flow["y"]), np.asarray(document["risk_flow"])[1:])
    assert np.array_equal(_decode(sgd_mean["y"]), risk_sgd[1:])
