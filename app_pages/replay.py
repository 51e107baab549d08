"""Training replay: the run animated in the browser, frame by frame."""

import streamlit as st

from quadviz.animation import MAX_FRAMES, training_animation
from quadviz.app import cache, controls, plotly_chart

config = controls.current_config()

st.title("Training replay")
st.markdown(
    "Press ▶ Play, or drag the time slider under the figure. The cursor moves "
    "along the risk curve while the overlap matrix Θᵀ M Θ / √(λᵢ λⱼ) and the "
    "recovery ρⱼ of every direction change with it. Crosses mark the predicted "
    "escape times tⱼ. The frames are computed once and play in the browser."
)

result = cache.experiment(config)
if result is None:
    st.stop()

sources = {"population flow": "flow"}
sgd = result.sgd
if sgd is not None and sgd.overlap is not None and sgd.time.size >= 2:
    sources["SGD, seed 1"] = "sgd"
label = "population flow"
if len(sources) > 1:
    label = st.radio("replay of", list(sources), horizontal=True, key="replay_source")

figure = training_animation(result, sources[label])
plotly_chart(figure, key="replay_animation")
st.caption(
    f"Up to {MAX_FRAMES} frames at the output times, evenly spaced in log t. "
    "Colour range [−1, 1] and bar range [0, 1.2] stay fixed, so frames can be "
    "compared. More output times (sidebar, Output and numerics) give more "
    "frames."
)
