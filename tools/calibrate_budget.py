"""Fit the cost-model constants of quadviz.budget on this machine.

    python -m tools.calibrate_budget           # about a minute on 2 cores
    python -m tools.calibrate_budget --check   # compare estimates with runs

Times a grid of small SGD runs (both paths) and flow runs with one torch
thread and one BLAS thread, as the app runs them, and fits the constants by
non-negative least squares on relative error. Prints the constants as Python
lines to paste into quadviz/budget.py, and the ratio of measured to
estimated seconds for each run. The estimates are budget.LOAD_FACTOR times
the fitted cost, so right after a fit on a quiet machine the ratios are near
1 / LOAD_FACTOR. A busy machine gives larger constants.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from scipy.optimize import nnls
from threadpoolctl import threadpool_limits

from quadviz import budget, sgd_kernel
from quadviz.config import Config
from quadviz.experiment import flow_only
from quadviz.reduced_sgd import ReducedSGD
from quadviz.sgd import OnlineSGD, initial_weights
from quadviz.teacher import spectrum

SGD_CASES = [
    {"d": 8, "r": 2, "width": 1, "batch": 1, "seeds": 1, "steps": 200000},
    {"d": 8, "r": 2, "width": 1, "batch": 1, "seeds": 8, "steps": 50000},
    {"d": 64, "r": 4, "width": 4, "batch": 1, "seeds": 1, "steps": 3000},
    {"d": 64, "r": 4, "width": 4, "batch": 32, "seeds": 3, "steps": 3000},
    {"d": 256, "r": 16, "width": 16, "batch": 32, "seeds": 3, "steps": 2000},
    {"d": 1024, "r": 4, "width": 4, "batch": 64, "seeds": 3, "steps": 300},
    {"d": 1024, "r": 4, "width": 64, "batch": 64, "seeds": 3, "steps": 300},
    {"d": 2048, "r": 8, "width": 8, "batch": 256, "seeds": 4, "steps": 40},
    {"d": 512, "r": 32, "width": 128, "batch": 512, "seeds": 2, "steps": 40},
    {"d": 4096, "r": 16, "width": 16, "batch": 256, "seeds": 4, "steps": 100},
    {"d": 4096, "r": 64, "width": 64, "batch": 64, "seeds": 2, "steps": 300},
    {
        "d": 100000,
        "r": 16,
        "width": 128,
        "batch": 128,
        "seeds": 2,
        "steps": 10,
        "points": 5,
    },
]
FLOW_CASES = [
    {"d": 256, "points": 60},
    {"d": 4096, "r": 64, "width": 64, "points": 300},
    {"d": 4096, "r": 256, "width": 128, "points": 60},
    {"d": 4096, "r": 512, "width": 256, "points": 20},
    {"d": 4096, "r": 1024, "width": 16, "points": 40},
    {"d": 4096, "r": 64, "width": 8, "lr": 0.01, "t_max": 1e5, "points": 60},
]


def _time_sgd(config: Config) -> float:
    lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
    if config.sgd_method == "full":
        runner = OnlineSGD(config, lam, initial_weights(config))
    else:
        runner = ReducedSGD(config, lam)
    start = time.perf_counter()
    runner.run()
    return time.perf_counter() - start


def _time_flow(config: Config) -> float:
    start = time.perf_counter()
    flow_only(config)
    return time.perf_counter() - start


def _compiled_full(config: Config) -> bool:
    return config.sgd_method == "full" and sgd_kernel.uses_loop(
        config.batch, config.d, config.width)


def _sgd_features(config: Config) -> list[float]:
    numbers, flops = budget._sgd_step_cost(config)
    steps, points = config.num_steps, budget._output_points(config)
    seed_steps = steps * config.seeds
    full = config.sgd_method == "full"
    return [
        steps * numbers,
        steps * flops + points * budget._measure_flops(config),
        seed_steps if _compiled_full(config) else 0.0,
        0.0 if full else seed_steps,
        points,
    ]


def _fitted_part(config: Config, seconds: float) -> float:
    """Seconds less the measured TorchScript step cost, which is not fitted."""
    if config.sgd_method == "full" and not _compiled_full(config):
        return seconds - config.num_steps * budget.SECONDS_PER_SCRIPTED_STEP
    return seconds


def _flow_features(config: Config) -> list[float]:
    r, m = config.teacher_rank, config.width
    pieces = budget.flow_pieces(config)
    piece_flops = 2.0 * (r + 2 * m) * m * m
    output_flops = 2.0 * r * r * m + 2.0 * r * m * m + 12.0 * m**3
    return [pieces * piece_flops + (config.points + 1) * output_flops, pieces]


def _fit(rows: list[list[float]], seconds: list[float]) -> np.ndarray:
    """Non-negative constants minimising the relative error of each run."""
    A = np.asarray(rows) / np.asarray(seconds)[:, None]
    coef, _ = nnls(A, np.ones(len(seconds)))
    return coef


def _configs(cases: list[dict]) -> list[Config]:
    out = []
    for case in cases:
        for method in ("full", "reduced"):
            try:
                out.append(Config.create(method=method, **case))
            except ValueError:
                continue
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="only compare estimates with runs"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    sgd_configs = _configs(SGD_CASES)
    flow_configs = [Config.create(**case) for case in FLOW_CASES]
    with threadpool_limits(limits=1, user_api="blas"):
        # warm up TorchScript and the allocator before timing
        _time_sgd(sgd_configs[0])
        _time_sgd(sgd_configs[1])
        sgd_times = [_time_sgd(c) for c in sgd_configs]
        flow_times = [_time_flow(c) for c in flow_configs]
    if not args.check:
        sgd = _fit([_sgd_features(c) for c in sgd_configs],
                   [_fitted_part(c, t) for c, t in zip(sgd_configs, sgd_times)])
        flow = _fit([_flow_features(c) for c in flow_configs], flow_times)
        names = (
            "SECONDS_PER_NUMBER",
            "SECONDS_PER_SGD_FLOP",
            "SECONDS_PER_FULL_STEP",
            "SECONDS_PER_REDUCED_STEP",
            "SECONDS_PER_MEASURE",
        )
        for name, value in zip(names, sgd):
            print(f"{name} = {value:.2g}")
        print(f"SECONDS_PER_FLOW_FLOP = {flow[0]:.2g}")
        print(f"SECONDS_PER_FLOW_PIECE = {flow[1]:.2g}")
    print("\nmeasured / estimated with the constants now in quadviz/budget.py:")
    for config, seconds in zip(sgd_configs, sgd_times):
        ratio = seconds / budget.sgd_seconds(config)
        print(
            f"  SGD  {config.sgd_method:7s} d={config.d} r={config.teacher_rank} "
            f"m={config.width} B={config.batch} S={config.seeds} "
            f"steps={config.num_steps}: {seconds:.3f} s, ratio {ratio:.2f}"
        )
    for config, seconds in zip(flow_configs, flow_times):
        ratio = seconds / budget.flow_seconds(config)
        print(
            f"  flow r={config.teacher_rank} m={config.width} "
            f"points={config.points} horizon={config.horizon:g}: "
            f"{seconds:.3f} s, ratio {ratio:.2f}"
        )


if __name__ == "__main__":
    main()
