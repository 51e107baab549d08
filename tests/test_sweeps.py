"""Sweeps, their table and the scaling fits, against independent calculations."""

import csv
import json
import math

import numpy as np
import pytest

from quadviz import scaling, sweeps, theory
from quadviz.cli import main
from quadviz.config import Config, ConfigError
from quadviz.result import Trajectory
from quadviz.riccati import RiccatiFlow
from quadviz.teacher import spectrum

# Relative error allowed between an escape time read off a 400-point
# log-spaced grid (interpolated in log t) and the closed form.
ESCAPE_RTOL = 0.01
# Relative error allowed for an exponent fitted to an exact power law.
EXACT_FIT_TOL = 1e-9
# The escape-time slope of the flow must be within this fraction of alpha.
ESCAPE_SLOPE_RTOL = 0.10

SMALL = Config.create(d=64, r=4, width=4, lr=0.02, points=30, seeds=2)


def _run_from_state(config: Config, state0: np.ndarray, times: np.ndarray):
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    r = lam.size
    z0 = np.einsum("ij,ij->i", state0[:r], state0[:r])
    flow = RiccatiFlow(lam, state0).solve(times)
    escape = theory.escape_times(lam, z0, config.width)
    return sweeps.Run(1.0, config, float(times[-1]), lam, flow, escape, z0)


def _commuting_state(z0: np.ndarray) -> np.ndarray:
    """Reduced state [P; F] with P = diag(sqrt(z0)) and F = 0, so that
    M_0 = diag(z0) commutes with Q and every z_j stays logistic."""
    r = z0.size
    return np.vstack([np.diag(np.sqrt(z0)), np.zeros((r, r))])


def _logistic_gap(lam, z0, t):
    """lambda - z(t) of the logistic solution, without cancellation."""
    q = (lam / z0 - 1.0) * np.exp(-8.0 * lam * t)
    return lam * q / (1.0 + q)


# ---------------------------------------------------------------- fits


def test_fit_risk_exact_power_law():
    config = SMALL.replace(width=4)
    t = np.geomspace(1.0, 1e4, 50)
    risk = 3.0 * t**-1.37
    flow = Trajectory("flow", t, risk[None], np.ones((1, t.size, 4)))
    lam = spectrum(4, 1.0)
    run = sweeps.Run(1.0, config, t[-1], lam, flow, np.full(4, np.inf), np.ones(4))

    fit = scaling.fit_risk(run, "alpha", window=(10.0, 1e3))

    assert fit.fit.ok
    assert fit.fit.slope == pytest.approx(-1.37, rel=EXACT_FIT_TOL)
    assert fit.fit.stderr < 1e-9
    assert fit.window == scaling.WINDOW_USER
    assert fit.fit.t_lo >= 10.0
    assert fit.fit.t_hi <= 1e3


def test_fit_frontier_exact_power_law():
    compute = np.geomspace(1e6, 1e12, 200)
    width = np.repeat([4, 8, 16, 32], 50)
    front = scaling.Frontier(compute, 2.0 * compute**-0.42, width, 1.0)

    fit = scaling.fit_frontier(front)

    assert fit.window == scaling.WINDOW_HANDOVER
    assert fit.fit.slope == pytest.approx(-0.42, rel=EXACT_FIT_TOL)
    assert fit.predicted == pytest.approx(-0.5)
    assert fit.fit.t_lo == pytest.approx(compute[50])
    assert fit.fit.t_hi == pytest.approx(compute[149])


def test_finite_size_exponent_matches_numerical_slope():
    """s(J) against d ln R / d ln t from t_J and R(J) = J^(1 - 2 alpha)."""
    alpha, z0 = 1.5, 1e-7
    J = np.geomspace(10.0, 20.0, 2001)
    lam = J**-alpha
    t = np.log(lam / z0 - 1.0) / (8.0 * lam)
    slope = np.gradient((1 - 2 * alpha) * np.log(J), np.log(t))
    mid = J.size // 2
    expected = scaling.finite_size_exponent(alpha, float(lam[mid]), z0)
    assert slope[mid] == pytest.approx(expected, rel=1e-5)
    assert expected < theory.asymptotic_exponent(alpha)


def test_finite_size_exponent_without_plateau():
    assert math.isnan(scaling.finite_size_exponent(1.5, 1e-3, 1e-3))
    assert math.isnan(scaling.finite_size_exponent(0.5, 1.0, 1e-6))


# ---------------------------------------------------------------- escape times


def test_escape_times_commuting_state_logistic():
    config = Config.create(d=10**6, r=8, width=8, alpha=1.0, points=400)
    lam = spectrum(8, 1.0)
    z0 = 1e-6 * np.arange(1, 9)
    times = np.concatenate([[0.0], np.geomspace(1e-2, 1e3, 400)])
    run = _run_from_state(config, _commuting_state(z0), times)

    measured = scaling.escape_times(run)
    expected = np.log(lam / z0 - 1.0) / (8.0 * lam)

    np.testing.assert_allclose(measured, expected, rtol=ESCAPE_RTOL)
    np.testing.assert_allclose(run.escape_predicted, expected, rtol=1e-12)


