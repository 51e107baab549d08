"""Theory formulas against independent calculations."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from quadviz import theory
from quadviz.riccati import RiccatiFlow
from quadviz.teacher import spectrum


def test_fit_recovers_exact_power_law():
    t = np.geomspace(1, 1e4, 50)
    fit = theory.fit_power_law(t, 3.0 * t**-1.3, window=(10, 1e3))
    assert fit.ok
    assert fit.slope == pytest.approx(-1.3, abs=1e-10)
    assert fit.stderr < 1e-8
    assert fit.t_lo >= 10
    assert fit.t_hi <= 1e3


def test_auto_window_skips_plateau_and_floor():
    t = np.geomspace(1e-3, 1e4, 120)
    y = 1.0 / (1.0 + (t / 1.0) ** 1.5) + 1e-6
    fit = theory.fit_power_law(t, y)
    assert fit.ok
    assert fit.t_lo >= 0.5
    assert fit.slope == pytest.approx(-1.5, abs=0.15)


def test_fit_reports_failure_on_flat_curve():
    fit = theory.fit_power_law(np.geomspace(1, 10, 20), np.ones(20))
    assert not fit.ok
    assert fit.reason


def test_logistic_matches_decoupled_ode():
    lam, z0 = np.array([0.7]), np.array([1e-3])
    times = np.array([0.0, 0.5, 1.0, 2.0])
    sol = solve_ivp(
        lambda _, z: 8 * z * (lam - z), (0, 2), z0, t_eval=times, rtol=1e-11, atol=1e-14
    )
    z = theory.logistic_overlap(lam, z0, times)[:, 0]
    np.testing.assert_allclose(z, sol.y[0], rtol=1e-7)


def test_escape_time_matches_flow_when_initial_state_commutes():
    """With W_0 diagonal in the teacher basis the flow is exactly logistic."""
    r = 5
    lam = spectrum(r, 1.0)
    z0 = np.full(r, 1e-4)
    state = np.vstack([np.diag(np.sqrt(z0)), np.zeros((r, r))])
    times = np.geomspace(1e-2, 200, 400)
    flow = RiccatiFlow(lam, state).solve(times)
    measured = theory.measured_escape_times(times, flow.recovery[0])
    predicted = theory.escape_times(lam, z0)
    np.testing.assert_allclose(measured, predicted, rtol=5e-3)


def test_escape_beyond_width_is_infinite():
    t = theory.escape_times(spectrum(6, 1.0), np.full(6, 1e-4), width=4)
    assert np.all(np.isfinite(t[:4]))
    assert np.all(np.isinf(t[4:]))


def test_exponents_and_floor():
    assert theory.asymptotic_exponent(1.0) == pytest.approx(-1.0)
    assert theory.asymptotic_exponent(1.5) == pytest.approx(-4.0 / 3.0)
    assert np.isnan(theory.asymptotic_exponent(0.5))
    assert theory.compute_exponent(1.0) == pytest.approx(-0.5)
    lam = spectrum(10, 1.0)
    assert theory.width_floor(lam, 4) == pytest.approx(np.sum(lam[4:] ** 2))
    assert theory.width_floor(lam, 10) == 0.0


def test_additive_model_starts_at_initial_risk():
    lam = spectrum(4, 1.0)
    z0 = np.full(4, 1e-3)
    traj = theory.additive_model(lam, z0, np.array([0.0, 1e4]), width=2)
    # directions beyond the width are never learned and count fully
    expected = np.sum((lam[:2] - z0[:2]) ** 2) + np.sum(lam[2:] ** 2)
    assert traj.risk[0, 0] == pytest.approx(expected)
    assert traj.risk[0, -1] == pytest.approx(np.sum(lam[2:] ** 2))


def test_stability_limit_scales_with_batch():
    lam = spectrum(4, 1.0)
    small = theory.lr_stability_limit(1024, 32, lam)
    large = theory.lr_stability_limit(1024, 64, lam)
    assert large == pytest.approx(2 * small)
    assert theory.lr_stability_limit(64, 10**4, lam) <= 1.0 / (4 * lam[0])
