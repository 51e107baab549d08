"""Riccati flow: the exact population dynamics, its overlaps and the d limit."""

import streamlit as st

from quadviz.app import cache, controls, plotly_chart, summary
from quadviz.figures import dimension_figure, overlap_heatmap, spectrum_figure
from quadviz.result import OVERLAP_DIRECTIONS

config = controls.current_config()

st.title("Riccati flow")
st.markdown(
    "Gradient flow on the population risk R(W) = ‖M − Q‖²_F, with M = W Wᵀ and "
    "Q = Σⱼ λⱼ θⱼ θⱼᵀ, closes on M as a matrix Riccati equation:"
)
st.latex(r"\frac{dM}{dt} = 4\,(Q M + M Q - 2 M^2)")
st.markdown("With τ = 4t it has the closed-form solution")
st.latex(
    r"M(\tau) = e^{Q\tau} W_0 \left(I_m + W_0^\top K(\tau) W_0\right)^{-1}"
    r" W_0^\top e^{Q\tau},\qquad K(\tau) = \int_0^\tau 2\,e^{2Qs}\,ds"
)
st.markdown(
    "Only the rows of W along the teacher and the Gram matrix of the rest "
    "matter, so the flow costs the same at every d. The app evaluates the "
    "solution with an exact, overflow-free QR propagator."
)

result = cache.experiment(config)
if result is None:
    st.stop()

flow, sgd = result.flow, result.sgd
sources = {"population flow": flow}
if sgd is not None and sgd.overlap is not None and sgd.time.size >= 2:
    sources["SGD, first seed"] = sgd
source = "population flow"
if len(sources) > 1:
    source = st.radio(
        "overlap of", list(sources), horizontal=True, key="riccati_source"
    )
trajectory = sources[source]
times = trajectory.time
index = st.select_slider(
    "time t",
    options=list(range(times.size)),
    value=summary.half_learned_index(trajectory),
    format_func=lambda i: f"{times[i]:.3g}",
    key=f"riccati_time_{source}_{times.size}",
)

left, right = st.columns(2)
with left:
    figure = overlap_heatmap(trajectory, index, result.lam)
    plotly_chart(figure, key="riccati_overlap")
    st.caption(
        "Θᵀ M Θ divided by √(λᵢ λⱼ): the diagonal is the recovery ρⱼ and the "
        f"target is the identity. At most the first {OVERLAP_DIRECTIONS} "
        "directions are kept."
    )
with right:
    flow_index = int(abs(flow.time - times[index]).argmin())
    plotly_chart(spectrum_figure(result, flow_index), key="riccati_spectrum")
    st.caption(
        "Eigenvalues of M rise out of the initial bulk one by one and lock "
        "onto the teacher's λⱼ."
    )

st.subheader("The d → ∞ limit")
ladder = cache.dimension_ladder(config)
if ladder is not None:
    plotly_chart(dimension_figure(ladder), key="riccati_ladder")
    st.caption(
        "Population flow at several d with r, α, m and σ₀ fixed, from "
        "independent random initialisations. Escape times grow like ln d, so "
        "against t / ln d the curves approach one limit."
    )
