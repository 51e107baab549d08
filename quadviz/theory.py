"""Theory overlays: escape times, the additive model, exponents and limits.

Decoupled dynamics of the diagonal overlap z_j = (Theta^T M Theta)_jj, when
interactions between directions are dropped, is logistic:

    dz_j/dt = 8 z_j (lambda_j - z_j),
    z_j(t) = lambda_j z_j(0) e^{8 lambda_j t} / (lambda_j + z_j(0) (e^{8 lambda_j t} - 1)),

so direction j reaches half recovery at t_j = ln(lambda_j / z_j(0) - 1) / (8 lambda_j),
which grows like j^alpha log d for z_j(0) ~ sigma0^2 m / d.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from quadviz.result import Trajectory

# Measured constant c in the online-SGD stability limit lr < c B / d for
# B <= d (d = 256 and 1024, B = 8..d, alpha = 1, unit-norm teacher): the risk
# diverged within 10^4 steps above c = 0.15 and stayed bounded below it.
STABILITY_CONSTANT = 0.15


def escape_times(lam: np.ndarray, z0: np.ndarray, width: int | None = None) -> np.ndarray:
    """Predicted time t_j at which rho_j reaches 1/2 in the logistic model.

    Directions beyond the width (j > m) never escape (inf). A direction that
    starts above half recovery has t_j = 0.
    """
    lam = np.asarray(lam, dtype=np.float64)
    z0 = np.maximum(np.asarray(z0, dtype=np.float64), 1e-300)
    with np.errstate(divide="ignore"):
        t = np.log(np.maximum(lam / z0 - 1.0, 1.0)) / (8.0 * lam)
    t[lam <= 0] = np.inf
    if width is not None and width < len(lam):
        t[width:] = np.inf
    return t


def logistic_overlap(lam: np.ndarray, z0: np.ndarray, times: np.ndarray) -> np.ndarray:
    """z_j(t) of the decoupled logistic model, shape (T, r), without overflow."""
    lam = np.asarray(lam, dtype=np.float64)[None, :]
    z0 = np.asarray(z0, dtype=np.float64)[None, :]
    # z = lambda / (1 + (lambda / z0 - 1) e^{-8 lambda t}), written in log space
    log_gap = np.log(np.maximum(lam / np.maximum(z0, 1e-300) - 1.0, 1e-300))
    expo = np.clip(log_gap - 8.0 * lam * np.asarray(times)[:, None], -700, 700)
    return lam / (1.0 + np.exp(expo))


def additive_model(
    lam: np.ndarray, z0: np.ndarray, times: np.ndarray, width: int
) -> Trajectory:
    """Additive (decoupled) risk R(t) = sum_j (lambda_j - z_j(t))^2.

    Each of the first m directions follows its own logistic curve; directions
    beyond the width stay at zero. Interactions between directions and the
    orthogonal part of W are ignored, so the curve is a guide early and too
    optimistic late.
    """
    z = logistic_overlap(lam, z0, times)
    z[:, width:] = 0.0
    risk = np.sum((np.asarray(lam)[None, :] - z) ** 2, axis=1)
    return Trajectory(
        method="additive",
        time=np.asarray(times, dtype=np.float64),
        risk=risk[None],
        recovery=(z / lam)[None],
    )


def asymptotic_exponent(alpha: float) -> float:
    """Exponent -(2 alpha - 1) / alpha of R ~ (t / log d)^exponent; nan for alpha <= 1/2."""
    if alpha <= 0.5:
        return float("nan")
    return -(2.0 * alpha - 1.0) / alpha


def compute_exponent(alpha: float) -> float:
    """Conjectured compute-optimal exponent -(2 alpha - 1) / (1 + alpha)."""
    if alpha <= 0.5:
        return float("nan")
    return -(2.0 * alpha - 1.0) / (1.0 + alpha)


def width_floor(lam: np.ndarray, width: int) -> float:
    """Limit risk sum_{j > m} lambda_j^2 of the flow for width m < r."""
    return float(np.sum(np.asarray(lam)[width:] ** 2))


def lr_stability_limit(d: int, batch: int, lam: np.ndarray) -> float:
    """Estimated largest stable SGD learning rate.

    The noise limit STABILITY_CONSTANT * B / d (measured for B <= d) is
    capped by the gradient-descent limit 1 / (4 lambda_1), the inverse
    curvature of the population risk along the leading direction.
    """
    noise_limit = STABILITY_CONSTANT * min(batch, d) / d
    return float(min(noise_limit, 1.0 / (4.0 * float(np.max(lam)))))


def measured_escape_times(time: np.ndarray, recovery: np.ndarray) -> np.ndarray:
    """First time each rho_j reaches 1/2, interpolated in log time; nan if never.

    recovery has shape (T, r).
    """
    time = np.asarray(time, dtype=np.float64)
    out = np.full(recovery.shape[1], np.nan)
    for j in range(recovery.shape[1]):
        above = np.nonzero(recovery[:, j] >= 0.5)[0]
        if len(above) == 0:
            continue
        i = above[0]
        if i == 0:
            out[j] = time[0]
            continue
        r0, r1 = recovery[i - 1, j], recovery[i, j]
        frac = (0.5 - r0) / (r1 - r0) if r1 != r0 else 1.0
        t0, t1 = time[i - 1], time[i]
        if t0 > 0:
            out[j] = np.exp(np.log(t0) + frac * (np.log(t1) - np.log(t0)))
        else:
            out[j] = t0 + frac * (t1 - t0)
    return out


@dataclass(frozen=True)
class PowerLawFit:
    """Least-squares fit log y = slope log t + intercept on [t_lo, t_hi].

    stderr is the standard error of the slope from the fit residuals. The
    points of one curve are correlated, so it measures curvature inside the
    window rather than a statistical uncertainty.
    """

    slope: float
    stderr: float
    intercept: float
    t_lo: float
    t_hi: float
    points: int
    ok: bool
    reason: str = ""

    def predict(self, t: np.ndarray) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(t) ** self.slope


def fit_power_law(
    t: np.ndarray, y: np.ndarray, window: tuple[float, float] | None = None
) -> PowerLawFit:
    """Fit y ~ t^slope by least squares in log-log space.

    With ``window=None`` the window is chosen automatically: it starts once y
    has fallen below half its first value (the end of the initial plateau)
    and ends before the final collapse (local slope steeper than three times
    the median slope) or the width floor (local slope flatter than -0.05).
    """
    t = np.asarray(t, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = (t > 0) & (y > 0) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if window is None:
        window = _auto_window(t, y)
        if window is None:
            return _failed_fit("no decaying stretch to fit")
    inside = (t >= window[0]) & (t <= window[1])
    if inside.sum() < 3:
        return _failed_fit(f"fewer than 3 points in [{window[0]:.3g}, {window[1]:.3g}]")
    lt, ly = np.log(t[inside]), np.log(y[inside])
    A = np.vstack([lt, np.ones_like(lt)]).T
    coef, *_ = np.linalg.lstsq(A, ly, rcond=None)
    resid = ly - A @ coef
    dof = max(len(lt) - 2, 1)
    sxx = np.sum((lt - lt.mean()) ** 2)
    stderr = float(np.sqrt(np.sum(resid**2) / dof / sxx)) if sxx > 0 else np.inf
    return PowerLawFit(
        slope=float(coef[0]),
        stderr=stderr,
        intercept=float(coef[1]),
        t_lo=float(t[inside][0]),
        t_hi=float(t[inside][-1]),
        points=int(inside.sum()),
        ok=True,
    )


def emergence_window(escape_predicted: np.ndarray) -> tuple[float, float] | None:
    """Window of the power-law regime: from twice the first predicted escape
    time to the last finite one, or None when that spans less than 3x.

    Between these times directions emerge one after another, which makes the
    risk a power law. Before the window the risk is on its plateau, and after
    it the last learnable direction has converged and the risk collapses.
    """
    finite = np.asarray(escape_predicted)[np.isfinite(escape_predicted)]
    finite = finite[finite > 0]
    if finite.size < 3:
        return None
    t_lo, t_hi = 2.0 * float(finite.min()), float(finite.max())
    return (t_lo, t_hi) if t_hi > 3.0 * t_lo else None


def fit_risk_decay(
    t: np.ndarray, y: np.ndarray, escape_predicted: np.ndarray
) -> PowerLawFit:
    """Power-law fit of a risk curve on the emergence window, when it exists,
    else on the automatic window of :func:`fit_power_law`."""
    window = emergence_window(escape_predicted)
    if window is not None:
        fit = fit_power_law(t, y, window)
        if fit.ok:
            return fit
    return fit_power_law(t, y)


def _failed_fit(reason: str) -> PowerLawFit:
    nan = float("nan")
    return PowerLawFit(nan, nan, nan, nan, nan, 0, False, reason)


def _auto_window(t: np.ndarray, y: np.ndarray) -> tuple[float, float] | None:
    if len(t) < 4:
        return None
    start = np.nonzero(y < 0.5 * y[0])[0]
    if len(start) == 0:
        return None
    i0 = start[0]
    lt, ly = np.log(t), np.log(y)
    slopes = np.diff(ly) / np.diff(lt)
    decaying = slopes[i0:][slopes[i0:] < 0]
    if len(decaying) < 2:
        return None
    median = np.median(decaying)
    # stop before the numerical floor of float64 risks
    resolved = np.nonzero(y > 1e-12 * y[0])[0]
    i1 = int(resolved[-1]) if len(resolved) else len(t) - 1
    for i in range(i0, min(i1, len(slopes))):
        if slopes[i] < 3.0 * median or slopes[i] > -0.05:
            i1 = i
            break
    if i1 - i0 < 2:
        return None
    return float(t[i0]), float(t[i1])
