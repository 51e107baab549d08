"""Named scenarios: settings that show one phenomenon, and checks that it shows.

Each scenario sets every Config field (the ones it does not list keep their
defaults). It carries two or three sentences on what to notice and has a
signature check. A check takes the Experiment that the scenario's own
configuration produces and returns the numbers that show the phenomenon,
with a pass or fail verdict. The tests run every check with the defaults,
and the app prints the check's sentence beside the hero figure.

Time is t = lr * steps throughout, as in the rest of the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quadviz import theory
from quadviz.config import FIELDS, Config
from quadviz.experiment import Experiment, dimension_ladder
from quadviz.figures import escape_times, risk_fit


@dataclass(frozen=True)
class Signature:
    """Outcome of a scenario check: verdict, one sentence and its numbers."""

    ok: bool
    text: str
    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """One named scenario.

    Attributes
    ----------
    name : URL value (``scenario=NAME``), lower case with hyphens.
    title : short title for menus and headings.
    settings : Config fields that differ from the defaults.
    notice : two or three sentences on what to notice with these settings.
    page : URL path of the page that shows the phenomenon best.
    ladder : whether the phenomenon needs the population flow at several d.
    check : function of the scenario's Experiment returning a Signature.
    """

    name: str
    title: str
    settings: dict[str, Any]
    notice: str
    check: Callable[[Experiment], Signature]
    page: str = "overview"
    ladder: bool = False

    def config(self) -> Config:
        """Return the validated configuration of this scenario."""
        return Config.create(**self.settings)

    def differences(self, config: Config) -> list[str]:
        """Return the Config fields in which ``config`` differs from the scenario."""
        own = self.config()
        return [name for name in FIELDS if getattr(config, name) != getattr(own, name)]


# ---------------------------------------------------------------- checks


def _final_risks(experiment: Experiment) -> tuple[float, float | None]:
    """Last flow risk and last SGD seed-mean risk (None without SGD)."""
    flow = float(experiment.flow.risk[0][-1])
    sgd = experiment.sgd
    if sgd is None or not sgd.time.size:
        return flow, None
    return flow, float(sgd.risk_mean()[-1])


def _flow_escapes(experiment: Experiment) -> np.ndarray:
    return escape_times(experiment)["flow"]


def check_one_at_a_time(experiment: Experiment) -> Signature:
    """Check that each direction escapes while the next one is still below
    rho = 0.1, and that each escape comes at least 1.5 times after the last."""
    flow = experiment.flow
    escapes = _flow_escapes(experiment)
    if not np.all(np.isfinite(escapes)):
        return Signature(False, "Not every direction escaped by the end of the run.")
    next_rho = []
    for j in range(escapes.size - 1):
        index = min(int(np.searchsorted(flow.time, escapes[j])), flow.time.size - 1)
        next_rho.append(float(flow.recovery[0][index, j + 1]))
    ratios = escapes[1:] / escapes[:-1]
    ok = max(next_rho) < 0.1 and ratios.min() >= 1.5
    listed = ", ".join(f"{t:.3g}" for t in escapes)
    text = (
        f"The flow's directions escape at t ≈ {listed}; when one escapes, the "
        f"next has ρ below {max(next_rho):.2g}, and each escape comes "
        f"{ratios.min():.2g} to {ratios.max():.2g} times later than the one before."
    )
    values = {"max_next_rho": max(next_rho), "min_escape_ratio": float(ratios.min())}
    return Signature(ok, text, values)


def check_smooth_power_law(experiment: Experiment) -> Signature:
    """Check for a fitted power law of slope -1.6 to -0.8 on the SGD mean and
    for at least three quarters of the directions learned."""
    label, fit = risk_fit(experiment)
    r = experiment.lam.size
    trajectory = experiment.sgd if experiment.sgd is not None else experiment.flow
    final = trajectory.recovery.mean(axis=0)[-1]
    learned = int(np.sum(final >= 0.5))
    if not fit.ok:
        return Signature(False, f"No power law was fitted: {fit.reason}.")
    ok = -1.6 <= fit.slope <= -0.8 and learned >= 0.75 * r
    exponent = theory.asymptotic_exponent(experiment.config.alpha)
    text = (
        f"The {label} risk falls like t^{fit.slope:.2f} between t = {fit.t_lo:.3g} "
        f"and {fit.t_hi:.3g} (d → ∞ exponent {exponent:.2f}), and {learned} of "
        f"the {r} directions are learned by the end."
    )
    return Signature(ok, text, {"slope": fit.slope, "learned": float(learned)})


def check_width_bottleneck(experiment: Experiment) -> Signature:
    """Check that the flow ends within 2 % of the width floor
    sum_{j > m} lambda_j^2, and the SGD mean within 20 %."""
    floor = theory.width_floor(experiment.lam, experiment.config.width)
    flow, sgd = _final_risks(experiment)
    flow_gap = flow / floor - 1.0
    ok = abs(flow_gap) < 0.02
    text = (
        f"The flow ends at risk {flow:.4g}, {100 * flow_gap:+.2g}% from the floor "
        f"(the sum of λⱼ² over j > m) = {floor:.4g}"
    )
    values = {"floor": floor, "flow_final": flow}
    if sgd is not None:
        sgd_gap = sgd / floor - 1.0
        ok = ok and abs(sgd_gap) < 0.2
        text += f"; the SGD mean ends at {sgd:.4g} ({100 * sgd_gap:+.2g}%)"
        values["sgd_final"] = sgd
    return Signature(ok, text + ".", values)


def _sgd_flow_ratio(experiment: Experiment) -> tuple[np.ndarray, np.ndarray]:
    """SGD output times t > 0 and SGD mean / flow at those times."""
    sgd, flow = experiment.sgd, experiment.flow
    keep = sgd.time > 0
    t = sgd.time[keep]
    reference = np.interp(t, flow.time, flow.risk[0])
    return t, sgd.risk_mean()[keep] / reference


def check_step_too_large(experiment: Experiment) -> Signature:
    """Check that SGD follows the flow within 5 % at first, rises above 1.5
    times the flow, and then diverges."""
    sgd = experiment.sgd
    if sgd is None:
        return Signature(False, "Online SGD did not run.")
    config = experiment.config
    limit = theory.lr_stability_limit(config.d, config.batch, experiment.lam)
    t, ratio = _sgd_flow_ratio(experiment)
    early = ratio[: max(1, ratio.size // 2)]
    diverged = not sgd.ok
    follows = bool(np.all(np.abs(early - 1.0) < 0.05))
    leaves = bool(np.nanmax(ratio) > 1.5)
    where = np.nonzero(ratio > 1.5)[0]
    t_leave = float(t[where[0]]) if where.size else math.nan
    t_end = float(sgd.time[-1]) if sgd.time.size else math.nan
    text = (
        f"lr = {config.lr:g} is above the estimated stability limit {limit:.3g}. "
        f"SGD stays within {100 * np.max(np.abs(early - 1.0)):.2g}% of the flow "
        f"for the first half of its output times, is 1.5 times above it by "
        f"t ≈ {t_leave:.3g}, and "
        + ("diverges after t ≈ " + f"{t_end:.3g}." if diverged else "does not diverge.")
    )
    values = {"t_leave": t_leave, "t_last_finite": t_end, "limit": limit}
    return Signature(diverged and follows and leaves, text, values)


def check_flat_spectrum(experiment: Experiment) -> Signature:
    """Check that all escape times lie within a factor 1.6, and that the flow
    risk falls from 90 % to 1 % of its start within a factor 5 in time."""
    escapes = _flow_escapes(experiment)
    if not np.all(np.isfinite(escapes)):
        return Signature(False, "Not every direction escaped by the end of the run.")
    spread = float(escapes.max() / escapes.min())
    flow = experiment.flow
    risk = flow.risk[0]
    t90 = float(flow.time[np.argmax(risk < 0.9 * risk[0])])
    below = risk < 0.01 * risk[0]
    t01 = float(flow.time[np.argmax(below)]) if below.any() else math.inf
    drop = t01 / t90
    ok = spread < 1.6 and drop < 5.0
    text = (
        f"All {escapes.size} directions escape between t = {escapes.min():.3g} and "
        f"{escapes.max():.3g} (a factor {spread:.2g}), and the flow risk falls "
        f"from 90% to 1% of its start between t = {t90:.3g} and {t01:.3g}."
    )
    return Signature(ok, text, {"escape_spread": spread, "drop_factor": drop})


# d of the population flows that the dimension check compares.
CHECK_DIMENSIONS = (10**3, 10**4, 10**5, 10**6, 10**7)


def check_dimension_matters(experiment: Experiment) -> Signature:
    """Check that the flow's first escape time grows linearly in ln d
    (d = 10^3 to 10^7), with a slope within 20 % of the logistic prediction
    1 / (8 lambda_1)."""
    config = experiment.config
    horizon = 4.0 * config.horizon
    ladder = dimension_ladder(config.replace(t_max=horizon), list(CHECK_DIMENSIONS))
    log_d = np.log([d for d, _ in ladder])
    first = np.array(
        [theory.measured_escape_times(tr.time, tr.recovery[0])[0] for _, tr in ladder]
    )
    if not np.all(np.isfinite(first)):
        return Signature(False, "Direction 1 did not escape at every d.")
    slope, _ = np.polyfit(log_d, first, 1)
    predicted = 1.0 / (8.0 * experiment.lam[0])
    per_decade = slope * math.log(10.0)
    ok = abs(slope / predicted - 1.0) < 0.2 and bool(np.all(np.diff(first) > 0))
    text = (
        f"Direction 1 escapes at t ≈ {first[0]:.3g} at d = 10³ and "
        f"{first[-1]:.3g} at d = 10⁷: each factor 10 in d adds "
        f"{per_decade:.3g} (logistic prediction ln 10 / (8 λ₁) = "
        f"{predicted * math.log(10.0):.3g})."
    )
    return Signature(ok, text, {"slope": float(slope), "predicted": predicted})


def orthogonal_tail(config: Config, time: np.ndarray) -> np.ndarray:
    """Late risk (m - r) / (64 t^2) of the m - r unused student directions.

    Away from the teacher, each eigenvalue mu of M obeys dmu/dt = -8 mu^2
    (the Riccati equation with Q = 0), so mu = mu_0 / (1 + 8 mu_0 t) tends to
    1 / (8 t) whatever its start, and each adds mu^2 to the risk.
    """
    spare = max(config.width - config.teacher_rank, 0)
    return spare / (64.0 * np.asarray(time, dtype=np.float64) ** 2)


def check_large_init(experiment: Experiment) -> Signature:
    """Check that the flow starts above risk 10 and ends within 10 % of the
    orthogonal tail (m - r) / (64 t^2), with a final log-log slope near -2."""
    config, flow = experiment.config, experiment.flow
    risk, time = flow.risk[0], flow.time
    tail = float(orthogonal_tail(config, time[-1]))
    gap = float(risk[-1] / tail - 1.0)
    late = time >= time[-1] / 4.0
    slope = float(np.polyfit(np.log(time[late]), np.log(risk[late]), 1)[0])
    ok = risk[0] > 10.0 and abs(gap) < 0.1 and -2.2 <= slope <= -1.8
    spare = config.width - config.teacher_rank
    text = (
        f"The risk starts at {risk[0]:.3g}, and by t = {time[-1]:.3g} the flow "
        f"is at {risk[-1]:.3g}, {100 * gap:+.2g}% from ({spare})/(64 t²) = "
        f"{tail:.3g}, falling like t^{slope:.2f}."
    )
    return Signature(ok, text, {"initial_risk": float(risk[0]), "tail_gap": gap})


# ---------------------------------------------------------------- registry


_SCENARIOS = (
    Scenario(
        name="one-at-a-time",
        title="One direction at a time",
        settings=dict(r=4, width=4, alpha=2.0, sigma0=0.01, lr=0.005, steps=6000),
        notice=(
            "Four directions with λⱼ ∝ j⁻² and a tiny initialisation. The risk "
            "sits on a plateau, drops when the strongest direction emerges, and "
            "waits on a new plateau for the next one: a staircase. Each escape "
            "comes when ρⱼ passes 1/2, close to the predicted tⱼ."
        ),
        check=check_one_at_a_time,
        page="recovery",
    ),
    Scenario(
        name="smooth-power-law",
        title="A smooth power law from many emergences",
        settings={},
        notice=(
            "Sixteen directions with λⱼ ∝ 1/j, each with its own plateau and "
            "escape. Their escape times are spread over a decade, so the steps "
            "merge into a straight line on log-log axes: the risk falls like a "
            "power of t. At this small size the fitted slope is steeper than the "
            "d → ∞ exponent −(2α−1)/α = −1."
        ),
        check=check_smooth_power_law,
    ),
    Scenario(
        name="width-bottleneck",
        title="The width bottleneck (m < r)",
        settings=dict(width=4),
        notice=(
            "Sixteen teacher directions but only four student neurons. The four "
            "strongest directions are learned, and the risk stops at the floor, "
            "the sum of λⱼ² over j > 4: the part of the teacher that four "
            "neurons cannot hold. SGD settles slightly above the floor."
        ),
        check=check_width_bottleneck,
    ),
    Scenario(
        name="step-too-large",
        title="A step size too large",
        settings=dict(lr=0.02, t_max=10.0),
        notice=(
            "The same teacher with lr a little above the stability limit "
            "lr ≈ 0.15 B / d. SGD follows the population flow through the first "
            "plateau, then its noise builds up: it leaves the flow and diverges "
            "shortly after. Lower lr in the sidebar to see it settle."
        ),
        check=check_step_too_large,
        page="sgd",
    ),
    Scenario(
        name="flat-spectrum",
        title="A flat spectrum (α = 0)",
        settings=dict(alpha=0.0, t_max=12.0),
        notice=(
            "All sixteen directions have the same strength λⱼ = 1/4. There is no "
            "staircase and no power law: every direction escapes at about the "
            "same time, and the risk falls off a cliff once the whole spectrum "
            "is learned."
        ),
        check=check_flat_spectrum,
        page="recovery",
    ),
    Scenario(
        name="dimension-matters",
        title="Dimension matters (escape delayed like ln d)",
        settings=dict(d=1000, r=4, width=4, t_max=12.0),
        notice=(
            "The initial overlap with each direction is about σ₀² m / d, and "
            "escaping takes time ln(λⱼ d / (σ₀² m)) / (8 λⱼ). Every factor of 10 "
            "in d therefore delays each escape by the same ln 10 / (8 λⱼ): "
            "against log d, the escape times in the figure below lie on straight "
            "lines."
        ),
        check=check_dimension_matters,
        page="riccati",
        ladder=True,
    ),
    Scenario(
        name="large-init",
        title="A large initialisation",
        settings=dict(r=4, width=16, sigma0=1.0, lr=0.01, batch=256, t_max=25.0),
        notice=(
            "With σ₀ = 1 the student starts far from the teacher, mostly in "
            "directions orthogonal to it, so the risk starts near 20 and falls "
            "without a plateau. The twelve neurons the teacher does not need "
            "shrink only like 1/(8t), so the risk ends on the slow tail "
            "(m − r)/(64 t²) instead of collapsing."
        ),
        check=check_large_init,
    ),
)

SCENARIOS: dict[str, Scenario] = {s.name: s for s in _SCENARIOS}
DEFAULT_SCENARIO = "smooth-power-law"


def get(name: str) -> Scenario:
    """The scenario called ``name``; raise ValueError naming the known ones."""
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise ValueError(f"unknown scenario {name!r}: allowed {known}") from None


def matching(config: Config) -> str | None:
    """Name of the scenario whose configuration equals ``config``, or None."""
    for scenario in SCENARIOS.values():
        if not scenario.differences(config):
            return scenario.name
    return None
