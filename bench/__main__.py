"""Benchmark quadviz's engine paths and print ratios measured in one run.

    python -m bench            # small default, about two minutes on 2 cores
    python -m bench --full     # longer runs and paper-sized cases
    python -m bench --device cuda

Every number is a ratio of two timings taken in the same process, so the
result does not depend on how fast the machine happens to be:

- full SGD against the machine bound (drawing B x d Gaussians the fastest
  way this machine has, plus the two B x d x m matrix products of one step),
  against the same bound with torch.randn's draw, and against a plain torch loop
  (autograd through the loss, torch.optim.SGD, the same exact risk on the
  same log-spaced grid);
- 8 seeds against 1 seed, and the same ratio of their machine bounds;
- reduced-coordinate SGD (numba loop, and the torch loop used on CUDA or
  without numba) against full SGD, and at d = 10^6 against d = 4096;
- the exact flow against scipy's solve_ivp (RK45, rtol 1e-8) on the same
  reduced system, with their largest relative difference.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np
import torch
from scipy.integrate import solve_ivp

from quadviz.config import Config
from quadviz.reduced_sgd import ReducedSGD
from quadviz.riccati import RiccatiFlow, bartlett_state
from quadviz.sgd import (
    OnlineSGD,
    SeedStreams,
    initial_weights,
    log_steps,
    population_risk,
    torch_threads_for,
)
from quadviz.teacher import spectrum


def best_time(fn, repeats: int = 5) -> float:
    """Smallest wall time of ``repeats`` calls, after one warm-up call."""
    return best_times([fn], repeats)[0]


def best_times(fns, repeats: int = 7) -> list[float]:
    """Smallest wall time of each function over ``repeats`` rounds.

    One round calls every function once, in order, so slow phases of a shared
    machine (other processes, clock changes) hit all of them alike and
    cancel in their ratios. One warm-up call per function comes first.
    """
    for fn in fns:
        fn()
    best = [math.inf] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def sgd_config(B: int, d: int, m: int, seeds: int = 1, **extra) -> Config:
    r = extra.pop("r", min(m, 16))
    return Config.create(d=d, r=r, width=m, batch=B, seeds=seeds, lr=0.05 * B / d,
                         **extra)


def machine_bound(config: Config, steps: int, device: torch.device, draw: str = "fastest"):
    """Build a run of the Gaussian draws and the two matrix products alone.

    ``draw="fastest"`` draws the Gaussians the fastest way this machine has:
    quadviz's counter-based generator split over the draw threads on the
    CPU, torch's generator on CUDA. ``draw="torch"`` always uses torch.randn,
    the draw of the plain loop.
    """
    S, B, d, m = config.seeds, config.batch, config.d, config.width
    dtype = getattr(torch, config.dtype)
    gen = torch.Generator(device=device).manual_seed(0)
    streams = SeedStreams(0, S, device)
    W = torch.randn(S, d, m, device=device, dtype=dtype) / math.sqrt(d)

    def run():
        for _ in range(steps):
            if draw == "torch":
                X = torch.randn(S, B, d, generator=gen, device=device, dtype=dtype)
            else:
                X = streams.normal((B, d), dtype)
            Z = torch.bmm(X, W)
            torch.bmm(X.transpose(1, 2), Z)

    return run


def quadviz_sgd(config: Config, steps: int):
    """Build a run of quadviz's full-path SGD, measured on a log-spaced grid."""
    lam = spectrum(config.teacher_rank, config.alpha)
    runner = OnlineSGD(config, lam, initial_weights(config))
    grid = log_steps(steps, config.points)[1:]

    work = config.seeds * config.batch * config.d * config.width

    def run():
        done = 0
        with torch.no_grad(), torch_threads_for(work):
            for target in grid:
                runner.step(int(target - done))
                done = int(target)
                runner.measure()

    return run