def test_table_risk_commuting_state_logistic():
    config = Config.create(d=10**6, r=6, width=6, alpha=1.0, lr=0.01, batch=4)
    lam = spectrum(6, 1.0)
    z0 = np.full(6, 1e-5)
    times = np.concatenate([[0.0], np.geomspace(0.1, 300.0, 40)])
    run = _run_from_state(config, _commuting_state(z0), times)
    rows = sweeps.Sweep("alpha", (run,)).rows()

    t = np.array([row["time"] for row in rows])
    risk = np.array([row["risk"] for row in rows])
    gap = _logistic_gap(lam[None], z0[None], t[:, None])
    expected = np.sum(gap**2, axis=1)

    np.testing.assert_allclose(t, times[1:])
    np.testing.assert_allclose(risk, expected, rtol=1e-6, atol=1e-14)


def test_fit_escape_predicted_slope_large_d():
    """With a long plateau (ln(lambda/z0) large) t_j ~ j^alpha almost exactly."""
    config = Config.create(d=10**9, r=32, width=32, alpha=1.0, sigma0=1e-3)
    lam = spectrum(32, 1.0)
    z0 = np.full(32, 1e-30)
    escape = theory.escape_times(lam, z0, 32)
    flow = Trajectory("flow", np.array([0.0, 1.0]), np.ones((1, 2)))
    run = sweeps.Run(1.0, config, 1.0, lam, flow, escape, z0)
    fit = scaling.fit_escape(run, "alpha", "predicted")
    assert fit.fit.slope == pytest.approx(1.0, rel=0.05)


# ---------------------------------------------------------------- sweep table


@pytest.fixture(scope="module")
def width_sweep():
    base = Config.create(d=10**4, r=16, width=16, alpha=1.0, lr=0.01, batch=8,
                         points=40)
    spec = sweeps.SweepSpec(base, "width", (2, 4, 8, 16))
    return sweeps.run_sweep(spec)


def test_sweep_rows_columns_and_units(width_sweep):
    rows = width_sweep.rows()
    assert set(rows[0]) == set(sweeps.ROW_FIELDS)
    assert len(rows) == 4 * 40
    for row in rows:
        assert row["method"] == "flow"
        assert row["steps"] == pytest.approx(row["time"] / row["lr"])
        assert row["samples"] == pytest.approx(row["batch"] * row["time"] / row["lr"])
        assert row["flops"] == pytest.approx(
            4 * row["d"] * row["width"] * row["samples"]
        )
        assert row["width"] == row["value"]
        assert row["r"] == 16


def test_sweep_final_risk_at_width_floor(width_sweep):
    for row in scaling.final_risks(width_sweep):
        if row["width"] < row["r"]:
            assert row["risk"] == pytest.approx(row["floor"], rel=0.05)
        else:
            assert row["risk"] < 1e-4


def test_frontier_below_every_curve(width_sweep):
    front = scaling.frontier(width_sweep)
    for run in width_sweep.runs:
        flops, risk = scaling.compute_curve(run)
        on_grid = np.interp(np.log(front.compute), np.log(flops), np.log(risk),
                            left=np.inf, right=np.log(risk[-1]))
        assert np.all(np.log(front.risk) <= on_grid + 1e-12)
    assert set(np.unique(front.width)) <= {2, 4, 8, 16}
    assert scaling.handover_window(front) is not None


def test_escape_rows_methods(width_sweep):
    rows = width_sweep.escape_rows()
    assert {row["method"] for row in rows} == {"predicted", "flow"}
    assert len(rows) == 4 * 2 * 16
    assert set(rows[0]) == set(sweeps.ESCAPE_FIELDS)


def test_run_configs_pin_rank_when_sweeping_d():
    base = Config.create(d=256, beta=0.5, width=4)
    configs = sweeps.run_configs(base, "d", (256, 4096))
    assert [c.teacher_rank for c in configs] == [16, 16]


def test_run_configs_keep_lr_scale_and_batch():
    base = Config.create(d=256, r=4, width=4, batch=256, lr=0.05)
    configs = sweeps.run_configs(base, "d", (256, 1024), keep_lr_scale=True,
                                 batch_equals_d=True)
    assert [c.batch for c in configs] == [256, 1024]
    assert [c.lr * c.d / c.batch for c in configs] == pytest.approx([0.05, 0.05])


def test_run_configs_invalid_param():
    with pytest.raises(ConfigError, match="param"):
        sweeps.run_configs(SMALL, "steps", (1,))
    with pytest.raises(ConfigError, match="alpha"):
        sweeps.run_configs(SMALL, "alpha", (-1.0,))


