"""Scaling-law measurements on sweeps: fitted exponents beside the theory.

Three exponents, each fitted by least squares in log-log coordinates
(``theory.fit_power_law``) on a window that is either given or chosen
automatically, and always reported with the window used:

- risk against time, R ~ t^s, predicted s = -(2 alpha - 1) / alpha as
  d -> infinity, with the finite-size value below;
- escape time against direction index, t_j ~ j^a, predicted a = alpha;
- the compute-optimal frontier over a width ladder, R* ~ C^c, conjectured
  c = -(2 alpha - 1) / (1 + alpha).

Finite-size exponent. Direction J escapes at t_J = l_J / (8 lambda_J) with
l_J = ln(lambda_J / z_0 - 1), and once J directions have escaped the risk is
about sum_{j > J} lambda_j^2 ~ J^(1 - 2 alpha). With lambda_J ~ J^-alpha,

    d ln t_J / d ln J = alpha (1 - g_J / l_J),  g_J = lambda_J / (lambda_J - z_0),

so the local slope of ln R against ln t is

    s(J) = -(2 alpha - 1) / (alpha (1 - g_J / l_J)).

l_J shrinks as J grows (lambda_J / z_0 falls), so later directions escape
relatively earlier than j^alpha log d suggests and s(J) steepens from the
d -> infinity value. A fit over a window whose last escaping direction is
J_end therefore lies between -(2 alpha - 1) / alpha and s(J_end).

s(J) ignores the truncation of the tail sum at j = r, which steepens the
slope further, strongly for alpha <= 1. The additive model (each direction
logistic on its own, ``theory.additive_model``) keeps both corrections; its
slope on the same window is reported beside the fit. It ignores the
competition between directions, which delays the late ones, so it is
steeper than the flow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from quadviz import theory
from quadviz.sweeps import FLOPS_PER_SAMPLE_FACTOR, Run, Sweep

WINDOW_USER = "chosen by the user"
WINDOW_EMERGENCE = "emergence window: twice the first to the last predicted escape"
WINDOW_AUTO = "automatic: after the plateau, before the final collapse or floor"
WINDOW_ESCAPE = "all learnable directions that escaped"
WINDOW_HANDOVER = "first to last hand-over between widths on the frontier"
# Grid points of the lower envelope over a width ladder.
FRONTIER_POINTS = 200
# The frontier has left its initial plateau once its risk is below this
# fraction of its first value.
PLATEAU_FRACTION = 0.5


@dataclass(frozen=True)
class ExponentFit:
    """One fitted exponent beside its prediction, with the window it used.

    For risk-time fits, ``finite_size`` is the log-correction bound
    s(J_end) and ``additive`` the slope of the additive model on the same
    window, which adds the truncation of the spectrum at r (both nan
    otherwise). ``predicted_label`` names the formula of ``predicted``.
    """

    quantity: str
    param: str
    value: float
    method: str
    fit: theory.PowerLawFit
    window: str
    predicted: float
    predicted_label: str
    finite_size: float = float("nan")
    additive: float = float("nan")

    def row(self) -> dict:
        """Plain dict for tables and export; nan becomes None."""
        fit = self.fit
        return {
            "quantity": self.quantity,
            "param": self.param,
            "value": _number(self.value),
            "method": self.method,
            "fitted": _number(fit.slope),
            "stderr": _number(fit.stderr),
            "predicted": _number(self.predicted),
            "prediction": self.predicted_label,
            "finite_size": _number(self.finite_size),
            "additive": _number(self.additive),
            "window_lo": _number(fit.t_lo),
            "window_hi": _number(fit.t_hi),
            "points": fit.points,
            "window": self.window if fit.ok else f"no fit: {fit.reason}",
        }


def _no_fit(reason: str) -> theory.PowerLawFit:
    nan = float("nan")
    return theory.PowerLawFit(nan, nan, nan, nan, nan, 0, False, reason)


def _number(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


# ---------------------------------------------------------------- risk


def finite_size_exponent(alpha: float, lam_j: float, z0: float) -> float:
    """Local slope s(J) of ln R against ln t at a direction with lambda_J, z_0.

    nan for alpha <= 1/2 or when the direction has no plateau (l_J <= g_J).
    """
    if alpha <= 0.5 or lam_j <= z0 * 2.0:
        return float("nan")
    ratio = lam_j / z0
    ell = math.log(ratio - 1.0)
    g = ratio / (ratio - 1.0)
    if ell <= g:
        return float("nan")
    return -(2.0 * alpha - 1.0) / (alpha * (1.0 - g / ell))


def _risk_curve(run: Run, method: str) -> tuple[np.ndarray, np.ndarray] | None:
    trajectory = run.trajectory(method)
    if trajectory is None or not trajectory.ok or trajectory.time.size < 4:
        return None
    return trajectory.time, trajectory.risk_mean()


def _last_direction_in(run: Run, t_hi: float) -> int | None:
    """0-based index of the last direction predicted to escape by t_hi."""
    escape = run.escape_predicted
    inside = np.nonzero(np.isfinite(escape) & (escape <= t_hi * (1 + 1e-9)))[0]
    return int(inside[-1]) if inside.size else None


def fit_risk(
    run: Run,
    param: str,
    method: str = "flow",
    window: tuple[float, float] | None = None,
) -> ExponentFit:
    """Fit R ~ t^s on ``window`` (flow time t), or on an automatic window.

    The automatic choice is the emergence window of the predicted escape
    times, and the automatic window of ``theory.fit_power_law`` when that
    fails. The result names the window used.
    """
    alpha = run.config.alpha
    predicted = theory.asymptotic_exponent(alpha)
    label = "−(2α−1)/α, d → ∞"
    curve = _risk_curve(run, method)
    if curve is None:
        fit = _no_fit(f"no {method} curve to fit")
        return ExponentFit("risk vs time", param, run.value, method, fit, "", predicted,
                           label)
    t, y = curve
    fit, source = _fit_with_window(t, y, run.escape_predicted, window)
    finite, additive = float("nan"), float("nan")
    if fit.ok:
        j = _last_direction_in(run, fit.t_hi)
        if j is not None:
            finite = finite_size_exponent(alpha, float(run.lam[j]), float(run.z0[j]))
        model = theory.additive_model(run.lam, run.z0, t, run.config.width)
        additive = theory.fit_power_law(t, model.risk[0], (fit.t_lo, fit.t_hi)).slope
    return ExponentFit("risk vs time", param, run.value, method, fit, source,
                       predicted, label, finite, additive)


def _fit_with_window(
    t: np.ndarray,
    y: np.ndarray,
    escape_predicted: np.ndarray,
    window: tuple[float, float] | None,
) -> tuple[theory.PowerLawFit, str]:
    if window is not None:
        return theory.fit_power_law(t, y, window), WINDOW_USER
    emergence = theory.emergence_window(escape_predicted)
    if emergence is not None:
        fit = theory.fit_power_law(t, y, emergence)
        if fit.ok:
            return fit, WINDOW_EMERGENCE
    return theory.fit_power_law(t, y), WINDOW_AUTO


# ---------------------------------------------------------------- escape


def escape_times(run: Run, method: str = "flow") -> np.ndarray:
    """Measured escape time of each direction (rho_j crosses 1/2), nan if never."""
    trajectory = run.trajectory(method)
    if trajectory is None or trajectory.time.size < 2:
        return np.full(run.lam.size, np.nan)
    return theory.measured_escape_times(
        trajectory.time, trajectory.recovery.mean(axis=0)
    )


def fit_escape(run: Run, param: str, method: str = "flow") -> ExponentFit:
    """Fit t_j ~ j^a over the learnable directions that escaped.

    ``method`` is "flow", "sgd" or "predicted" (the logistic formula).
    A direction that starts above rho = 1/2 (time 0) is left out.
    """
    if method == "predicted":
        times = np.asarray(run.escape_predicted, dtype=np.float64)
    else:
        times = escape_times(run, method)
    learnable = min(run.lam.size, run.config.width)
    j = np.arange(1, learnable + 1, dtype=np.float64)
    times = times[:learnable]
    ok = np.isfinite(times) & (times > 0)
    if ok.sum() < 3:
        fit = _no_fit("fewer than 3 directions escaped")
    else:
        fit = theory.fit_power_law(j[ok], times[ok], (j[ok][0], j[ok][-1]))
    return ExponentFit("escape time vs j", param, run.value, method, fit,
                       WINDOW_ESCAPE, run.config.alpha, "α")


# ---------------------------------------------------------------- frontier


@dataclass(frozen=True)
class Frontier:
    """Lower envelope of risk against compute over a width ladder.

    ``compute`` (flops, 4 d m n) is a log-spaced grid, ``risk`` the smallest
    risk of any width at that compute (curves are held at their last value
    past their horizon), ``width`` the width that attains it.
    """

    compute: np.ndarray
    risk: np.ndarray
    width: np.ndarray
    alpha: float
    method: str = "flow"


def compute_curve(run: Run, method: str = "flow") -> tuple[np.ndarray, np.ndarray]:
    """Compute C = 4 d m n (flops, n = B t / lr samples) and risk at t > 0."""
    trajectory = run.trajectory(method)
    config = run.config
    keep = trajectory.time > 0
    samples = config.batch * trajectory.time[keep] / config.lr
    flops = FLOPS_PER_SAMPLE_FACTOR * config.d * config.width * samples
    return flops, trajectory.risk_mean()[keep]


def frontier(sweep: Sweep, method: str = "flow") -> Frontier:
    """Lower envelope over the runs of a width sweep, in log-log space."""
    curves = []
    for run in sweep.runs:
        if run.trajectory(method) is None:
            continue
        flops, risk = compute_curve(run, method)
        ok = np.isfinite(risk) & (risk > 0)
        if ok.sum() < 2:
            continue
        curves.append((run.config.width, np.log(flops[ok]), np.log(risk[ok])))
    if not curves:
        raise ValueError(f"invalid sweep: no {method} curves with positive risk")
    lo = min(c[1][0] for c in curves)
    hi = max(c[1][-1] for c in curves)
    grid = np.linspace(lo, hi, FRONTIER_POINTS)
    envelope = np.full(grid.size, np.inf)
    best = np.zeros(grid.size, dtype=np.int64)
    for width, x, y in curves:
        values = np.interp(grid, x, y, left=np.inf, right=y[-1])
        better = values < envelope
        envelope[better] = values[better]
        best[better] = width
    alpha = sweep.runs[0].config.alpha
    return Frontier(np.exp(grid), np.exp(envelope), best, alpha, method)


def handover_window(front: Frontier) -> tuple[float, float] | None:
    """Compute from the first to the last change of the optimal width.

    Changes on the initial plateau (risk above half its first value) do
    not count: there the widths differ only by their random W_0.
    """
    below = np.nonzero(front.risk < PLATEAU_FRACTION * front.risk[0])[0]
    if below.size == 0:
        return None
    changes = np.nonzero(np.diff(front.width) != 0)[0]
    changes = changes[changes >= below[0]]
    if changes.size < 2:
        return None
    lo, hi = front.compute[changes[0] + 1], front.compute[changes[-1]]
    return (float(lo), float(hi)) if hi > 3.0 * lo else None


def fit_frontier(
    front: Frontier,
    param: str = "width",
    window: tuple[float, float] | None = None,
) -> ExponentFit:
    """Fit R* ~ C^c on the frontier, beside the conjectured exponent."""
    source = WINDOW_USER
    if window is None:
        window, source = handover_window(front), WINDOW_HANDOVER
    if window is None:
        fit, source = theory.fit_power_law(front.compute, front.risk), WINDOW_AUTO
    else:
        fit = theory.fit_power_law(front.compute, front.risk, window)
    return ExponentFit(
        "frontier vs compute", param, float("nan"), front.method, fit, source,
        theory.compute_exponent(front.alpha), "−(2α−1)/(1+α), conjecture",
    )


# ---------------------------------------------------------------- tables


def final_risks(sweep: Sweep, method: str = "flow") -> list[dict]:
    """Risk at the horizon of each run beside the width floor sum_{j>m} lambda_j^2."""
    out = []
    for run in sweep.runs:
        trajectory = run.trajectory(method)
        if trajectory is None or trajectory.time.size == 0:
            continue
        out.append(
            {
                "value": run.value,
                "width": run.config.width,
                "r": run.config.teacher_rank,
                "time": float(trajectory.time[-1]),
                "risk": float(trajectory.risk_mean()[-1]),
                "floor": theory.width_floor(run.lam, run.config.width),
            }
        )
    return out


def exponent_rows(
    sweep: Sweep,
    windows: dict[float, tuple[float, float]] | None = None,
) -> list[dict]:
    """Fitted and predicted exponents of every run: risk and escape times.

    ``windows`` maps a swept value to a user window for its risk fit.
    """
    windows = windows or {}
    out = []
    for run in sweep.runs:
        for method in ("flow", "sgd"):
            if run.trajectory(method) is None:
                continue
            window = windows.get(run.value)
            out.append(fit_risk(run, sweep.param, method, window).row())
            out.append(fit_escape(run, sweep.param, method).row())
    return out
