"""Estimated cost of a run, and the limits that decide whether it starts.

Before a run starts, :func:`estimate` predicts its seconds and bytes from the
configuration alone: SGD steps, batch B, dimension d (or r + m on the reduced
path), width m, seeds, output points and the horizon of the flow. A host then
compares the estimate with its :class:`Limits`: runs under ``auto_seconds``
start at once, runs under ``max_seconds`` wait for an explicit request, and
larger runs, or runs above ``max_memory_bytes``, are rejected.

The seconds come from a linear cost model. Its constants were fitted by
``python -m tools.calibrate_budget``, a least-squares fit over a grid of small
runs with one torch thread and one BLAS thread (torch 2.13 CPU, numba 0.68),
on a quiet shared 2-core x86-64 machine with the compiled loops loaded.
Estimates are LOAD_FACTOR times the fitted cost, because a hosted demo
shares its cores. They are estimates: on the quiet machine, measured times
were 0.3 to 1.3 times the estimate (most near 0.5), so rerun the script on
a new host. Until the app has compiled its numba loops (about 15 s after
the first start after an install), small steps run in the torch loops, up
to 100 times slower at B = 1, so :func:`fixed_step_seconds` prices the
loop that runs now.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from quadviz import reduced_kernel, sgd_kernel
from quadviz.config import Config
from quadviz.result import OVERLAP_DIRECTIONS
from quadviz.riccati import COMPETING_STEP_LIMIT
from quadviz.teacher import spectrum
from quadviz.theory import lr_stability_limit

# Cost-model constants in seconds, fitted by tools/calibrate_budget.py.
SECONDS_PER_NUMBER = 1.6e-9  # one Gaussian number drawn and used in a step
SECONDS_PER_SGD_FLOP = 2.1e-11  # batched matrix products of an SGD step
SECONDS_PER_FULL_STEP = 2.1e-7  # fixed cost per seed of one step in the compiled full-SGD loop
SECONDS_PER_REDUCED_STEP = 8.0e-7  # fixed cost per seed of one step in the compiled reduced loop
# Fixed costs of the torch loops, measured rather than fitted because the
# fit's runs use the compiled loops: one TorchScript step of full SGD (23 to
# 24 us at B = 1, d = 8, m = 1, 1 or 8 seeds, one torch thread), used for
# steps above the compiled loop's size and before it is compiled, and one
# step of the reduced torch loop before its loop is compiled (50 to 70 us at
# d = 64, r = 2, m = 1).
SECONDS_PER_SCRIPTED_STEP = 2.5e-5
SECONDS_PER_TORCH_REDUCED_STEP = 7.0e-5
SECONDS_PER_MEASURE = 3.5e-4  # fixed cost of one SGD risk measurement
SECONDS_PER_FLOW_FLOP = 6.4e-11  # float64 QR, products and eigvalsh of the flow
SECONDS_PER_FLOW_PIECE = 7.5e-5  # fixed cost of one propagator step
# Estimates are this multiple of the fitted cost, for cores shared with
# other sessions and processes.
LOAD_FACTOR = 2.0

# Gaussian numbers the SGD backends draw per seed in one call
# (quadviz.sgd.DRAW_ELEMENTS).
DRAW_ELEMENTS = 1 << 20

# Defaults sized for a hosted demo on 2 CPU cores and about 2.7 GB of memory,
# where a run occupies one core and several visitors compute at once.
DEFAULT_AUTO_SECONDS = 8.0
DEFAULT_MAX_SECONDS = 60.0
DEFAULT_MAX_MEMORY_MB = 300.0

ENV_AUTO_SECONDS = "QUADVIZ_AUTO_BUDGET_S"
ENV_MAX_SECONDS = "QUADVIZ_MAX_BUDGET_S"
ENV_MAX_MEMORY_MB = "QUADVIZ_MAX_MEMORY_MB"

# Initial weights below these sizes lose their value: float32's smallest
# positive number is about 1.4e-45, and theory.escape_times clamps z_j(0) at
# 1e-300.
FLOAT32_TINY = 1e-44
FLOAT64_TINY = 1e-300


@dataclass(frozen=True)
class CostEstimate:
    """Predicted cost of one configuration.

    Attributes
    ----------
    method : SGD path, "full" or "reduced".
    sgd_seconds : online SGD with its risk measurements.
    flow_seconds : population flow and theory curves.
    sgd_bytes : peak working memory of the SGD run.
    flow_bytes : peak working memory of the flow.
    result_bytes : arrays the result keeps (what a cache entry holds).
    """

    method: str
    sgd_seconds: float
    flow_seconds: float
    sgd_bytes: int
    flow_bytes: int
    result_bytes: int

    @property
    def total_seconds(self) -> float:
        """SGD and flow together."""
        return self.sgd_seconds + self.flow_seconds

    def describe(self) -> str:
        """One line: estimated seconds of each part and the memory."""
        return (
            f"estimated {format_seconds(self.sgd_seconds)} for online SGD "
            f"({self.method} path) and {format_seconds(self.flow_seconds)} for "
            f"the population flow; peak memory about "
            f"{format_bytes(max(self.sgd_bytes, self.flow_bytes))}"
        )


def format_seconds(seconds: float) -> str:
    """Seconds as '0.3 s', '42 s', '12 min' or '5.0 h'."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 3 * 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.2g} h"


