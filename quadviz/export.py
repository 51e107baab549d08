"""Export of figures and configurations: CSV, JSON and standalone HTML.

Figure data is read back from the Plotly figure itself, so every builder's
output exports the same way: one row per point (x, y) or heatmap cell
(x, y, z), tagged with the trace name. Legend-only stubs and empty traces
are skipped. The configuration JSON contains exactly the Config fields, which
``python -m quadviz simulate --config PATH`` reads back.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from quadviz.config import FIELDS, Config, ConfigError

CSV_COLUMNS = ("figure", "trace", "x", "y", "z")
# Keys of Config.to_dict() that are derived from the fields. A configuration
# file may contain them (the command line's JSON output does); they are
# ignored on reading because the fields determine them.
DERIVED_KEYS = ("r_resolved", "steps_resolved", "horizon", "method_resolved")


def _values(array: Any) -> list:
    """Plain Python list of a Plotly data array (None, list, tuple or ndarray)."""
    if array is None:
        return []
    return np.asarray(array, dtype=object).tolist()


def _number(value: Any) -> Any:
    """Float or int as is, NaN and infinities as None, anything else as text."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return str(value)


def _title(figure: go.Figure) -> str:
    text = figure.layout.title.text
    return text or ""


def trace_table(trace: Any) -> dict[str, list]:
    """Columns x, y and z of one trace; heatmaps are flattened cell by cell.

    A heatmap's z has one row per y and one column per x; the result has one
    entry per cell. Other traces give x and y (z empty).
    """
    if trace.type == "heatmap":
        z = np.asarray(trace.z, dtype=np.float64)
        ny, nx = z.shape
        x = _values(trace.x) or list(range(nx))
        y = _values(trace.y) or list(range(ny))
        xs = [x[j] for i in range(ny) for j in range(nx)]
        ys = [y[i] for i in range(ny) for j in range(nx)]
        return {"x": xs, "y": ys, "z": z.ravel().tolist()}
    x, y = _values(getattr(trace, "x", None)), _values(getattr(trace, "y", None))
    if not x and y:
        x = list(range(len(y)))
    return {"x": x, "y": y, "z": []}


def _data_traces(figure: go.Figure) -> list[tuple[str, str, dict[str, list]]]:
    """(name, type, columns) of every trace with data; legend-only stubs are
    skipped."""
    out = []
    for index, trace in enumerate(figure.data):
        columns = trace_table(trace)
        points = [v for v in columns["y"] if v is not None]
        if not points:
            continue
        name = getattr(trace, "name", None) or f"trace {index + 1}"
        out.append((name, trace.type, columns))
    return out


def figure_csv(figure: go.Figure) -> str:
    """Data of every trace as CSV with columns figure, trace, x, y, z.

    NaN and infinities are written as empty cells.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    title = _title(figure)
    for name, _, columns in _data_traces(figure):
        z = columns["z"] or [None] * len(columns["x"])
        for x, y, zi in zip(columns["x"], columns["y"], z):
            row = [_number(x), _number(y), _number(zi)]
            writer.writerow([title, name] + ["" if v is None else v for v in row])
    return buffer.getvalue()


def figure_json(figure: go.Figure) -> str:
    """Title, axis titles and the data of every trace as a JSON document.

    Each trace is {"name", "type", "x", "y"} plus "z" for heatmaps; NaN and
    infinities are written as null.
    """
    traces = []
    for name, kind, columns in _data_traces(figure):
        entry = {
            "name": name,
            "type": kind,
            "x": [_number(v) for v in columns["x"]],
            "y": [_number(v) for v in columns["y"]],
        }
        if columns["z"]:
            entry["z"] = [_number(v) for v in columns["z"]]
        traces.append(entry)
    layout = figure.layout
    document = {
        "title": _title(figure),
        "x_title": layout.xaxis.title.text or "",
        "y_title": layout.yaxis.title.text or "",
        "traces": traces,
    }
    return json.dumps(document, allow_nan=False, ensure_ascii=False)


def figure_html(figure: go.Figure) -> str:
    """Standalone HTML page of the figure, with plotly.js inlined (about 4 MB),
    so that it opens without a network connection. An animation waits for its
    play button instead of starting on load."""
    return figure.to_html(include_plotlyjs=True, full_html=True, auto_play=False)


def config_json(config: Config) -> str:
    """Write every Config field as a JSON object, in the order of FIELDS.

    Unset optional fields (r, t_max) are written as null. The result is what
    :func:`load_config` and ``python -m quadviz ... --config PATH`` read.
    """
    values = {name: getattr(config, name) for name in FIELDS}
    return json.dumps(values, indent=2) + "\n"


def config_values(document: Any, source: str = "configuration") -> dict[str, Any]:
    """Config fields of a parsed JSON document, unparsed.

    Accepts a plain object of fields, or the command line's output, whose
    "config" object contains them. Derived keys (resolved r, steps, horizon and
    method) are dropped. Raise ConfigError on an unknown key or a non-object.
    """
    if isinstance(document, dict) and isinstance(document.get("config"), dict):
        document = document["config"]
    if not isinstance(document, dict):
        raise ConfigError("config", source, "a JSON object of configuration fields")
    values = {}
    for key, value in document.items():
        if key in DERIVED_KEYS:
            continue
        if key not in FIELDS:
            raise ConfigError(key, value, f"a known field ({', '.join(FIELDS)})")
        values[key] = value
    return values


def load_config(path: str | Path) -> dict[str, Any]:
    """Config fields from a JSON file written by :func:`config_json`.

    Values are returned unparsed, so that the caller can merge overrides
    before validating with ``Config.create``. Raise OSError when the file
    cannot be read and ValueError when it is not valid JSON.
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"invalid JSON in {path}: {err}") from None
    return config_values(document, str(path))
