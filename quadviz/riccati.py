"""Exact population gradient flow of the quadratic network (matrix Riccati).

The population risk R(W) = ||W W^T - Q||_F^2 has gradient 4 (M - Q) W, so the
gradient flow in time t gives

    dM/dt = 4 (Q M + M Q - 2 M^2),           M = W W^T.

With tau = 4 t the solution from W_0 is

    M(tau) = e^{Q tau} W_0 (I + W_0^T K(tau) W_0)^{-1} W_0^T e^{Q tau},
    K(tau) = int_0^tau 2 e^{2 Q s} ds,

(Martin, Bach and Biroli, AISTATS 2024; Ben Arous, Erdogdu, Vural and Wu,
arXiv 2508.03688). Only P = Theta^T W (r x m) and the Gram matrix
C = W_perp^T W_perp = F^T F of the orthogonal part matter, and the stacked
state [P; F] of shape (r + m, m) follows the same flow with
Q~ = diag(lambda, 0), so every cost here is independent of d.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from quadviz.result import OVERLAP_DIRECTIONS, Trajectory

# Largest log row scale log sqrt(k_i) used in the QR: e^340 squared stays far
# below the float64 maximum e^709. Larger scales are capped; the exact factor
# e^{lambda h} / sqrt(k) is applied separately in log space.
LOG_SCALE_CAP = 340.0
# When m < r the directions compete for columns, and capping two rows to the
# same scale would erase which one wins. Steps are then cut so that
# lambda_max * h stays below this, which keeps every row scale uncapped.
COMPETING_STEP_LIMIT = 300.0


def reduce_state(W0: np.ndarray, r: int) -> np.ndarray:
    """Reduced state [P; F] of shape (r + m, m) from a full W_0 of shape (d, m).

    P is the first r rows (theta_j = e_j) and F is the triangular factor of a
    QR of the remaining rows, so F^T F = W_perp^T W_perp.
    """
    W0 = np.asarray(W0, dtype=np.float64)
    d, m = W0.shape
    F = np.zeros((m, m))
    if d > r:
        R = np.linalg.qr(W0[r:], mode="r")
        F[: R.shape[0]] = R
    return np.vstack([W0[:r], F])


def bartlett_state(
    d: int, r: int, m: int, sigma0: float, rng: np.random.Generator
) -> np.ndarray:
    """Draw the reduced state of W_0 ~ N(0, sigma0^2 / d) without forming it.

    P has i.i.d. N(0, sigma0^2 / d) entries. C = W_perp^T W_perp is
    Wishart(d - r, sigma0^2 / d I_m); its factor F is drawn by the Bartlett
    decomposition: upper triangular, chi_{k - i} on the diagonal (k = d - r),
    N(0, 1) above it, scaled by sigma0 / sqrt(d). Rows beyond k are zero, as
    for the R factor of a k x m Gaussian matrix.
    """
    scale = sigma0 / np.sqrt(d)
    P = rng.standard_normal((r, m)) * scale
    k = d - r
    F = np.zeros((m, m))
    rows = min(k, m)
    if rows > 0:
        dof = k - np.arange(rows)
        F[:rows] = np.triu(rng.standard_normal((rows, m)), 1)
        F[np.arange(rows), np.arange(rows)] = np.sqrt(rng.chisquare(dof))
        F[:rows] *= scale
    return np.vstack([P, F])


def _log_sqrt_k(lam: np.ndarray, h: float) -> np.ndarray:
    """log sqrt(k_i), k_i = expm1(2 lambda_i h) / lambda_i (2 h if lambda_i = 0).

    expm1 keeps precision for small lambda_i h; for large arguments
    log(expm1(x)) = x + log1p(-e^{-x}) avoids overflow.
    """
    x = 2.0 * lam * h
    out = np.empty_like(lam)
    zero = lam == 0.0
    out[zero] = 0.5 * np.log(2.0 * h)
    small = ~zero & (x < 30.0)
    out[small] = 0.5 * (np.log(np.expm1(x[small])) - np.log(lam[small]))
    big = ~zero & ~small
    out[big] = 0.5 * (x[big] + np.log1p(-np.exp(-x[big])) - np.log(lam[big]))
    return out


def propagate(state: np.ndarray, lam_full: np.ndarray, h: float) -> np.ndarray:
    """Advance a reduced state by flow time tau = h (tau = 4 t), exactly.

    With V = diag(sqrt k) W and the thin QR [V; I_m] = [Q_top; Q_bot] R,
    V (I + V^T V)^{-1} V^T = Q_top Q_top^T, so the new state is
    diag(e^{lambda h} / sqrt k) Q_top. The returned factor has the right
    Gram matrix M but may differ from W(tau) by an m x m rotation.

    Parameters
    ----------
    state : (n, m) reduced state [P; F].
    lam_full : (n,) lambda_1..lambda_r followed by m zeros.
    h : step in tau.
    """
    if h <= 0.0:
        return state.copy()
    n, m = state.shape
    log_s = _log_sqrt_k(lam_full, h)
    log_factor = lam_full * h - log_s
    V = np.exp(np.minimum(log_s, LOG_SCALE_CAP))[:, None] * state
    stacked = np.vstack([V, np.eye(m)])
    # Householder QR is row-wise stable when rows are sorted by decreasing
    # norm; the row scales here span hundreds of orders of magnitude.
    order = np.argsort(-np.einsum("ij,ij->i", stacked, stacked), kind="stable")
    # scipy's QR took 65 ms against numpy's 92 ms for 1536 x 512 on one
    # OpenBLAS thread (scipy 1.17 and numpy 2.4 wheels, 2-core VM)
    Q_sorted, _ = scipy.linalg.qr(stacked[order], mode="economic", check_finite=False)
    Q = np.empty_like(Q_sorted)
    Q[order] = Q_sorted
    return np.exp(log_factor)[:, None] * Q[:n]


def state_risk(state: np.ndarray, lam: np.ndarray) -> float:
    """||M - Q||_F^2 from the reduced state, without cancellation.

    Blocks: ||P P^T - Lambda||^2 + 2 ||P F^T||^2 + ||F F^T||^2, each formed
    as a difference of matrices (entrywise), never as ||M||^2 - 2<M,Q> + ||Q||^2,
    which cancels to a floor near 1e-16 once the risk is small.
    """
    r = lam.shape[0]
    P, F = state[:r], state[r:]
    G = F.T @ F
    top = P @ P.T
    top[np.diag_indices(r)] -= lam
    cross = np.sum((P @ G) * P)
    return float(np.sum(top * top) + 2.0 * cross + np.sum(G * G))


class RiccatiFlow:
    """Exact population gradient flow from one reduced initial state.

    Call :meth:`solve` with any increasing output times t (t = lr * steps of
    the SGD it is compared with). Each interval costs one QR of a
    (r + 2m) x m matrix when m >= r; when m < r it is split into steps with
    lambda_max * tau <= COMPETING_STEP_LIMIT.
    """

    def __init__(self, lam: np.ndarray, state0: np.ndarray):
        self.lam = np.asarray(lam, dtype=np.float64)
        self.state0 = np.asarray(state0, dtype=np.float64)
        r = self.lam.shape[0]
        m = self.state0.shape[1]
        if self.state0.shape[0] != r + m:
            raise ValueError(
                f"invalid state shape {self.state0.shape}: expected ({r + m}, {m})"
            )
        self.lam_full = np.concatenate([self.lam, np.zeros(m)])
        competing = m < np.count_nonzero(self.lam)
        lam_max = float(self.lam.max()) if r else 0.0
        self.max_tau_step = (
            COMPETING_STEP_LIMIT / lam_max if competing and lam_max > 0 else np.inf
        )

    @classmethod
    def from_weights(cls, lam: np.ndarray, W0: np.ndarray) -> RiccatiFlow:
        """Flow from a full initial weight matrix W_0 of shape (d, m)."""
        return cls(lam, reduce_state(W0, len(lam)))

    def advance(self, state: np.ndarray, dt: float) -> np.ndarray:
        """State after flow time dt (in t units) from ``state``."""
        tau = 4.0 * dt
        pieces = max(1, int(np.ceil(tau / self.max_tau_step)))
        for _ in range(pieces):
            state = propagate(state, self.lam_full, tau / pieces)
        return state

    def solve(self, times: np.ndarray, progress=None) -> Trajectory:
        """Risk, recovery, spectrum and overlaps at increasing times t >= 0.

        BLAS runs on one thread, because on a busy 2-core machine OpenBLAS's
        spinning threads cost far more than they save: a 192 x 64 QR took
        0.3 ms on one thread and 6 to 45 ms on two busy cores (OpenBLAS
        0.3.31). A hosted app serves several visitors at once anyway.
        """
        with threadpool_limits(limits=1, user_api="blas"):
            return self._solve(times, progress)

    def _solve(self, times: np.ndarray, progress) -> Trajectory:
        times = np.asarray(times, dtype=np.float64)
        if np.any(np.diff(times) < 0) or np.any(times < 0):
            raise ValueError("invalid times: expected increasing values >= 0")
        r = self.lam.shape[0]
        k = min(r, OVERLAP_DIRECTIONS)
        risk = np.empty(len(times))
        recovery = np.empty((len(times), r))
        spectrum = np.empty((len(times), self.state0.shape[1]))
        overlap = np.empty((len(times), k, k))
        state, t_prev = self.state0, 0.0
        for i, t in enumerate(times):
            state = self.advance(state, t - t_prev)
            t_prev = t
            P = state[:r]
            risk[i] = state_risk(state, self.lam)
            recovery[i] = np.einsum("ij,ij->i", P, P) / self.lam
            spectrum[i] = np.linalg.eigvalsh(state.T @ state)[::-1]
            overlap[i] = P[:k] @ P[:k].T
            if progress is not None:
                progress((i + 1) / len(times), "population flow")
        return Trajectory(
            method="flow",
            time=times,
            risk=risk[None],
            recovery=recovery[None],
            spectrum=spectrum[None],
            overlap=overlap,
        )