def format_bytes(count: float) -> str:
    """Bytes as '12 MB' or '1.5 GB' (powers of 10)."""
    if count < 1e9:
        return f"{max(count, 0) / 1e6:.3g} MB"
    return f"{count / 1e9:.3g} GB"


def _output_points(config: Config) -> int:
    """Output times of a run: 0 and at most ``points`` log-spaced steps."""
    return min(config.points, config.num_steps) + 1


def _path_dimension(config: Config) -> int:
    """Rows of the SGD state: d on the full path, r + m on the reduced one."""
    if config.sgd_method == "full":
        return config.d
    return config.teacher_rank + config.width


def _sgd_step_cost(config: Config) -> tuple[float, float]:
    """Gaussian numbers and flops of one SGD step over all seeds."""
    S, B, m = config.seeds, config.batch, config.width
    r, n = config.teacher_rank, _path_dimension(config)
    numbers = S * B * n + (S * B if config.noise > 0 else 0)
    flops = 4.0 * S * B * n * m + 2.0 * S * B * r
    if config.sgd_method == "reduced":
        q = min(B, m)
        numbers += S * (q * q + 2 * q)
        flops += S * (2.0 * (m + q) * m * m + 2.0 * q * q * m)
        if q < B:
            flops += S * 2.0 * B * m * m
    return float(numbers), flops


def _measure_flops(config: Config) -> float:
    """Flops of one exact risk measurement of all seeds (float64)."""
    S, m = config.seeds, config.width
    r, n = config.teacher_rank, _path_dimension(config)
    return S * (2.0 * n * m * m + 2.0 * r * r * m + 2.0 * r * m * m + 10.0 * m**3)


def fixed_step_seconds(config: Config) -> float:
    """Fixed cost of one SGD step of all seeds on the loop that runs it now.

    The compiled loops run one call per seed, and the torch loops one call
    for all seeds. The torch loops run until the app has compiled the numba
    loops, and TorchScript runs full-SGD steps above the compiled loop's
    size.
    """
    if config.sgd_method == "full":
        if (sgd_kernel.uses_loop(config.batch, config.d, config.width)
                and reduced_kernel.part_ready("sgd_kernel")):
            return config.seeds * SECONDS_PER_FULL_STEP
        return SECONDS_PER_SCRIPTED_STEP
    if reduced_kernel.ready():
        return config.seeds * SECONDS_PER_REDUCED_STEP
    return SECONDS_PER_TORCH_REDUCED_STEP


def sgd_seconds(config: Config) -> float:
    """Estimated seconds of the online SGD part of a run."""
    numbers, flops = _sgd_step_cost(config)
    fixed = fixed_step_seconds(config)
    per_step = fixed + numbers * SECONDS_PER_NUMBER + flops * SECONDS_PER_SGD_FLOP
    points = _output_points(config)
    per_measure = SECONDS_PER_MEASURE + _measure_flops(config) * SECONDS_PER_SGD_FLOP
    return LOAD_FACTOR * (config.num_steps * per_step + points * per_measure)


def _lam_max(config: Config) -> float:
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    return float(np.max(lam))


def flow_pieces(config: Config, horizon: float | None = None) -> float:
    """Propagator steps of the flow up to ``horizon`` (default config.horizon).

    When m < r the flow cuts time into steps of lambda_max * tau at most
    COMPETING_STEP_LIMIT (tau = 4 t), so a long horizon costs many steps.
    """
    horizon = config.horizon if horizon is None else horizon
    pieces = float(config.points + 1)
    if config.width < config.teacher_rank:
        pieces += 4.0 * horizon * _lam_max(config) / COMPETING_STEP_LIMIT
    return pieces


