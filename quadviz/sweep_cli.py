"""Command ``python -m quadviz sweep``: sweep one parameter, write a table.

Example::

    python -m quadviz sweep --param alpha --values 0.75,1,1.5 \\
        --d 1000000 --r 128 --width 128 --out table.csv

Every run solves the exact population flow; ``--sgd`` adds online SGD where
its estimated time fits ``--sgd-budget``. The table has one row per run,
method and output time, with the columns of ``quadviz.sweeps.ROW_FIELDS``.
``--out`` ending in .csv writes CSV and any other name JSON; without
``--out`` the JSON goes to stdout. ``--fits PATH`` writes the fitted and
predicted exponents of every run as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from quadviz import scaling, sweeps
from quadviz.config import FIELDS, Config, ConfigError, parse_field

log = logging.getLogger("quadviz")

# Config fields that the sweep command takes as flags; the swept one is
# overridden by --values.
SWEEP_FIELDS = (
    "d", "beta", "r", "alpha", "normalization", "width", "sigma0", "noise",
    "lr", "batch", "seed", "points", "t_max", "seeds", "device", "dtype",
    "method",
)


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand with its flags to ``subparsers``."""
    cmd = subparsers.add_parser(
        "sweep", help="sweep one parameter; write a table of risk against time"
    )
    cmd.add_argument(
        "--param", required=True, choices=sweeps.SWEEP_PARAMETERS,
        help="the configuration field to sweep",
    )
    cmd.add_argument(
        "--values", required=True,
        help="comma-separated values of --param, for example 0.75,1,1.5",
    )

    for name in SWEEP_FIELDS:
        spec = FIELDS[name]
        flag = "--" + name.replace("_", "-")
        help_text = f"{spec.help} ({spec.allowed()}; default {spec.default})"
        if name == "t_max":
            help_text += "; without it each run ends at 6 times its last escape"
        cmd.add_argument(flag, dest=name, default=None, help=help_text)

    cmd.add_argument("--sgd", action="store_true",
                     help="add online SGD where its estimated time fits the budget")
    cmd.add_argument("--sgd-budget", type=float, default=sweeps.SGD_BUDGET_SECONDS,
                     help="estimated seconds allowed for all SGD runs together "
                     f"(default {sweeps.SGD_BUDGET_SECONDS:g})")
    cmd.add_argument("--keep-lr-scale", action="store_true",
                     help="keep lr d / B fixed, so lr follows d and B")
    cmd.add_argument("--batch-equals-d", action="store_true",
                     help="use batch size B = d in every run")
    cmd.add_argument("--out", metavar="PATH",
                     help="table file: .csv for CSV, otherwise JSON (default stdout)")
    cmd.add_argument("--fits", metavar="PATH",
                     help="also write the fitted exponents as JSON to PATH")
    cmd.add_argument("-v", "--verbose", action="store_true", help="log progress")
    return cmd


def is_sweep(argv: list[str] | None) -> bool:
    """Return True when the first command-line argument is "sweep"."""
    args = sys.argv[1:] if argv is None else argv
    return args[:1] == ["sweep"]


def parse_values(param: str, text: str) -> tuple:
    """Parse comma-separated values of ``param``; raise ConfigError if invalid."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError("values", text, "one or more comma-separated values")
    return tuple(parse_field(param, item) for item in items)


def spec_from_args(args: argparse.Namespace) -> sweeps.SweepSpec:
    """SweepSpec from parsed flags; --t-max becomes the common horizon."""
    values = {
        name: getattr(args, name)
        for name in SWEEP_FIELDS
        if getattr(args, name) is not None and name != "t_max"
    }
    base = Config.create(**values)
    horizon = None
    if args.t_max is not None:
        horizon = parse_field("t_max", args.t_max)
    return sweeps.SweepSpec(
        base,
        args.param,
        parse_values(args.param, args.values),
        horizon=horizon,
        sgd=args.sgd,
        keep_lr_scale=args.keep_lr_scale,
        batch_equals_d=args.batch_equals_d,
        sgd_budget=args.sgd_budget,
    )


def table_text(rows: list[dict], path: str | None) -> str:
    """CSV text for a path ending in .csv, JSON text otherwise."""
    if path is not None and path.lower().endswith(".csv"):
        return sweeps.rows_to_csv(rows)
    return sweeps.rows_to_json(rows) + "\n"


def _write(path: str, text: str, flag: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as err:
        raise OSError(f"failed to write {flag} {path}: {err}") from None


def main(argv: list[str] | None, parser: argparse.ArgumentParser) -> int:
    """Run the sweep command with ``parser`` (the quadviz parser); exit code."""
    from quadviz.cli import UsageError

    try:
        args = parser.parse_args(argv)
        if args.verbose:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
        spec = spec_from_args(args)
        log.info("sweep over %s, estimated %.3g s", spec.param,
                 spec.estimated_seconds())
        sweep = sweeps.run_sweep(spec)
        text = table_text(sweep.rows(), args.out)
        if args.out:
            _write(args.out, text, "--out")
        else:
            sys.stdout.write(text)
        if args.fits:
            fits = scaling.exponent_rows(sweep)
            _write(args.fits, json.dumps(fits, allow_nan=False) + "\n", "--fits")
    except (UsageError, ConfigError, ValueError, OSError) as err:
        sys.stderr.write(f"python -m quadviz: error: {err}\n")
        return 2
    return 0