def plain_torch_loop(config: Config, steps: int, device: torch.device):
    """Build the textbook loop: autograd through the loss and torch.optim.SGD."""
    B, d, m, r = config.batch, config.d, config.width, config.teacher_rank
    dtype = getattr(torch, config.dtype)
    lam = torch.as_tensor(spectrum(r, config.alpha), device=device, dtype=dtype)
    lam64 = lam.double()
    W = torch.nn.Parameter(torch.randn(d, m, device=device, dtype=dtype) * 0.1
                           / math.sqrt(d))
    opt = torch.optim.SGD([W], lr=config.lr)
    grid = set(log_steps(steps, config.points)[1:].tolist())

    def run():
        for step in range(steps + 1):
            if step in grid:
                with torch.no_grad():
                    population_risk(W.detach()[None], lam64)
            if step == steps:
                break
            X = torch.randn(B, d, device=device, dtype=dtype)
            y = (X[:, :r] ** 2 - 1.0) @ lam
            f = ((X @ W) ** 2).sum(dim=1) - (W * W).sum()
            loss = 0.5 * ((f - y) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def reduced_sgd(config: Config, steps: int, use_kernel: bool = True):
    lam = spectrum(config.teacher_rank, config.alpha)
    runner = ReducedSGD(config, lam)
    runner.use_kernel = use_kernel and runner.use_kernel
    # the per-step work that ReducedSGD.run passes to torch_threads_for
    work = config.seeds * config.batch * (config.teacher_rank + config.width) * config.width

    def run():
        with torch.no_grad(), torch_threads_for(work):
            runner.step(steps)

    return run


def full_sgd_steps(config: Config, steps: int):
    lam = spectrum(config.teacher_rank, config.alpha)
    runner = OnlineSGD(config, lam, initial_weights(config))
    work = config.seeds * config.batch * config.d * config.width

    def run():
        with torch.no_grad(), torch_threads_for(work):
            runner.step(steps)

    return run


def flow_against_ivp(r: int, m: int) -> dict:
    """Exact flow against RK45 on the reduced (r + m) x m system."""
    lam = spectrum(r, 1.5)
    state0 = bartlett_state(10**6, r, m, 0.1, np.random.default_rng(0))
    flow = RiccatiFlow(lam, state0)
    t_end = 1.0
    while flow.solve(np.array([t_end])).risk[0, 0] > 1e-4:
        t_end *= 2.0
    times = np.geomspace(t_end * 1e-3, t_end, 40)
    exact = None

    def run_exact():
        nonlocal exact
        exact = flow.solve(times).risk[0]

    t_exact = best_time(run_exact)
    lam_full = np.concatenate([lam, np.zeros(m)])
    n = r + m

    def rhs(_, w):
        W = w.reshape(n, m)
        M = W @ W.T
        M[np.diag_indices(n)] -= lam_full
        return (-4.0 * M @ W).ravel()

    ivp_risk = None

    def run_ivp():
        nonlocal ivp_risk
        sol = solve_ivp(rhs, (0, t_end), state0.ravel(), t_eval=times, rtol=1e-8,
                        atol=1e-12)
        ivp_risk = np.array([
            _risk(sol.y[:, i].reshape(n, m), lam) for i in range(len(times))
        ])

    t_ivp = best_time(run_ivp, repeats=1)
    gap = float(np.max(np.abs(ivp_risk - exact) / exact))
    return {"r": r, "m": m, "t_end": t_end, "exact_s": t_exact, "ivp_s": t_ivp,
            "speedup": t_ivp / t_exact, "max_rel_diff": gap}


def _risk(state: np.ndarray, lam: np.ndarray) -> float:
    from quadviz.riccati import state_risk

    return state_risk(state, lam)


def run_suite(full: bool, device_name: str) -> list[dict]:
    device = torch.device(
        "cuda" if device_name == "cuda" or (device_name == "auto"
                                            and torch.cuda.is_available()) else "cpu"
    )
    scale = 4 if full else 1
    rows = []
    for B, d, m, steps in ((256, 256, 64, 300), (1024, 1024, 256, 40),
                           (32, 512, 64, 1000), (1, 256, 16, 4000)):
        steps *= scale
        config = sgd_config(B, d, m, device=device.type, points=10)
        t_q, t_bound, t_torch_bound, t_plain, t_red = best_times([
            quadviz_sgd(config, steps),
            machine_bound(config, steps, device),
            machine_bound(config, steps, device, draw="torch"),
            plain_torch_loop(config, steps, device),
            reduced_sgd(config.replace(method="reduced"), steps),
        ])
        rows.append({
            "case": f"full SGD B={B} d={d} m={m}",
            "samples_per_s": B * steps / t_q,
            "vs_machine_bound": t_bound / t_q,
            "vs_torch_randn_bound": t_torch_bound / t_q,
            "vs_plain_torch": t_plain / t_q,
            "reduced_path_vs_plain_torch": t_plain / t_red,
        })
    one = sgd_config(32, 512, 64, seeds=1, device=device.type)
    eight = sgd_config(32, 512, 64, seeds=8, device=device.type)
    steps = 300 * scale
    t_eight, t_one, t_eight_bound, t_one_bound = best_times([
        full_sgd_steps(eight, steps),
        full_sgd_steps(one, steps),
        machine_bound(eight, steps, device),
        machine_bound(one, steps, device),
    ])
    rows.append({
        "case": "8 seeds against 1 seed, B=32 d=512 m=64",
        "cost_ratio": t_eight / t_one,
        "machine_bound_cost_ratio": t_eight_bound / t_one_bound,
    })
    red = sgd_config(32, 4096, 32, r=32, device=device.type)
    steps = 600 * scale
    # The reduced path also runs 10 times the steps, about as long as the
    # full path's run, so that its samples per second are not dominated by
    # the first chunk of a 10 ms run (cold caches, the first draw).
    long_steps = 10 * steps
    t_full, t_red, t_red_long, t_red_huge, t_red_torch = best_times([
        full_sgd_steps(red.replace(method="full"), steps),
        reduced_sgd(red, steps),
        reduced_sgd(red, long_steps),
        # the same lr d / B: at the d = 4096 step size the d = 10^6 run
        # diverges, and the numba loop skips the steps of a diverged seed
        reduced_sgd(red.replace(d=10**6, lr=red.lr * 4096 / 10**6), long_steps),
        reduced_sgd(red, steps, use_kernel=False),
    ])
    rows.append({
        "case": "reduced SGD, B=32 r=m=32 (samples per second against full SGD at d=4096)",
        "vs_full_at_d4096": (t_full / steps) / (t_red_long / long_steps),
        "vs_full_same_steps": t_full / t_red,
        "torch_loop_vs_full_at_d4096": t_full / t_red_torch,
        "d1e6_vs_d4096_time": t_red_huge / t_red_long,
    })
    for r_m in ((64,) if not full else (64, 512)):
        rows.append({"case": f"exact flow r=m={r_m}", **flow_against_ivp(r_m, r_m)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--full", action="store_true", help="longer, larger runs")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"device {args.device}")
    rows = run_suite(args.full, args.device)
    for row in rows:
        values = ", ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
            for k, v in row.items() if k != "case"
        )
        print(f"{row['case']}: {values}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