def flow_seconds(config: Config, horizon: float | None = None) -> float:
    """Estimated seconds of the population flow and the theory curves."""
    r, m = config.teacher_rank, config.width
    piece_flops = 2.0 * (r + 2 * m) * m * m
    output_flops = 2.0 * r * r * m + 2.0 * r * m * m + 12.0 * m**3
    pieces = flow_pieces(config, horizon)
    outputs = config.points + 1
    return LOAD_FACTOR * (
        pieces * (SECONDS_PER_FLOW_PIECE + piece_flops * SECONDS_PER_FLOW_FLOP)
        + outputs * output_flops * SECONDS_PER_FLOW_FLOP
    )


def _result_bytes(config: Config, with_sgd: bool) -> int:
    """Bytes of the float64 arrays an Experiment keeps."""
    r, m = config.teacher_rank, config.width
    k = min(r, OVERLAP_DIRECTIONS)
    points = config.points + 1
    flow = points * (1 + r + m + k * k)
    additive = points * (1 + r)
    total = flow + additive + 2 * r
    if with_sgd:
        total += _output_points(config) * (config.seeds * (1 + r + m) + k * k + 3)
    return 8 * int(total)


def _sgd_working_bytes(config: Config) -> int:
    """Peak bytes of the SGD state, one drawn chunk and one measurement."""
    itemsize = 4 if config.dtype == "float32" else 8
    S, B, m = config.seeds, config.batch, config.width
    r, n = config.teacher_rank, _path_dimension(config)
    per_step, _ = _sgd_step_cost(config)
    draw = max(per_step, min(per_step * config.num_steps, S * DRAW_ELEMENTS))
    # X, the labels' squares X_par * X_par, then W, Z and the update's copies
    chunk = draw + draw * r / max(n, 1)
    state = S * (3 * n * m + 3 * B * m)
    # the float64 measurement: a copy of W, the r x r block and the Gram
    measure = 8 * S * (n * m + 2 * r * r + 2 * m * m)
    return int(itemsize * (chunk + state) + measure)


def _flow_working_bytes(config: Config) -> int:
    """Peak bytes of the flow: the stacked QR input and the r x r risk block."""
    r, m = config.teacher_rank, config.width
    return 8 * int(3 * (r + 2 * m) * m + 2 * r * r)


def estimate(config: Config, with_sgd: bool = True) -> CostEstimate:
    """Predict seconds and bytes of ``simulate`` (or ``flow_only``) for config."""
    sgd = sgd_seconds(config) if with_sgd else 0.0
    return CostEstimate(
        method=config.sgd_method,
        sgd_seconds=sgd,
        flow_seconds=flow_seconds(config),
        sgd_bytes=_sgd_working_bytes(config) if with_sgd else 0,
        flow_bytes=_flow_working_bytes(config),
        result_bytes=_result_bytes(config, with_sgd),
    )


def ladder_seconds(config: Config, dims: tuple[int, ...]) -> float:
    """Estimated seconds of the flow at each d in ``dims`` (same r and m)."""
    return len(dims) * flow_seconds(config)


@dataclass(frozen=True)
class Limits:
    """Server-side compute limits of one host.

    Attributes
    ----------
    auto_seconds : runs estimated below this start without a click.
    max_seconds : runs estimated above this are rejected.
    max_memory_bytes : runs whose working memory or result exceeds this are
        rejected.
    """

    auto_seconds: float = DEFAULT_AUTO_SECONDS
    max_seconds: float = DEFAULT_MAX_SECONDS
    max_memory_bytes: float = DEFAULT_MAX_MEMORY_MB * 1e6

    @classmethod
    def from_mapping(cls, values: Mapping[str, object]) -> tuple[Limits, list[str]]:
        """Read the limits from environment-style names, e.g. os.environ.

        Returns the limits and one problem text per invalid value; an invalid
        value keeps its default. auto_seconds is capped at max_seconds.
        """
        problems: list[str] = []
        auto = _read_positive(values, ENV_AUTO_SECONDS, DEFAULT_AUTO_SECONDS, problems)
        most = _read_positive(values, ENV_MAX_SECONDS, DEFAULT_MAX_SECONDS, problems)
        memory = _read_positive(
            values, ENV_MAX_MEMORY_MB, DEFAULT_MAX_MEMORY_MB, problems
        )
        return cls(min(auto, most), most, memory * 1e6), problems


def _read_positive(
    values: Mapping[str, object], name: str, default: float, problems: list[str]
) -> float:
    raw = values.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(str(raw))
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        problems.append(
            f"invalid {name}={str(raw)[:40]!r}: expected a positive number; "
            f"using {default:g}"
        )
        return default
    return value


