"""Sweeps over one parameter of the population flow and online SGD.

A sweep varies one Config field (alpha, width, d, sigma0, lr or batch) with
everything else fixed. Every run solves the exact population flow, whose
cost does not depend on d. Online SGD (``quadviz.experiment.simulate``,
reduced coordinates when d >= 8 (r + m)) is added where it is requested and
its estimated time fits a budget. A skipped SGD run gets the reason in its
note.

A sweep turns into one tidy table: a row per run, method and output time.
Figures, CSV and JSON export and the command line all read that table.

Units. t is the flow time t = lr * steps. For flow rows, steps = t / lr and
samples n = B t / lr are those of online SGD with the run's lr and B. Compute
counts the two GEMMs of an SGD update, 2 B d m flops each per step, so
4 d m flops per sample.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from quadviz import theory
from quadviz.config import FIELDS, Config, ConfigError
from quadviz.experiment import simulate
from quadviz.result import Trajectory
from quadviz.riccati import (
    COMPETING_STEP_LIMIT,
    RiccatiFlow,
    bartlett_state,
    reduce_state,
)
from quadviz.sgd import initial_weights
from quadviz.teacher import spectrum

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

SWEEP_PARAMETERS = ("alpha", "width", "d", "sigma0", "lr", "batch")
# The horizon of a run is this multiple of the last predicted escape time, so
# that the last learnable direction has converged (for m < r the risk then
# sits within about 2 percent of its floor).
HORIZON_FACTOR = 6.0
# The first output time is this fraction of the first predicted escape time,
# so that the plateau shows on a log time axis.
START_FACTOR = 0.05
# Compute per sample of online SGD: two GEMMs of 2 d m flops per sample.
FLOPS_PER_SAMPLE_FACTOR = 4.0

# Cost model for the estimates shown before a sweep starts, fitted to runs on
# a shared 2-core x86 machine with one BLAS and one torch thread. Flow: QRs
# and eigenvalues at about 1e10 flops/s, the r x r block of the risk at about
# 2e10 flops/s plus 1e-8 s per entry. SGD: about 2.5e-4 s of fixed work per
# step, 5e-9 s per Gaussian number and GEMMs at about 3e10 flops/s. These
# are estimates within about a factor of two, not bounds.
FLOW_FLOPS_PER_SECOND = 1e10
FLOW_GEMM_FLOPS_PER_SECOND = 2e10
FLOW_SECONDS_PER_ENTRY = 1e-8
SGD_STEP_SECONDS = 2.5e-4
SGD_NUMBER_SECONDS = 5e-9
SGD_FLOPS_PER_SECOND = 3e10
# Default time budget of all SGD runs of one sweep, in estimated seconds.
SGD_BUDGET_SECONDS = 20.0

ROW_FIELDS = (
    "param", "value", "method", "time", "steps", "samples", "flops", "risk",
    "risk_std", "d", "r", "width", "alpha", "sigma0", "lr", "batch", "seeds",
    "status",
)
ESCAPE_FIELDS = ("param", "value", "method", "j", "lambda", "escape_time")


# ---------------------------------------------------------------- horizons


def expected_initial_overlap(config: Config) -> float:
    """E ||W_0 row j||^2 = sigma0^2 m / d, the start z_j(0) of every direction."""
    return config.sigma0**2 * config.width / config.d


def expected_escape_times(config: Config) -> np.ndarray:
    """Logistic escape times t_j from the expected initial overlap, shape (r,)."""
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    z0 = np.full(lam.size, expected_initial_overlap(config))
    return theory.escape_times(lam, z0, config.width)


def auto_horizon(config: Config, factor: float = HORIZON_FACTOR) -> float:
    """``factor`` times the last finite predicted escape time (at least 1)."""
    escape = expected_escape_times(config)
    finite = escape[np.isfinite(escape) & (escape > 0)]
    last = float(finite.max()) if finite.size else 1.0
    return max(factor * last, 1.0)


def output_grid(config: Config, horizon: float) -> np.ndarray:
    """0 and ``config.points`` log-spaced times from the plateau to ``horizon``."""
    escape = expected_escape_times(config)
    finite = escape[np.isfinite(escape) & (escape > 0)]
    first = float(finite.min()) if finite.size else horizon * 1e-3
    start = min(START_FACTOR * first, 1e-3 * horizon)
    start = max(start, horizon * 1e-6)
    return np.concatenate([[0.0], np.geomspace(start, horizon, config.points)])


# ---------------------------------------------------------------- cost


def flow_seconds(config: Config, horizon: float) -> float:
    """Estimated seconds of one flow solve up to ``horizon``.

    Per output time: one QR of a (r + 2m) x m matrix (about 2 (r + 2m) m^2
    flops), the eigenvalues of W^T W (about 9 m^3) and the r x r block
    P P^T of the risk (2 r^2 m flops). For m < r the intervals are also cut
    into pieces with lambda_1 tau below COMPETING_STEP_LIMIT. Each piece
    costs one more QR.
    """
    r, m = config.teacher_rank, config.width
    points = config.points + 1
    qrs = points
    if m < r:
        lam_max = float(spectrum(r, config.alpha, config.normalization).max())
        qrs += math.ceil(4.0 * horizon * lam_max / COMPETING_STEP_LIMIT)
    factor_flops = qrs * 2.0 * (r + 2 * m) * m**2 + points * 9.0 * m**3
    risk_flops = points * 2.0 * r**2 * m
    return (
        factor_flops / FLOW_FLOPS_PER_SECOND
        + risk_flops / FLOW_GEMM_FLOPS_PER_SECOND
        + points * r**2 * FLOW_SECONDS_PER_ENTRY
    )


def sgd_seconds(config: Config) -> float:
    """Estimated seconds of ``config.seeds`` online SGD runs to config.horizon."""
    n = config.d if config.sgd_method == "full" else config.teacher_rank + config.width
    per_seed = config.batch * n
    per_step = (
        SGD_STEP_SECONDS
        + config.seeds * per_seed * SGD_NUMBER_SECONDS
        + config.seeds * 4.0 * per_seed * config.width / SGD_FLOPS_PER_SECOND
    )
    return config.num_steps * per_step


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class Run:
    """One point of a sweep: the flow and, when it ran, online SGD.

    ``config`` has the swept value set; its t_max is None because the flow
    horizon is kept apart, because a flow at d = 10^9 would exceed the SGD
    step limit of Config. ``escape_predicted`` contains the logistic escape
    times from the run's own W_0. ``sgd_note`` is the reason SGD did not
    run, or "".
    """

    value: float
    config: Config
    horizon: float
    lam: np.ndarray
    flow: Trajectory
    escape_predicted: np.ndarray
    z0: np.ndarray
    sgd: Trajectory | None = None
    sgd_note: str = ""

    def trajectory(self, method: str) -> Trajectory | None:
        """Return the flow or the SGD trajectory (None if SGD did not run)."""
        if method == "flow":
            return self.flow
        if method == "sgd":
            return self.sgd
        raise ValueError(f"invalid method={method!r}: allowed flow, sgd")


@dataclass(frozen=True)
class Sweep:
    """Runs of one sweep, in the order of the swept values."""

    param: str
    runs: tuple[Run, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(run.value for run in self.runs)

    def rows(self) -> list[dict]:
        """Tidy table: one dict per run, method and output time t > 0."""
        out: list[dict] = []
        for run in self.runs:
            out += _trajectory_rows(self.param, run, "flow")
            if run.sgd is not None:
                out += _trajectory_rows(self.param, run, "sgd")
        return out

    def escape_rows(self) -> list[dict]:
        """Escape time of each direction: predicted, and measured per method."""
        out: list[dict] = []
        for run in self.runs:
            measured = {"predicted": run.escape_predicted}
            for method in ("flow", "sgd"):
                trajectory = run.trajectory(method)
                if trajectory is not None and trajectory.time.size > 1:
                    recovery = trajectory.recovery.mean(axis=0)
                    measured[method] = theory.measured_escape_times(
                        trajectory.time, recovery
                    )
            for method, times in measured.items():
                for j, (lam_j, t_j) in enumerate(zip(run.lam, times), start=1):
                    out.append(
                        {
                            "param": self.param,
                            "value": run.value,
                            "method": method,
                            "j": j,
                            "lambda": float(lam_j),
                            "escape_time": _finite_or_none(t_j),
                        }
                    )
        return out


def _finite_or_none(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _trajectory_rows(param: str, run: Run, method: str) -> list[dict]:
    trajectory = run.trajectory(method)
    config = run.config
    seeds = trajectory.risk.shape[0]
    mean = trajectory.risk_mean()
    spread = trajectory.risk.std(axis=0) if seeds > 1 else None
    rows = []
    for i, t in enumerate(trajectory.time):
        if t <= 0:
            continue
        samples = config.batch * t / config.lr
        flops = FLOPS_PER_SAMPLE_FACTOR * config.d * config.width * samples
        rows.append(
            {
                "param": param,
                "value": run.value,
                "method": method,
                "time": float(t),
                "steps": float(t / config.lr),
                "samples": float(samples),
                "flops": float(flops),
                "risk": _finite_or_none(mean[i]),
                "risk_std": None if spread is None else _finite_or_none(spread[i]),
                "d": config.d,
                "r": config.teacher_rank,
                "width": config.width,
                "alpha": config.alpha,
                "sigma0": config.sigma0,
                "lr": config.lr,
                "batch": config.batch,
                "seeds": seeds,
                "status": trajectory.status,
            }
        )
    return rows


def run_configs(
    base: Config,
    param: str,
    values: tuple[float, ...],
    keep_lr_scale: bool = False,
    batch_equals_d: bool = False,
) -> list[Config]:
    """Build one validated Config per swept value.

    r is pinned to the base rank, because r derived from beta would change
    with d. With ``keep_lr_scale`` the learning rate follows lr = c B / d
    with c = lr d / B of ``base``, so that SGD stays at the same distance
    from its stability limit lr < c_max B / d. With ``batch_equals_d`` the
    batch size is d (capped at the largest allowed batch), as in online SGD
    with one batch of d samples per step.
    """
    if param not in SWEEP_PARAMETERS:
        raise ConfigError("param", param, "one of " + ", ".join(SWEEP_PARAMETERS))
    if not values:
        raise ConfigError("values", values, "at least one value")
    scale = base.lr * base.d / base.batch
    out = []
    for value in values:
        config = base.replace(r=base.teacher_rank, t_max=None, **{param: value})
        if batch_equals_d:
            config = config.replace(batch=min(config.d, int(FIELDS["batch"].high)))
        if keep_lr_scale:
            config = config.replace(lr=scale * config.batch / config.d)
        out.append(config)
    return out


def initial_state(config: Config) -> np.ndarray:
    """Reduced W_0 of shape (r + m, m), the same one ``simulate`` starts from.

    Full SGD draws W_0 with torch from the seed; the reduced path and the
    flow alone draw the reduced state by the Bartlett decomposition.
    """
    r = config.teacher_rank
    if config.sgd_method == "full":
        return reduce_state(initial_weights(config), r)
    rng = np.random.default_rng(config.seed)
    return bartlett_state(config.d, r, config.width, config.sigma0, rng)


def _sgd_config(config: Config, horizon: float) -> tuple[Config | None, str]:
    """Config of the SGD run up to ``horizon``, or None and the reason."""
    steps = math.ceil(horizon / config.lr - 1e-9)
    limit = FIELDS["steps"].high
    if steps > limit:
        return None, (
            f"SGD not run: reaching t = {horizon:.3g} at lr = {config.lr:.3g} "
            f"takes {steps:.2g} steps, above the limit of {limit:.0e}"
        )
    try:
        sgd_config = config.replace(t_max=horizon)
        sgd_config.check_sgd_memory()
    except ConfigError as err:
        return None, f"SGD not run: {err}"
    return sgd_config, ""


def run_one(
    config: Config,
    value: float,
    horizon: float,
    with_sgd: bool,
    progress: Progress | None = None,
) -> Run:
    """Flow (and SGD when ``with_sgd``) of one configuration up to ``horizon``."""
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    r = lam.size
    state0 = initial_state(config)
    z0 = np.einsum("ij,ij->i", state0[:r], state0[:r])
    escape = theory.escape_times(lam, z0, config.width)
    flow_progress = sgd_progress = None
    if progress is not None:
        share = 0.5 if with_sgd else 1.0
        flow_progress = lambda f, text: progress(share * f, text)
        sgd_progress = lambda f, text: progress(0.5 + 0.5 * f, text)
    flow = RiccatiFlow(lam, state0).solve(output_grid(config, horizon), flow_progress)
    sgd, note = None, ""
    if with_sgd:
        sgd_config, note = _sgd_config(config, horizon)
        if sgd_config is not None:
            sgd = simulate(sgd_config, sgd_progress).sgd
            if not sgd.ok:
                note = sgd.message
    return Run(value, config, horizon, lam, flow, escape, z0, sgd, note)


@dataclass(frozen=True)
class SweepSpec:
    """What to sweep: plain values only, so it can key a cache.

    ``horizon`` None gives every run its own auto_horizon. ``sgd`` asks for
    online SGD, run only where its estimated time fits ``sgd_budget``
    seconds (all SGD runs of the sweep together, in the order given).
    """

    base: Config
    param: str
    values: tuple[float, ...]
    horizon: float | None = None
    sgd: bool = False
    keep_lr_scale: bool = False
    batch_equals_d: bool = False
    sgd_budget: float = SGD_BUDGET_SECONDS

    def configs(self) -> list[Config]:
        return run_configs(
            self.base, self.param, self.values, self.keep_lr_scale,
            self.batch_equals_d,
        )

    def horizons(self) -> list[float]:
        if self.horizon is not None:
            return [float(self.horizon)] * len(self.values)
        return [auto_horizon(config) for config in self.configs()]

    def sgd_plan(self) -> list[tuple[bool, str]]:
        """(run SGD?, reason if not) per value, within the time budget."""
        plan, spent = [], 0.0
        for config, horizon in zip(self.configs(), self.horizons()):
            if not self.sgd:
                plan.append((False, ""))
                continue
            sgd_config, note = _sgd_config(config, horizon)
            if sgd_config is None:
                plan.append((False, note))
                continue
            cost = sgd_seconds(sgd_config)
            if spent + cost > self.sgd_budget:
                reason = (
                    f"SGD not run: estimated {cost:.3g} s, above the "
                    f"remaining budget of {self.sgd_budget - spent:.3g} s"
                )
                plan.append((False, reason))
                continue
            spent += cost
            plan.append((True, ""))
        return plan

    def estimated_seconds(self) -> float:
        """Estimated seconds of the whole sweep (flow plus planned SGD)."""
        total = 0.0
        plan = self.sgd_plan()
        for config, horizon, (with_sgd, _) in zip(
            self.configs(), self.horizons(), plan
        ):
            total += flow_seconds(config, horizon)
            if with_sgd:
                total += sgd_seconds(config.replace(t_max=horizon))
        return total


def run_sweep(spec: SweepSpec, progress: Progress | None = None) -> Sweep:
    """Run every value of ``spec``: the flow always, SGD where planned.

    Progress is reported per run, as (fraction of runs done, text).
    """
    configs, horizons, plan = spec.configs(), spec.horizons(), spec.sgd_plan()
    runs, notes = [], []
    count = len(configs)
    log.info("sweep over %s: %s", spec.param, spec.values)
    for i, (config, horizon, (with_sgd, skip)) in enumerate(
        zip(configs, horizons, plan)
    ):
        value = spec.values[i]
        text = f"{spec.param} = {value:g} ({i + 1} of {count})"
        if progress is not None:
            progress(i / count, text)
        inner = None
        if progress is not None:
            inner = lambda f, what, i=i, text=text: progress(
                (i + f) / count, f"{text}, {what}"
            )
        run = run_one(config, value, horizon, with_sgd, inner)
        if skip:
            run = replace(run, sgd_note=skip)
        if run.sgd_note:
            notes.append(f"{spec.param} = {value:g}: {run.sgd_note}")
            log.info("%s = %g: %s", spec.param, value, run.sgd_note)
        runs.append(run)
    if progress is not None:
        progress(1.0, "done")
    return Sweep(spec.param, tuple(runs), tuple(notes))


# ---------------------------------------------------------------- export


def rows_to_csv(rows: list[dict], fields: tuple[str, ...] = ROW_FIELDS) -> str:
    """CSV text with a header; None (no value) is written as an empty cell."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row[k] for k in fields})
    return buffer.getvalue()


