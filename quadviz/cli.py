"""Command line: ``python -m quadviz {simulate,flow} [flags]``, JSON output.

simulate runs online SGD and the exact population flow from the same W_0;
flow runs the flow alone (dimension-free, so d may be 10^9). Time is
t = lr * steps and risk is ||M - Q||_F^2 without label noise.
sweep varies one parameter and writes a CSV or JSON table
(see quadviz.sweep_cli).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from typing import Any

import numpy as np

from quadviz import budget, sweep_cli
from quadviz.config import FIELDS, Config, ConfigError
from quadviz.experiment import Experiment, flow_only, simulate
from quadviz.export import load_config

log = logging.getLogger("quadviz")

# Flags shared by both commands, in the order of the help text. The flag is
# the field name with "_" written as "-".
COMMON_FIELDS = (
    "d", "beta", "r", "alpha", "normalization", "width", "sigma0", "noise",
    "lr", "seed", "points",
)
SIMULATE_FIELDS = COMMON_FIELDS + (
    "batch", "steps", "t_max", "seeds", "device", "dtype", "method",
)
FLOW_FIELDS = COMMON_FIELDS + ("steps", "t_max")


class UsageError(Exception):
    """Invalid command-line input; printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m quadviz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sim = sub.add_parser("simulate", help="online SGD and the flow from one W_0")
    flow = sub.add_parser("flow", help="the exact population flow alone")
    for cmd, names in ((sim, SIMULATE_FIELDS), (flow, FLOW_FIELDS)):
        for name in names:
            spec = FIELDS[name]
            flag = "--" + name.replace("_", "-")
            help_text = f"{spec.help} ({spec.allowed()}; default {spec.default})"
            cmd.add_argument(flag, dest=name, default=None, help=help_text)
        cmd.add_argument(
            "--config",
            metavar="PATH",
            help="JSON object of configuration fields, as the app exports it; "
            "flags given explicitly override its values",
        )
        cmd.add_argument("--init", metavar="PATH", help="W_0 as a .npy array (d, width)")
        cmd.add_argument("--out", metavar="PATH", help="output file (default stdout)")
        cmd.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sweep_cli.add_parser(sub)
    return parser


def config_from_args(args: argparse.Namespace, names: tuple[str, ...]) -> Config:
    """Validated Config from --config (if given) with explicit flags on top."""
    values = {}
    if getattr(args, "config", None):
        try:
            values = load_config(args.config)
        except OSError as err:
            raise UsageError(f"failed to read --config {args.config}: {err}") from None
    flags = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return Config.create(**{**values, **flags})


def load_init(path: str, config: Config) -> np.ndarray:
    """W_0 from a .npy file; raise UsageError unless its shape is (d, width)."""
    try:
        W0 = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"failed to read --init {path}: {err}") from None
    expected = (config.d, config.width)
    if W0.shape != expected or not np.issubdtype(W0.dtype, np.floating):
        raise UsageError(
            f"invalid --init {path}: shape {W0.shape}, dtype {W0.dtype}; "
            f"expected a float array of shape {expected}"
        )
    if not np.all(np.isfinite(W0)):
        raise UsageError(f"invalid --init {path}: contains non-finite values")
    return W0.astype(np.float64)


def _clean(x: Any) -> Any:
    """Nested lists of floats with NaN and infinities replaced by None."""
    if isinstance(x, np.ndarray):
        x = x.tolist()
    if isinstance(x, list):
        return [_clean(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def experiment_json(exp: Experiment) -> dict[str, Any]:
    """Plain JSON-ready dict of an experiment; infinities and NaN become null."""
    out: dict[str, Any] = {
        "config": exp.config.to_dict(),
        "device": exp.device,
        "lambda": exp.lam.tolist(),
        "time": _clean(exp.flow.time),
        "risk_flow": _clean(exp.flow.risk[0]),
        "recovery_flow": _clean(exp.flow.recovery[0]),
        "risk_additive": _clean(exp.additive.risk[0]),
        "escape_time_predicted": _clean(exp.escape_predicted),
        "status": "ok",
        "message": "",
    }
    if exp.sgd is not None:
        sgd = exp.sgd
        out.update(
            time_sgd=sgd.time.tolist(),
            step=sgd.step.tolist(),
            samples=sgd.samples.tolist(),
            risk_sgd=_clean(sgd.risk),
            recovery_sgd=_clean(sgd.recovery),
            status=sgd.status,
            message=sgd.message,
        )
    return out


def run(argv: list[str] | None = None) -> tuple[dict[str, Any], str | None]:
    """Parse ``argv``, run the command; return the JSON-ready result and --out."""
    args = build_parser().parse_args(argv)
    # warnings (divergence, settings that may mislead) always reach stderr
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    names = SIMULATE_FIELDS if args.command == "simulate" else FLOW_FIELDS
    config = config_from_args(args, names)
    init = load_init(args.init, config) if args.init else None
    log.info("start %s with %s", args.command, config)
    with_sgd = args.command == "simulate"
    log.info("%s", budget.estimate(config, with_sgd).describe())
    for warning in budget.config_warnings(config, with_sgd):
        log.warning("warning: %s", warning.message)
    if args.command == "flow":
        exp = flow_only(config, init=init)
    else:
        exp = simulate(config, init=init)
    log.info("done: status %s", exp.sgd.status if exp.sgd else "ok")
    return experiment_json(exp), args.out


def main(argv: list[str] | None = None) -> int:
    if sweep_cli.is_sweep(argv):
        return sweep_cli.main(argv, build_parser())
    try:
        result, out_path = run(argv)
    except (UsageError, ConfigError, ValueError) as err:
        print(f"python -m quadviz: error: {err}", file=sys.stderr)
        return 2
    text = json.dumps(result, allow_nan=False, default=_json_default)
    if out_path:
        try:
            with open(out_path, "w", encoding="utf-8") as fh:
                fh.write(text + "\n")
        except OSError as err:
            print(f"python -m quadviz: error: failed to write --out: {err}",
                  file=sys.stderr)
            return 2
    else:
        sys.stdout.write(text + "\n")
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
