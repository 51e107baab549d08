"""Validated configuration of one quadviz experiment.

Every field has one entry in ``FIELDS`` with its type, default, allowed range
and help text. The command line, the URL binding of the app and the sidebar
all parse through :func:`parse_field`, so a value is accepted or rejected with
the same message everywhere.

Units: time is ``t = lr * steps``, the time of the population gradient flow
``dM/dt = 4 (QM + MQ - 2 M^2)``; samples are ``batch * steps``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

NORMALIZATIONS = ("unit-norm", "leading-one")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
METHODS = ("auto", "full", "reduced")
# "auto" runs reduced-coordinate SGD once d is at least this many times r + m;
# below it the d-dimensional path costs about the same.
REDUCED_DIMENSION_FACTOR = 8

# Full online SGD keeps seeds x (batch x d + d x width) numbers in memory.
MAX_SGD_ELEMENTS = 200_000_000
# Characters of an invalid string value that an error message repeats.
MAX_SHOWN_CHARS = 40


class ConfigError(ValueError):
    """Invalid configuration value; names the field, the value and the range."""

    def __init__(self, field: str, value: Any, allowed: str):
        if isinstance(value, str) and len(value) > MAX_SHOWN_CHARS:
            # a hand-edited link may carry kilobytes of text
            value = value[:MAX_SHOWN_CHARS] + "..."
        self.field = field
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid {field}={value!r}: allowed {allowed}")


@dataclass(frozen=True)
class Field:
    """Type, default, range and help text of one configuration field."""

    name: str
    kind: type
    default: Any
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False
    help: str = ""

    def allowed(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        kind = "an integer" if self.kind is int else "a number"
        left = "(" if self.low_open else "["
        right = ")" if self.high_open else "]"
        text = f"{kind} in {left}{_fmt(self.low)}, {_fmt(self.high)}{right}"
        return text + (" or empty" if self.optional else "")


def _fmt(x: float | None) -> str:
    if x is None:
        return "inf"
    if float(x).is_integer() and abs(x) >= 1e6:
        return f"{x:.0e}".replace("e+0", "e").replace("e+", "e")
    return f"{x:g}"


FIELDS: dict[str, Field] = {
    f.name: f
    for f in (
        Field("d", int, 256, 2, 1e9, help="input dimension d"),
        Field(
            "beta",
            float,
            0.5,
            0.0,
            1.0,
            high_open=True,
            help="teacher rank exponent: r = max(1, round(d^beta))",
        ),
        Field(
            "r",
            int,
            None,
            1,
            4096,
            optional=True,
            help="teacher rank r; overrides beta when given",
        ),
        Field("alpha", float, 1.0, 0.0, 5.0, help="power-law exponent of lambda_j"),
        Field(
            "normalization",
            str,
            "unit-norm",
            choices=NORMALIZATIONS,
            help="unit-norm: sum lambda_j^2 = 1; leading-one: lambda_1 = 1",
        ),
        Field("width", int, 16, 1, 4096, help="student width m"),
        Field(
            "sigma0",
            float,
            0.1,
            0.0,
            10.0,
            low_open=True,
            help="initial scale: W_0 entries are N(0, sigma0^2 / d)",
        ),
        Field("noise", float, 0.0, 0.0, 10.0, help="label noise standard deviation"),
        Field(
            "lr",
            float,
            0.0025,
            0.0,
            10.0,
            low_open=True,
            help="SGD learning rate; time t = lr * steps",
        ),
        Field("batch", int, 32, 1, 65536, help="SGD batch size B"),
        Field("steps", int, 10000, 1, 1e8, help="number of SGD steps"),
        Field(
            "t_max",
            float,
            None,
            0.0,
            1e12,
            low_open=True,
            optional=True,
            help="horizon t = lr * steps; overrides steps when given",
        ),
        Field("points", int, 60, 2, 2000, help="number of log-spaced output times"),
        Field("seeds", int, 3, 1, 64, help="number of SGD runs computed together"),
        Field("seed", int, 0, 0, 2**31 - 1, help="random seed"),
        Field("device", str, "auto", choices=DEVICES, help="torch device"),
        Field("dtype", str, "float32", choices=DTYPES, help="SGD floating type"),
        Field(
            "method",
            str,
            "auto",
            choices=METHODS,
            help="SGD path: full d-dimensional, reduced (same law, cost "
            "independent of d), or auto (reduced when d >= 8 (r + width))",
        ),
    )
}


def parse_field(name: str, raw: Any) -> Any:
    """Convert ``raw`` (a string from a URL or a flag, or a number) to the
    field's type and check its range; raise :class:`ConfigError` if invalid."""
    spec = FIELDS[name]
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        if spec.optional:
            return None
        raise ConfigError(name, raw, spec.allowed())
    if spec.choices is not None:
        value = str(raw).strip()
        if value not in spec.choices:
            raise ConfigError(name, raw, spec.allowed())
        return value
    value = _to_number(spec, raw)
    _check_range(spec, value, raw)
    return value