def rows_to_json(rows: list[dict]) -> str:
    """JSON array of the rows; None becomes null."""
    return json.dumps(rows, allow_nan=False)


# ---------------------------------------------------------------- presets


@dataclass(frozen=True)
class Reconstruction:
    """Loss-against-compute runs modelled on Ben Arous, Erdogdu, Vural, Wu.

    Their setting (arXiv 2508.03688): online SGD with batch size d,
    d = 3200, r = 2400, alpha = 1. Their step size and widths are not
    published, so this is a reconstruction: quadviz chooses lr, the widths
    and sigma0. ``flow`` is the population flow at the full size; ``sgd``
    runs online SGD on a copy scaled down by ``scale`` in d, r and the
    widths, the largest that fits the SGD budget.
    """

    flow: SweepSpec
    sgd: SweepSpec | None
    scale: int
    notes: tuple[str, ...]


RECONSTRUCTION_D = 3200
RECONSTRUCTION_R = 2400
RECONSTRUCTION_ALPHA = 1.0
# lr d / B with B = d, well inside the measured stability limit of about 0.15.
RECONSTRUCTION_LR = 0.05
# sigma0 = 0.01 gives every learnable direction a plateau: sigma0^2 m / d
# stays below lambda_m / 50 for the widths below at d = 3200.
RECONSTRUCTION_SIGMA0 = 0.01
RECONSTRUCTION_WIDTHS = (32, 64, 128, 256, 512)
RECONSTRUCTION_POINTS = 32
# Scale-down factors tried for the SGD copy, largest size first.
RECONSTRUCTION_SCALES = (1, 2, 4, 8, 16)


