"""Signal recovery: per-direction overlaps, escape times and the table."""

import numpy as np
import streamlit as st

from quadviz.app import cache, controls, plotly_chart
from quadviz.figures import (
    escape_figure,
    escape_times,
    recovery_figure,
    recovery_heatmap,
)

config = controls.current_config()

st.title("Signal recovery")
st.markdown(
    "Recovery ρⱼ = (Θᵀ M Θ)ⱼⱼ / λⱼ of each teacher direction rises from about "
    "σ₀² m / (d λⱼ) to 1. A direction escapes its plateau when ρⱼ passes 1/2. "
    "Without interactions, ρⱼ is logistic and escapes at "
    "tⱼ = ln(λⱼ / zⱼ(0) − 1) / (8 λⱼ), with zⱼ(0) its initial overlap."
)

result = cache.experiment(config)
if result is None:
    st.stop()

plotly_chart(recovery_figure(result), key="recovery_lines")

sgd = result.sgd
sources = {"population flow": result.flow}
if sgd is not None and sgd.recovery is not None and sgd.time.size > 1:
    sources["SGD, seed mean"] = sgd
source = "population flow"
if len(sources) > 1:
    source = st.radio(
        "heatmap of", list(sources), horizontal=True, key="recovery_source"
    )
left, right = st.columns(2)
with left:
    figure = recovery_heatmap(
        sources[source], result.escape_predicted, title=f"Recovery ρⱼ(t), {source}"
    )
    plotly_chart(figure, key="recovery_heatmap")
with right:
    plotly_chart(escape_figure(result), key="recovery_escape")

times = escape_times(result)
predicted = times["predicted"]
sgd_ok = "sgd" in times and sgd.ok
measured = times["sgd"] if sgd_ok else times["flow"]
with np.errstate(invalid="ignore", divide="ignore"):
    ratio = np.where(np.isfinite(predicted), measured / predicted, np.nan)
table = {
    "j": np.arange(1, result.lam.size + 1),
    "λⱼ": result.lam,
    "predicted tⱼ": predicted,
    "measured tⱼ, flow": times["flow"],
}
if "sgd" in times:
    table["measured tⱼ, SGD mean"] = times["sgd"]
table["measured / predicted"] = ratio

st.subheader("Escape times")
st.caption(
    "None: the direction had not reached ρⱼ = 1/2 by the end of the run, or "
    "(predicted) it lies beyond the width and never escapes. The ratio uses "
    "the SGD seed mean when SGD ran without diverging, the flow otherwise."
)
number_format = st.column_config.NumberColumn(format="%.3g")
st.dataframe(
    {name: np.where(np.isfinite(v), v, np.nan) for name, v in table.items()},
    hide_index=True,
    column_config={name: number_format for name in table if name != "j"},
)