def _to_number(spec: Field, raw: Any) -> int | float:
    if isinstance(raw, bool):
        raise ConfigError(spec.name, raw, spec.allowed())
    if isinstance(raw, str) and len(raw) > 40:
        raise ConfigError(spec.name, raw[:40] + "...", spec.allowed())
    try:
        x = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(spec.name, raw, spec.allowed()) from None
    if not math.isfinite(x):
        raise ConfigError(spec.name, raw, spec.allowed())
    if spec.kind is int:
        if not x.is_integer():
            raise ConfigError(spec.name, raw, spec.allowed())
        return int(x)
    return x


def _check_range(spec: Field, x: float, raw: Any) -> None:
    low_bad = spec.low is not None and (
        x < spec.low or (spec.low_open and x == spec.low)
    )
    high_bad = spec.high is not None and (
        x > spec.high or (spec.high_open and x == spec.high)
    )
    if low_bad or high_bad:
        raise ConfigError(spec.name, raw, spec.allowed())


@dataclass(frozen=True)
class Config:
    """One experiment: teacher, student, SGD and output grid.

    Build it with :meth:`Config.create`, which validates every field and the
    constraints between fields. ``r`` and ``t_max`` may be None, meaning
    "derived from beta" and "derived from steps".
    """

    d: int = FIELDS["d"].default
    beta: float = FIELDS["beta"].default
    r: int | None = None
    alpha: float = FIELDS["alpha"].default
    normalization: str = FIELDS["normalization"].default
    width: int = FIELDS["width"].default
    sigma0: float = FIELDS["sigma0"].default
    noise: float = FIELDS["noise"].default
    lr: float = FIELDS["lr"].default
    batch: int = FIELDS["batch"].default
    steps: int = FIELDS["steps"].default
    t_max: float | None = None
    points: int = FIELDS["points"].default
    seeds: int = FIELDS["seeds"].default
    seed: int = FIELDS["seed"].default
    device: str = FIELDS["device"].default
    dtype: str = FIELDS["dtype"].default
    method: str = FIELDS["method"].default

    @classmethod
    def create(cls, **values: Any) -> Config:
        """Parse and validate ``values`` (missing fields take their defaults)."""
        unknown = sorted(set(values) - set(FIELDS))
        if unknown:
            raise ConfigError(unknown[0], values[unknown[0]], "a known field")
        parsed = {k: parse_field(k, v) for k, v in values.items()}
        config = cls(**parsed)
        config.validate()
        return config

    def validate(self) -> None:
        """Check every field's range and the constraints between fields."""
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None or not FIELDS[f.name].optional:
                parse_field(f.name, value)
        if self.teacher_rank > self.d:
            raise ConfigError("r", self.teacher_rank, f"an integer in [1, d={self.d}]")
        if self.teacher_rank > FIELDS["r"].high:
            raise ConfigError(
                "beta", self.beta, f"a value giving r <= {FIELDS['r'].high:g}"
            )
        if self.width > self.d:
            raise ConfigError("width", self.width, f"an integer in [1, d={self.d}]")
        reduced_min_d = self.teacher_rank + self.width + min(self.batch, self.width)
        if self.method == "reduced" and self.d < reduced_min_d:
            raise ConfigError(
                "method", self.method, f"'full' or 'auto' when d < r + width + "
                f"min(batch, width) = {reduced_min_d}"
            )
        if self.num_steps > FIELDS["steps"].high:
            raise ConfigError(
                "t_max", self.t_max, f"at most lr * {FIELDS['steps'].high:.0e}"
            )

    @property
    def teacher_rank(self) -> int:
        """r, from the field or as max(1, round(d^beta))."""
        if self.r is not None:
            return self.r
        return max(1, round(self.d**self.beta))

    @property
    def num_steps(self) -> int:
        """SGD steps: ``steps``, or ceil(t_max / lr) when t_max is given."""
        if self.t_max is None:
            return self.steps
        # t_max / lr overflows to inf for a subnormal lr; the cap keeps it an
        # integer that validate() rejects
        return max(1, math.ceil(min(self.t_max / self.lr, 1e300) - 1e-9))

    @property
    def horizon(self) -> float:
        """Final time t = lr * steps (or t_max when given)."""
        return self.t_max if self.t_max is not None else self.lr * self.steps

    @property
    def sgd_method(self) -> str:
        """"full" or "reduced", resolving "auto" from d, r and width."""
        if self.method != "auto":
            return self.method
        r, m = self.teacher_rank, self.width
        big = self.d >= REDUCED_DIMENSION_FACTOR * (r + m)
        return "reduced" if big and self.d >= r + m + min(self.batch, m) else "full"

    def check_sgd_memory(self) -> None:
        """Raise if online SGD would hold too many numbers at once."""
        dim = self.d if self.sgd_method == "full" else self.teacher_rank + self.width
        elements = self.seeds * (self.batch * dim + dim * self.width)
        if elements > MAX_SGD_ELEMENTS:
            raise ConfigError(
                "batch",
                self.batch,
                f"seeds * (batch * n + n * width) <= {MAX_SGD_ELEMENTS:.0e} with "
                f"n = {dim} (now {elements:.2e}); lower batch, d, width or seeds",
            )

    def to_dict(self) -> dict[str, Any]:
        """Return every field plus the resolved r, steps, horizon and SGD path."""
        out = asdict(self)
        out["r_resolved"] = self.teacher_rank
        out["steps_resolved"] = self.num_steps
        out["horizon"] = self.horizon
        out["method_resolved"] = self.sgd_method
        return out

    def replace(self, **changes: Any) -> Config:
        """Return a validated copy with ``changes`` applied."""
        config = replace(self, **{k: parse_field(k, v) for k, v in changes.items()})
        config.validate()
        return config


