"""Numbers and sentences that the pages print beside the figures.

Plain functions of an Experiment; no Streamlit here, so they are easy to test.
"""

from __future__ import annotations

import math

import numpy as np

from quadviz import theory
from quadviz.experiment import Experiment
from quadviz.figures import escape_times, risk_fit
from quadviz.result import Trajectory

# rho_j at or above this counts as learned, the same threshold as the
# escape times.
LEARNED = 0.5


def median_relative_gap(experiment: Experiment) -> float | None:
    """Median over output times t > 0 of |SGD mean - flow| / flow, or None.

    The flow is interpolated in log t onto the SGD times. None when SGD did
    not run, diverged or has fewer than two positive times.
    """
    sgd, flow = experiment.sgd, experiment.flow
    if sgd is None or not sgd.ok:
        return None
    keep = (sgd.time > 0) & np.isfinite(sgd.risk_mean())
    flow_keep = (flow.time > 0) & (flow.risk[0] > 0)
    if keep.sum() < 2 or flow_keep.sum() < 2:
        return None
    t = sgd.time[keep]
    log_flow = np.interp(
        np.log(t), np.log(flow.time[flow_keep]), np.log(flow.risk[0][flow_keep])
    )
    reference = np.exp(log_flow)
    return float(np.median(np.abs(sgd.risk_mean()[keep] - reference) / reference))


def format_percent(fraction: float) -> str:
    """0.0123 -> '1.2%', 0.00042 -> '0.042%': two significant digits."""
    return f"{100 * fraction:.2g}%"


def directions_learned(trajectory: Trajectory) -> int:
    """Directions whose seed-mean rho_j is at least 1/2 at the last time."""
    if trajectory.recovery is None or trajectory.time.size == 0:
        return 0
    final = trajectory.recovery.mean(axis=0)[-1]
    return int(np.sum(final >= LEARNED))


def half_learned_index(trajectory: Trajectory) -> int:
    """Index of the first output time at which half of the directions are learned.

    A half-built overlap matrix is the most telling default for the time
    slider. Without recovery data the middle time is returned.
    """
    if trajectory.recovery is None or trajectory.time.size == 0:
        return trajectory.time.size // 2
    learned = (trajectory.recovery.mean(axis=0) >= LEARNED).sum(axis=1)
    target = max(1, trajectory.recovery.shape[2] // 2)
    reached = np.nonzero(learned >= target)[0]
    return int(reached[0]) if reached.size else trajectory.time.size - 1


def _slope_bullet(experiment: Experiment) -> str:
    alpha = experiment.config.alpha
    exponent = theory.asymptotic_exponent(alpha)
    label, fit = risk_fit(experiment)
    if not math.isfinite(exponent):
        return (
            f"With α = {alpha:g} ≤ 1/2 there is no decaying power law: the risk "
            "stays on a plateau and drops once most of the spectrum is learned."
        )
    if not fit.ok:
        return (
            f"Theory predicts R ∝ (t / ln d)^{exponent:.2f} for large d. The "
            f"automatic fit found no power-law window on the {label} curve "
            f"({fit.reason})."
        )
    return (
        f"Between t = {fit.t_lo:.3g} and {fit.t_hi:.3g} the {label} risk falls "
        f"like t^{fit.slope:.2f}; the d → ∞ exponent is {exponent:.2f}, and "
        "finite sizes give steeper slopes."
    )


def _directions_bullet(experiment: Experiment) -> str:
    config, lam = experiment.config, experiment.lam
    r, m = lam.size, config.width
    trajectory = experiment.sgd if experiment.sgd is not None else experiment.flow
    name = "SGD" if experiment.sgd is not None else "the flow"
    learned = directions_learned(trajectory)
    t_end = float(trajectory.time[-1]) if trajectory.time.size else 0.0
    text = (
        f"By t = {t_end:.3g}, {name} has learned {learned} of the r = {r} "
        "teacher directions (ρⱼ ≥ 1/2)."
    )
    if m < r:
        floor = theory.width_floor(lam, m)
        text += (
            f" The width m = {m} is below r, so at most {m} can be learned and "
            f"the risk stops near the sum of λⱼ² over j > m, {floor:.3g}."
        )
        return text
    predicted = np.asarray(experiment.escape_predicted)
    pending = np.nonzero(np.isfinite(predicted) & (predicted > t_end))[0]
    if pending.size:
        j = pending[0]
        text += f" Direction {j + 1} is predicted to escape at t ≈ {predicted[j]:.3g}."
    return text


def _agreement_bullet(experiment: Experiment) -> str | None:
    sgd = experiment.sgd
    if sgd is None:
        return None
    if not sgd.ok:
        return f"SGD diverged: {sgd.message}. Lower the learning rate."
    gap = median_relative_gap(experiment)
    if gap is None:
        return None
    seeds = sgd.risk.shape[0]
    return (
        f"The SGD risk (mean of {seeds} seeds) stays within a median "
        f"{format_percent(gap)} "
        "of the population flow from the same W₀: online SGD with a small step "
        "follows the Riccati equation."
    )


def _escape_bullet(experiment: Experiment) -> str | None:
    times = escape_times(experiment)
    measured = times["sgd"] if "sgd" in times else times["flow"]
    predicted = times["predicted"]
    # Only directions within the width can escape. A weak direction beyond it
    # may start above rho = 1/2 (its lambda_j is tiny) and then decay, which
    # gives a measured time of 0 that is no escape.
    learnable = min(predicted.size, experiment.config.width)
    measured = measured[:learnable]
    done = np.nonzero(np.isfinite(measured) & (measured > 0))[0]
    if done.size == 0:
        return (
            "No direction has escaped its plateau yet (ρⱼ < 1/2 everywhere); "
            f"the first is predicted at t ≈ {predicted[0]:.3g}."
        )
    first, last = done[0], done[-1]
    text = f"Direction {first + 1} escapes its plateau at t ≈ {measured[first]:.3g}"
    if math.isfinite(predicted[first]):
        text += f" (predicted {predicted[first]:.3g})"
    if last != first:
        text += f", direction {last + 1} at t ≈ {measured[last]:.3g}"
        if math.isfinite(predicted[last]):
            text += f" (predicted {predicted[last]:.3g})"
    return text + ": weaker directions wait longer, tⱼ grows like j^α ln d."


def overview_bullets(experiment: Experiment) -> list[str]:
    """Three or four sentences on what to notice, computed from the result."""
    bullets = [
        _slope_bullet(experiment),
        _directions_bullet(experiment),
        _agreement_bullet(experiment),
        _escape_bullet(experiment),
    ]
    return [b for b in bullets if b]
