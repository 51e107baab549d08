"""Run online SGD, the population flow and the theory from one W_0."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from quadviz import theory
from quadviz.config import Config
from quadviz.result import Trajectory
from quadviz.riccati import RiccatiFlow, bartlett_state, reduce_state
from quadviz.reduced_sgd import ReducedSGD
from quadviz.sgd import OnlineSGD, initial_weights, log_steps
from quadviz.teacher import spectrum

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class Experiment:
    """Everything one configuration produces, as CPU numpy arrays.

    sgd is None for a flow-only run. escape_predicted contains the predicted
    escape time t_j of every direction (np.inf where it never escapes).
    """

    config: Config
    lam: np.ndarray
    flow: Trajectory
    additive: Trajectory
    escape_predicted: np.ndarray
    sgd: Trajectory | None = None
    device: str = "cpu"


def output_times(horizon: float, points: int) -> np.ndarray:
    """0 and ``points`` log-spaced times up to ``horizon``, starting 4 decades below."""
    return np.concatenate([[0.0], np.geomspace(horizon * 1e-4, horizon, points)])


def _theory(config: Config, lam: np.ndarray, P0: np.ndarray, times: np.ndarray):
    z0 = np.einsum("ij,ij->i", P0, P0)
    additive = theory.additive_model(lam, z0, times, config.width)
    escape = theory.escape_times(lam, z0, config.width)
    return additive, escape


def simulate(
    config: Config, progress: Progress | None = None, init: np.ndarray | None = None
) -> Experiment:
    """Online SGD and the exact population flow from the same W_0, plus theory.

    Steps: take W_0 from ``init`` (shape (d, m)) or draw it from
    ``config.seed`` (for reduced SGD, draw its reduced state directly); run ``config.seeds`` SGD runs
    sharing it; solve the flow from W_0 at the SGD output times (or, if SGD
    diverged, at the times it would have reached); add the additive model and
    the predicted escape times. Progress goes 0-0.9 for SGD, 0.9-1 for the flow.
    """
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    r = len(lam)
    W0 = None if init is None else np.asarray(init, dtype=np.float64)
    if config.sgd_method == "full":
        W0 = initial_weights(config) if W0 is None else W0
        runner = OnlineSGD(config, lam, W0)
        state0 = reduce_state(W0, r)
    else:
        runner = ReducedSGD(config, lam, W0)
        state0 = runner.state0
    sgd_progress = None
    if progress is not None:
        sgd_progress = lambda f, text: progress(0.9 * f, text)  # noqa: E731
    sgd_run = runner.run(sgd_progress)
    sgd_run.info["method"] = config.sgd_method
    steps = log_steps(config.num_steps, config.points)
    times = steps * config.lr
    flow_progress = None
    if progress is not None:
        flow_progress = lambda f, text: progress(0.9 + 0.1 * f, text)  # noqa: E731
    flow = RiccatiFlow(lam, state0).solve(times, flow_progress)
    additive, escape = _theory(config, lam, state0[:r], times)
    return Experiment(config, lam, flow, additive, escape, sgd_run, str(runner.device))


def flow_only(
    config: Config, progress: Progress | None = None, init: np.ndarray | None = None
) -> Experiment:
    """Exact population flow alone, up to ``config.horizon``.

    Without ``init`` the reduced initial state is drawn by the Bartlett
    decomposition, so d may be 10^9 without forming a d-vector; with ``init``
    (shape (d, m)) the flow starts from that W_0.
    """
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    r, m = len(lam), config.width
    if init is None:
        rng = np.random.default_rng(config.seed)
        state0 = bartlett_state(config.d, r, m, config.sigma0, rng)
    else:
        state0 = reduce_state(init, r)
    times = output_times(config.horizon, config.points)
    flow = RiccatiFlow(lam, state0).solve(times, progress)
    additive, escape = _theory(config, lam, state0[:r], times)
    return Experiment(config, lam, flow, additive, escape, None, "cpu")


def dimension_ladder(
    config: Config, dims: list[int], progress: Progress | None = None
) -> list[tuple[int, Trajectory]]:
    """Population flow at several d with everything else fixed (Bartlett states).

    Escape times grow like log d, so plotted against t / ln d the curves
    approach one limit curve as d grows. r is pinned to config's r, because
    r derived from beta would grow with d.
    """
    out = []
    fixed = {**asdict(config), "r": config.teacher_rank}
    for i, d in enumerate(dims):
        exp = flow_only(Config(**{**fixed, "d": int(d)}))
        out.append((int(d), exp.flow))
        if progress is not None:
            progress((i + 1) / len(dims), f"population flow at d = {d}")
    return out