def test_sweep_with_sgd_rows():
    spec = sweeps.SweepSpec(SMALL, "alpha", (1.0,), horizon=5.0, sgd=True)
    sweep = sweeps.run_sweep(spec)
    rows = sweep.rows()
    sgd_rows = [row for row in rows if row["method"] == "sgd"]
    assert sgd_rows
    assert all(row["seeds"] == 2 and row["risk_std"] is not None for row in sgd_rows)
    assert sgd_rows[-1]["time"] == pytest.approx(5.0)
    assert sweep.notes == ()


def test_sgd_skipped_above_budget():
    spec = sweeps.SweepSpec(SMALL, "alpha", (1.0, 1.5), horizon=5.0, sgd=True,
                            sgd_budget=0.0)
    sweep = sweeps.run_sweep(spec)
    assert all(run.sgd is None for run in sweep.runs)
    assert len(sweep.notes) == 2
    assert "budget" in sweep.notes[0]


def test_sgd_skipped_when_too_many_steps():
    base = Config.create(d=10**6, r=4, width=4, lr=1e-7, batch=1)
    spec = sweeps.SweepSpec(base, "alpha", (1.0,), sgd=True)
    (ok, note), = spec.sgd_plan()
    assert not ok
    assert "steps" in note


def test_progress_reaches_one():
    reports = []
    sweeps.run_sweep(sweeps.SweepSpec(SMALL, "sigma0", (0.1, 0.2)),
                     lambda f, text: reports.append((f, text)))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert any("sigma0 = 0.2" in text for _, text in reports)


def test_estimates_grow_with_width():
    base = Config.create(d=10**6, r=256, width=256)
    small = sweeps.flow_seconds(base.replace(width=16), 1e3)
    large = sweeps.flow_seconds(base, 1e3)
    assert 0 < small < large


def test_reconstruction_preset():
    plan = sweeps.reconstruction()
    flow = plan.flow.base
    assert flow.d == 3200
    assert flow.teacher_rank == 2400
    assert flow.alpha == 1.0
    assert flow.batch == 3200
    assert "reconstruction" in plan.notes[0].lower()
    assert plan.sgd is not None
    sgd = plan.sgd.base
    assert sgd.batch == sgd.d
    assert sgd.teacher_rank * 4 == sgd.d * 3
    assert plan.sgd.estimated_seconds() <= sweeps.SGD_BUDGET_SECONDS


# ---------------------------------------------------------------- scaling law


@pytest.mark.slow
def test_flow_exponents_alpha_1_5():
    """alpha = 1.5, m = r = 256, d = 10^6: the fitted risk exponent lies
    between the d -> infinity value and the log-correction bound s(J_end),
    and the escape-time slope is within 10 percent of alpha."""
    alpha = 1.5
    base = Config.create(d=10**6, r=256, width=256, alpha=alpha, sigma0=0.1,
                         points=60)
    sweep = sweeps.run_sweep(sweeps.SweepSpec(base, "alpha", (alpha,)))
    run = sweep.runs[0]

    fit = scaling.fit_risk(run, "alpha")
    escape = scaling.fit_escape(run, "alpha")

    assert fit.fit.ok, fit.fit.reason
    assert fit.window == scaling.WINDOW_EMERGENCE
    assert fit.finite_size < fit.fit.slope < theory.asymptotic_exponent(alpha)
    assert fit.additive < fit.fit.slope
    assert escape.fit.slope == pytest.approx(alpha, rel=ESCAPE_SLOPE_RTOL)


# ---------------------------------------------------------------- command line


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_cli_sweep_csv_and_json_same_rows(tmp_path):
    flags = ["sweep", "--param", "alpha", "--values", "0.75,1,1.5", "--d", "1000",
             "--r", "8", "--width", "8", "--points", "12"]
    csv_path, json_path = tmp_path / "table.csv", tmp_path / "table.json"
    fits_path = tmp_path / "fits.json"
    assert main([*flags, "--out", str(csv_path)]) == 0
    assert main([*flags, "--out", str(json_path), "--fits", str(fits_path)]) == 0

    from_csv = _csv_rows(csv_path)
    from_json = json.loads(json_path.read_text())
    assert len(from_csv) == len(from_json) == 3 * 12
    assert list(from_csv[0]) == list(sweeps.ROW_FIELDS)
    for a, b in zip(from_csv, from_json):
        for key in sweeps.ROW_FIELDS:
            if b[key] is None:
                assert a[key] == ""
            elif isinstance(b[key], str):
                assert a[key] == b[key]
            else:
                assert float(a[key]) == pytest.approx(b[key], rel=1e-15)
    fits = json.loads(fits_path.read_text())
    assert {f["quantity"] for f in fits} == {"risk vs time", "escape time vs j"}


def test_cli_sweep_invalid_value(capsys):
    code = main(["sweep", "--param", "width", "--values", "4,abc"])
    assert code == 2
    err = capsys.readouterr().err
    assert "width='abc'" in err
    assert "allowed" in err