@dataclass(frozen=True)
class Decision:
    """What a host does with one part of a run.

    action is "run" (start now), "confirm" (wait for an explicit request) or
    "reject"; reason says why, in a sentence, when action is not "run".
    """

    action: str
    reason: str = ""


def decide_sgd(cost: CostEstimate, limits: Limits) -> Decision:
    """Start, hold or reject the SGD part, given its estimate and the limits.

    The flow runs with SGD, so their seconds count together.
    """
    memory = max(cost.sgd_bytes, cost.result_bytes)
    if memory > limits.max_memory_bytes:
        return Decision(
            "reject",
            f"online SGD needs about {format_bytes(memory)} of memory, above "
            f"this server's limit of {format_bytes(limits.max_memory_bytes)}; "
            "lower batch, seeds, d, width, r or output times",
        )
    seconds = cost.total_seconds
    if seconds > limits.max_seconds:
        return Decision(
            "reject",
            f"online SGD would take about {format_seconds(seconds)}, above "
            f"this server's limit of {format_seconds(limits.max_seconds)}; "
            "lower steps, batch, seeds or d",
        )
    if seconds > limits.auto_seconds:
        return Decision(
            "confirm",
            f"online SGD would take about {format_seconds(seconds)}, more than "
            f"the {format_seconds(limits.auto_seconds)} that start by themselves",
        )
    return Decision("run")


def decide_flow(cost: CostEstimate, limits: Limits) -> Decision:
    """Start, hold or reject the population flow alone."""
    memory = max(cost.flow_bytes, cost.result_bytes)
    if memory > limits.max_memory_bytes:
        return Decision(
            "reject",
            f"the population flow needs about {format_bytes(memory)} of memory, "
            f"above this server's limit of {format_bytes(limits.max_memory_bytes)}; "
            "lower r, width or output times",
        )
    if cost.flow_seconds > limits.max_seconds:
        return Decision(
            "reject",
            f"the population flow would take about "
            f"{format_seconds(cost.flow_seconds)}, above this server's limit of "
            f"{format_seconds(limits.max_seconds)}; lower r, width, output times "
            "or the horizon",
        )
    if cost.flow_seconds > limits.auto_seconds:
        return Decision(
            "confirm",
            f"the population flow would take about "
            f"{format_seconds(cost.flow_seconds)}, more than the "
            f"{format_seconds(limits.auto_seconds)} that start by themselves",
        )
    return Decision("run")


@dataclass(frozen=True)
class ConfigWarning:
    """A valid setting that may still mislead: the field and a sentence."""

    field: str
    message: str


def config_warnings(config: Config, with_sgd: bool = True) -> list[ConfigWarning]:
    """Warnings about a valid configuration, each with the field it concerns.

    With ``with_sgd`` False only the warnings about the flow are returned.

    - lr above the estimated stability limit: SGD is expected to diverge.
      The run is allowed, because divergence is a result worth seeing.
    - W_0 entries (about sigma0 / sqrt(d)) below FLOAT32_TINY with float32
      SGD: they underflow to zero and SGD never leaves W = 0 (measured: with
      sigma0 = 1e-50 the float32 risk stays at 1 while the flow learns).
    - Squared W_0 entries below FLOAT64_TINY: the initial overlaps z_j(0)
      underflow in float64, so the predicted escape times stop growing as
      sigma0 shrinks and the flow starts from a rounded state.
    """
    warnings = []
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    limit = lr_stability_limit(config.d, config.batch, lam)
    if with_sgd and config.lr > limit:
        scaled = config.lr * config.d / config.batch
        warnings.append(
            ConfigWarning(
                "lr",
                f"lr={config.lr:.4g} is above the estimated stability limit "
                f"lr < {limit:.3g} (lr * d / B = {scaled:.3g}); SGD may diverge",
            )
        )
    entry = config.sigma0 / math.sqrt(config.d)
    if with_sgd and config.dtype == "float32" and entry < FLOAT32_TINY:
        warnings.append(
            ConfigWarning(
                "sigma0",
                f"sigma0={config.sigma0:.3g} gives initial weights of about "
                f"{entry:.1e}, below what float32 represents; SGD starts at W = 0 "
                "and stays there. Choose dtype float64 or a larger sigma0",
            )
        )
    if entry * entry < FLOAT64_TINY:
        warnings.append(
            ConfigWarning(
                "sigma0",
                f"sigma0={config.sigma0:.3g} gives squared initial weights of about "
                f"1e{2 * math.log10(entry):.0f}, below float64's range; predicted escape "
                "times and the flow lose accuracy. Choose sigma0 above "
                f"{math.sqrt(FLOAT64_TINY * config.d):.1e}",
            )
        )
    return warnings