def reconstruction(sgd_budget: float = SGD_BUDGET_SECONDS) -> Reconstruction:
    """Full-size flow and the largest affordable SGD copy of the preset."""
    base = Config.create(
        d=RECONSTRUCTION_D,
        r=RECONSTRUCTION_R,
        alpha=RECONSTRUCTION_ALPHA,
        width=RECONSTRUCTION_WIDTHS[0],
        sigma0=RECONSTRUCTION_SIGMA0,
        batch=RECONSTRUCTION_D,
        lr=RECONSTRUCTION_LR,
        points=RECONSTRUCTION_POINTS,
        seeds=1,
    )
    flow = SweepSpec(base, "width", RECONSTRUCTION_WIDTHS)
    widths = ", ".join(map(str, RECONSTRUCTION_WIDTHS))
    notes = [
        (
            "Reconstruction: d = 3200, r = 2400, α = 1 and batch size B = d "
            f"follow the paper; lr = 0.05, σ₀ = 0.01 and the widths {widths} "
            "are chosen here, because the paper does not publish them."
        )
    ]
    for scale in RECONSTRUCTION_SCALES:
        spec = _scaled_sgd_spec(base, scale, sgd_budget)
        if spec is not None:
            notes.append(_scale_note(scale, spec))
            return Reconstruction(flow, spec, scale, tuple(notes))
    notes.append("Online SGD skipped: even the smallest copy exceeds the budget.")
    return Reconstruction(flow, None, 0, tuple(notes))


def _scaled_sgd_spec(base: Config, scale: int, budget: float) -> SweepSpec | None:
    d = base.d // scale
    widths = tuple(max(1, m // scale) for m in RECONSTRUCTION_WIDTHS)
    config = base.replace(d=d, r=base.teacher_rank // scale, batch=d, width=widths[0])
    spec = SweepSpec(config, "width", widths, sgd=True, sgd_budget=budget)
    if all(ok for ok, _ in spec.sgd_plan()):
        return spec
    return None


def _scale_note(scale: int, spec: SweepSpec) -> str:
    if scale == 1:
        return "Online SGD runs at the full size."
    config = spec.base
    return (
        f"Online SGD is scaled down by {scale}: d = {config.d}, "
        f"r = {config.teacher_rank}, B = d, widths "
        f"{', '.join(str(int(v)) for v in spec.values)}, the largest copy whose "
        f"estimated SGD time fits the budget of {spec.sgd_budget:g} s."
    )