def config_from_mapping(raw: dict[str, Any]) -> tuple[Config, list[ConfigError]]:
    """Build a Config from untrusted strings, keeping every valid field.

    Each invalid value is replaced by its default and reported; unknown keys
    are ignored. Cross-field violations reset the fields involved to their
    defaults, one at a time, until the configuration is valid.
    """
    errors: list[ConfigError] = []
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in FIELDS:
            continue
        try:
            values[name] = parse_field(name, value)
        except ConfigError as err:
            errors.append(err)
    clamped: set[str] = set()
    while True:
        try:
            config = Config(**values)
            config.validate()
            return config, errors
        except ConfigError as err:
            errors.append(err)
            if err.field in values:
                values.pop(err.field)
            elif err.field in ("width", "r") and err.field not in clamped:
                # the default itself exceeds the given d: clamp it to d, once.
                # The input did not set this value, so the error is dropped.
                clamped.add(err.field)
                errors.pop()
                values[err.field] = values.get("d", FIELDS["d"].default)
            else:
                culprit = _first_set(values)
                if culprit is None:
                    return Config(), errors
                # report the value that is reset, not the default it clashed with
                errors[-1] = ConfigError(
                    culprit,
                    values.pop(culprit),
                    f"{err.allowed} (with {err.field}={err.value})",
                )


def _first_set(values: dict[str, Any]) -> str | None:
    for name in ("r", "beta", "width", "t_max", "d"):
        if name in values:
            return name
    return None
