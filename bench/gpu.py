"""SGD throughput at the paper's sizes on a GPU: quadviz against a plain loop.

    python -m bench.gpu [--d 3200] [--widths 256,800,2400] [--steps 50]

Online SGD with batch size B = d (Ben Arous, Erdogdu, Vural and Wu, arXiv
2508.03688 use d = 3200, r = 2400, B = d). For each width m it prints
samples per second and achieved TFLOP/s, counting 4 B d m multiply-adds per
step (two B x d x m matrix products, 2 flops each), for quadviz's full path
and for a plain torch loop (autograd through the loss, torch.optim.SGD).
Runs on CUDA when available, else on the CPU (use small --d there).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from bench.__main__ import plain_torch_loop
from quadviz.config import Config
from quadviz.sgd import OnlineSGD, initial_weights
from quadviz.teacher import spectrum


def timed(fn, device: torch.device, repeats: int = 3) -> float:
    """Smallest wall time of ``repeats`` calls after a warm-up call."""
    best = float("inf")
    for i in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i > 0:
            best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__)
    parser.add_argument("--d", type=int, default=3200)
    parser.add_argument("--r", type=int, default=2400)
    parser.add_argument("--widths", default="256,800,1600,2400")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"device {name}, torch {torch.__version__}, d = B = {args.d}, "
          f"r = {args.r}, {args.steps} steps, {args.dtype}")
    for m in (int(w) for w in args.widths.split(",")):
        config = Config.create(d=args.d, r=min(args.r, args.d), width=m,
                               batch=args.d, seeds=1, lr=0.01, method="full",
                               dtype=args.dtype, device=device.type, points=4,
                               steps=args.steps)
        lam = spectrum(config.teacher_rank, config.alpha)
        runner = OnlineSGD(config, lam, initial_weights(config))

        def run_quadviz():
            with torch.no_grad():
                runner.step(args.steps)

        t_q = timed(run_quadviz, device)
        t_p = timed(lambda: plain_torch_loop(config, args.steps, device), device)
        flops = 4.0 * config.batch * config.d * m * args.steps
        print(f"m = {m}: quadviz {config.batch * args.steps / t_q:.3g} samples/s, "
              f"{flops / t_q / 1e12:.3g} TFLOP/s; plain torch "
              f"{config.batch * args.steps / t_p:.3g} samples/s, "
              f"{flops / t_p / 1e12:.3g} TFLOP/s; ratio {t_p / t_q:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
