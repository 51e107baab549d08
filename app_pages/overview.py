"""Overview: the model, the hero figure and what to notice in it."""

import streamlit as st

from quadviz.app import cache, compare, controls, gallery, plotly_chart, summary
from quadviz.figures import risk_figure

config = controls.current_config()

st.title("Learning a quadratic teacher with online SGD")
left, right = st.columns(2)
with left:
    st.markdown(
        "**Teacher** with r orthonormal directions θⱼ, strengths λⱼ ∝ j^(−α) "
        "and inputs x ~ N(0, I_d):"
    )
    st.latex(
        r"f^*(x) = \sum_{j=1}^{r} \lambda_j \,\mathrm{He}_2(\langle \theta_j, x\rangle)"
    )
with right:
    st.markdown(
        "**Student** of width m, trained by online SGD on ½(f_W(x) − y)², "
        "with population risk R = ‖W Wᵀ − Q‖²_F:"
    )
    st.latex(
        r"f_W(x) = \sum_{i=1}^{m} \left(\langle w_i, x\rangle^2 - \|w_i\|^2\right)"
    )

result = cache.experiment(config)
if result is None:
    st.stop()

gallery.notes(config, result)
hero = compare.overlay(risk_figure(result, "time"), config, "time")
plotly_chart(hero, key="overview_risk")
compare.controls(result, "overview")

r = result.lam.size
st.markdown(
    f"**What to notice** (d = {config.d}, r = {r}, m = {config.width}, "
    f"α = {config.alpha:g}, lr = {config.lr:g}, B = {config.batch}):"
)
st.markdown("\n".join(f"- {line}" for line in summary.overview_bullets(result)))
st.caption(
    "Change d, α, the width or the step size in the sidebar; the link in the "
    "address bar always reproduces the current settings."
)
gallery.figures(config)
gallery.cards()
