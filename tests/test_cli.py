"""Command line: JSON keys, flags, errors and --init."""

import json
import subprocess
import sys

import numpy as np
import pytest

from quadviz.cli import main

SMALL = [
    "--d",
    "64",
    "--r",
    "4",
    "--width",
    "4",
    "--steps",
    "200",
    "--seeds",
    "2",
    "--points",
    "8",
]


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_simulate_writes_required_keys(capsys):
    code, out, _ = run_cli(["simulate", *SMALL], capsys)
    assert code == 0
    data = json.loads(out)
    for key in (
        "config",
        "lambda",
        "time",
        "step",
        "samples",
        "risk_sgd",
        "risk_flow",
        "recovery_sgd",
        "recovery_flow",
        "escape_time_predicted",
        "status",
        "message",
    ):
        assert key in data
    assert len(data["risk_sgd"]) == 2
    assert len(data["lambda"]) == 4
    assert np.array(data["recovery_sgd"]).shape[::2] == (2, 4)
    assert data["time"] == pytest.approx(np.array(data["step"]) * data["config"]["lr"])


def test_flow_runs_at_huge_dimension(capsys):
    code, out, _ = run_cli(
        [
            "flow",
            "--d",
            "1000000",
            "--r",
            "16",
            "--width",
            "16",
            "--t-max",
            "1000",
            "--points",
            "10",
        ],
        capsys,
    )
    assert code == 0
    data = json.loads(out)
    assert data["config"]["d"] == 10**6
    assert data["risk_flow"][-1] < data["risk_flow"][0]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["simulate", "--d", "-5"], "invalid d="),
        (["simulate", "--bogus", "1"], "unrecognized"),
        (["flow", "--normalization", "l3"], "invalid normalization"),
        (["simulate", "--d", "8", "--width", "16"], "invalid width"),
    ],
)
def test_bad_flags_exit_2_with_one_line(args, needle, capsys):
    code, out, err = run_cli(args, capsys)
    assert code == 2
    assert out == ""
    assert needle in err
    assert len(err.strip().splitlines()) == 1


def test_init_gives_same_start_for_sgd_and_flow(tmp_path, capsys):
    W0 = np.random.default_rng(0).standard_normal((64, 4)) * 0.05
    path = tmp_path / "w0.npy"
    np.save(path, W0)
    out_path = tmp_path / "out.json"
    code, _, _ = run_cli(
        ["simulate", *SMALL, "--init", str(path), "--out", str(out_path)], capsys
    )
    assert code == 0
    data = json.loads(out_path.read_text())
    lam = np.array(data["lambda"])
    expected = np.sum(W0[:4] ** 2, axis=1) / lam
    np.testing.assert_allclose(data["recovery_flow"][0], expected, rtol=1e-10)
    np.testing.assert_allclose(data["recovery_sgd"][0][0], expected, rtol=1e-5)


def test_init_with_wrong_shape_is_rejected(tmp_path, capsys):
    path = tmp_path / "w0.npy"
    np.save(path, np.zeros((10, 3)))
    code, _, err = run_cli(["simulate", *SMALL, "--init", str(path)], capsys)
    assert code == 2
    assert "expected a float array of shape (64, 4)" in err


def test_module_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "quadviz", "flow", "--d", "100", "--points", "3"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"
