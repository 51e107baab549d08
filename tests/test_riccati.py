"""Exact flow against scipy's ODE solver, invariants and the Bartlett draw."""

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from quadviz.riccati import RiccatiFlow, bartlett_state, reduce_state, state_risk
from quadviz.teacher import spectrum

RTOL_IVP = 1e-8
RTOL_STEPS = 1e-9


def full_flow_ivp(W0, lam, times):
    """Integrate dW/dt = -4 (W W^T - Q) W in all d x m coordinates."""
    d, m = W0.shape
    Q = np.zeros((d, d))
    Q[np.arange(len(lam)), np.arange(len(lam))] = lam

    def rhs(_, w):
        W = w.reshape(d, m)
        return (-4.0 * (W @ W.T - Q) @ W).ravel()

    sol = solve_ivp(
        rhs,
        (0, times[-1]),
        W0.ravel(),
        t_eval=times,
        method="DOP853",
        rtol=1e-12,
        atol=1e-15,
    )
    assert sol.success
    Ms = [sol.y[:, i].reshape(d, m) for i in range(len(times))]
    return [W @ W.T for W in Ms], Q


@pytest.mark.parametrize("r,m", [(4, 8), (8, 4), (6, 6)])
def test_flow_matches_solve_ivp(r, m):
    rng = np.random.default_rng(r * 10 + m)
    d = 64
    lam = spectrum(r, 1.0)
    W0 = rng.standard_normal((d, m)) * 0.3 / np.sqrt(d)
    times = np.array([0.0, 0.5, 2.0, 10.0, 30.0])
    Ms, Q = full_flow_ivp(W0, lam, times)
    flow = RiccatiFlow.from_weights(lam, W0).solve(times)
    for i, M in enumerate(Ms):
        risk_ivp = np.sum((M - Q) ** 2)
        assert flow.risk[0, i] == pytest.approx(risk_ivp, rel=RTOL_IVP)
        rec_ivp = np.diag(M)[:r] / lam
        np.testing.assert_allclose(flow.recovery[0, i], rec_ivp, rtol=1e-6, atol=1e-9)


def test_initial_time_gives_initial_risk():
    rng = np.random.default_rng(1)
    d, r, m = 40, 5, 3
    lam = spectrum(r, 0.7)
    W0 = rng.standard_normal((d, m)) * 0.5 / np.sqrt(d)
    Q = np.zeros((d, d))
    Q[np.arange(r), np.arange(r)] = lam
    flow = RiccatiFlow.from_weights(lam, W0).solve(np.array([0.0]))
    assert flow.risk[0, 0] == pytest.approx(np.sum((W0 @ W0.T - Q) ** 2), rel=1e-12)


@pytest.mark.parametrize("r,m", [(64, 64), (16, 8)])
def test_one_long_step_equals_many_short(r, m):
    rng = np.random.default_rng(2)
    lam = spectrum(r, 1.5)
    state = bartlett_state(10**6, r, m, 0.1, rng)
    flow = RiccatiFlow(lam, state)
    t_end = 2e4
    one = flow.advance(state, t_end)
    many = state
    for _ in range(500):
        many = flow.advance(many, t_end / 500)
    rec_one = np.sum(one[:r] ** 2, axis=1) / lam
    rec_many = np.sum(many[:r] ** 2, axis=1) / lam
    np.testing.assert_allclose(rec_one, rec_many, rtol=RTOL_STEPS, atol=1e-12)
    assert state_risk(one, lam) == pytest.approx(
        state_risk(many, lam), rel=1e-6, abs=1e-20
    )


def test_wide_student_converges_to_zero_risk():
    rng = np.random.default_rng(3)
    lam = spectrum(8, 1.0)
    flow = RiccatiFlow(lam, bartlett_state(512, 8, 12, 0.1, rng))
    traj = flow.solve(np.array([0.0, 1e3, 1e5]))
    assert traj.risk[0, -1] < 1e-6
    np.testing.assert_allclose(traj.recovery[0, -1], 1.0, atol=1e-6)


def test_narrow_student_reaches_width_floor():
    rng = np.random.default_rng(4)
    lam = spectrum(10, 1.0)
    m = 4
    flow = RiccatiFlow(lam, bartlett_state(512, 10, m, 0.1, rng))
    traj = flow.solve(np.array([0.0, 1e4]))
    floor = np.sum(lam[m:] ** 2)
    assert traj.risk[0, -1] == pytest.approx(floor, rel=1e-6)
    np.testing.assert_allclose(traj.recovery[0, -1, :m], 1.0, atol=1e-6)
    np.testing.assert_allclose(traj.recovery[0, -1, m:], 0.0, atol=1e-6)


def test_reduce_state_keeps_gram_and_risk():
    rng = np.random.default_rng(5)
    d, r, m = 30, 4, 6
    W0 = rng.standard_normal((d, m))
    state = reduce_state(W0, r)
    np.testing.assert_allclose(state.T @ state, W0.T @ W0, rtol=1e-12, atol=1e-12)
    lam = spectrum(r, 1.0)
    Q = np.zeros((d, d))
    Q[np.arange(r), np.arange(r)] = lam
    assert state_risk(state, lam) == pytest.approx(np.sum((W0 @ W0.T - Q) ** 2))


def test_state_risk_has_no_cancellation_floor():
    lam = spectrum(5, 1.0)
    m = 5
    state = np.vstack([np.diag(np.sqrt(lam)), np.zeros((m, m))])
    state[0, 0] *= 1 + 1e-12
    expected = (lam[0] * ((1 + 1e-12) ** 2 - 1)) ** 2
    assert state_risk(state, lam) == pytest.approx(expected, rel=1e-3)


def test_bartlett_moments_match_wishart():
    """Mean and variance of C = F^T F against Wishart(d - r, sigma^2/d I)."""
    rng = np.random.default_rng(6)
    d, r, m, sigma0 = 50, 10, 4, 0.7
    k, s2 = d - r, sigma0**2 / d
    draws = np.array([bartlett_state(d, r, m, sigma0, rng)[r:] for _ in range(20000)])
    C = np.einsum("nki,nkj->nij", draws, draws)
    mean = C.mean(axis=0)
    # 5 standard errors of a mean of 20000 entries with variance <= 2 k s2^2
    tol = 5 * s2 * np.sqrt(2 * k / 20000)
    np.testing.assert_allclose(mean, k * s2 * np.eye(m), atol=tol)
    var_diag = C[:, 0, 0].var()
    var_off = C[:, 0, 1].var()
    assert var_diag == pytest.approx(2 * k * s2**2, rel=0.05)
    assert var_off == pytest.approx(k * s2**2, rel=0.05)
    P = np.array([bartlett_state(d, r, m, sigma0, rng)[:r] for _ in range(2000)])
    assert P.var() == pytest.approx(s2, rel=0.05)


def test_bartlett_singular_when_d_minus_r_below_m():
    rng = np.random.default_rng(7)
    state = bartlett_state(6, 4, 5, 1.0, rng)
    F = state[4:]
    assert np.linalg.matrix_rank(F.T @ F) == 2
