"""SGD dynamics: the risk of online SGD beside the flow and the theory."""

import math

import streamlit as st

from quadviz import theory
from quadviz.app import cache, compare, controls, plotly_chart, summary
from quadviz.figures import X_AXES, risk_figure, risk_fit

config = controls.current_config()

st.title("SGD dynamics")
st.markdown(
    "Online SGD sees every sample once. With time t = lr · steps its risk "
    "follows the population gradient flow from the same initial weights W₀ "
    "(the Riccati equation), up to noise of order lr."
)

result = cache.experiment(config)
if result is None:
    st.stop()

x_axis = st.radio(
    "x axis",
    list(X_AXES),
    format_func=lambda name: X_AXES[name],
    horizontal=True,
    key="sgd_x_axis",
)
sgd = result.sgd
if sgd is not None and not sgd.ok:
    st.warning(f"{sgd.message}. The curves stop where SGD diverged.")

figure = compare.overlay(risk_figure(result, x_axis), config, x_axis)
plotly_chart(figure, key="sgd_risk")
compare.controls(result, "sgd")

label, fit = risk_fit(result)
exponent = theory.asymptotic_exponent(config.alpha)
gap = summary.median_relative_gap(result)
columns = st.columns(4)
columns[0].metric(
    f"fitted slope ({label})",
    f"{fit.slope:.2f} ± {fit.stderr:.2f}" if fit.ok else "none",
)
columns[1].metric(
    "d → ∞ slope −(2α−1)/α",
    f"{exponent:.2f}" if math.isfinite(exponent) else "none (α ≤ 1/2)",
)
if gap is not None:
    gap_text = summary.format_percent(gap)
elif sgd is not None and not sgd.ok:
    gap_text = "SGD diverged"
else:
    gap_text = "no SGD"
columns[2].metric("median gap SGD vs flow", gap_text)
scale = config.d / config.batch
limit = theory.lr_stability_limit(config.d, config.batch, result.lam)
columns[3].metric(
    "lr · d / B",
    f"{config.lr * scale:.3g}",
    delta=f"stable below about {limit * scale:.3g}",
    delta_color="gray" if config.lr <= limit else "red",
    delta_arrow="off",
)

if fit.ok:
    st.markdown(
        f"The slope is fitted by least squares in log-log coordinates on "
        f"t ∈ [{fit.t_lo:.3g}, {fit.t_hi:.3g}] ({fit.points} points), chosen "
        "after the first plateau and before the final collapse or the width "
        "floor. Its ± is the standard error of the regression, a measure of "
        "curvature inside the window rather than of randomness."
    )
else:
    st.markdown(f"No power law fitted: {fit.reason}.")
if gap is not None:
    st.markdown(
        f"**Agreement:** over all output times, the median relative gap "
        f"|SGD mean − flow| / flow is {summary.format_percent(gap)}."
    )
