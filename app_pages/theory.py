"""Theory notes: conventions, the Riccati equation, escape times, exponents."""

import math

import numpy as np
import streamlit as st

from quadviz import theory
from quadviz.app import controls
from quadviz.teacher import spectrum

config = controls.current_config()

st.title("Theory notes")
st.markdown(
    "The conventions the app uses, the population dynamics it solves exactly, "
    "and the scaling laws it compares against, each marked as exact, proven "
    "in the literature, derived here under an approximation, measured, or "
    "conjectured. Numbers in brackets refer to the references at the end."
)

st.header("1. Conventions")
st.markdown(
    """
- **Data.** x ~ N(0, I_d). The teacher directions θ₁ … θ_r are orthonormal;
  because the data and the initialisation are rotation invariant, the app
  takes θⱼ = eⱼ, so the overlap of a student neuron with θⱼ is a row of W.
- **Rank and spectrum.** r = max(1, round(d^β)) unless r is given;
  λⱼ = j^(−α) / Z. The default normalisation is Σⱼ λⱼ² = 1 (unit teacher
  norm, so the initial risk is about 1); the alternative is λ₁ = 1. For
  α < 1/2 the two differ by a power of r.
- **Teacher.** f*(x) = Σⱼ λⱼ He₂(⟨θⱼ, x⟩) = xᵀQx − tr Q with
  Q = Σⱼ λⱼ θⱼθⱼᵀ and He₂(z) = z² − 1. Labels may carry Gaussian noise σ_ε.
- **Student.** f_W(x) = Σᵢ (⟨wᵢ, x⟩² − ‖wᵢ‖²) = xᵀMx − tr M with
  M = WWᵀ, W ∈ ℝ^(d×m), second layer fixed to 1. Centring each neuron by
  ‖wᵢ‖² rather than by 1 is what makes the population dynamics an exact
  matrix Riccati equation.
- **Initialisation.** The entries of W₀ are i.i.d. N(0, σ₀²/d).
- **Loss and risk.** Online SGD on ½(f_W(x) − y)², one fresh batch per step.
  The population risk, without label noise, is
  R(W) = E[½(f_W − f*)²] = ‖M − Q‖²_F, because Var(xᵀAx) = 2‖A‖²_F for
  symmetric A.
- **Time.** t = lr · steps, the time of the gradient flow that SGD tracks;
  samples seen are n = B · steps. The closed form below uses τ = 4t.
- **Recovery.** ρⱼ = (ΘᵀMΘ)ⱼⱼ / λⱼ. It starts near σ₀² m / (d λⱼ) and tends
  to 1 when direction j is learned; direction j *escapes* when ρⱼ passes 1/2.
"""
)

st.header("2. The population flow is a matrix Riccati equation")
st.markdown(
    "For symmetric A, E[(xᵀAx − tr A) x xᵀ] = 2A (Isserlis' theorem), and the "
    "gradient of f_W is 2(xxᵀ − I)W. With A = M − Q the expected gradient of "
    "the loss is therefore"
)
st.latex(r"\nabla_W R = 4\,(M - Q)\,W .")
st.markdown("Gradient flow dW/dt = −∇_W R then closes on M = WWᵀ:")
st.latex(
    r"\frac{dM}{dt} = \dot W W^\top + W \dot W^\top"
    r" = 4\,(Q M + M Q - 2 M^2)."
)
st.markdown("In τ = 4t it reads dM/dτ = QM + MQ − 2M², and its solution from W₀ is")
st.latex(
    r"M(\tau) = e^{Q\tau} W_0\, G(\tau)^{-1} W_0^\top e^{Q\tau},\qquad"
    r" G(\tau) = I_m + W_0^\top K(\tau) W_0,\qquad"
    r" K(\tau) = \int_0^\tau 2\,e^{2Qs}\,ds ."
)
st.markdown(
    "To check it, differentiate: the factors e^(Qτ) give QM + MQ, and "
    "dG/dτ = 2 W₀ᵀ e^(2Qτ) W₀ turns −G⁻¹ (dG/dτ) G⁻¹ into the −2M² term. "
    "K(τ) has eigenvalue (e^(2λⱼτ) − 1)/λⱼ along θⱼ and 2τ on the orthogonal "
    "complement. This closed form appears in [1], [3] and [4]; the app checks "
    "its own implementation against a Runge–Kutta solver in the tests."
)

st.header("3. Reduced coordinates")
st.markdown(
    """
Only two things about W matter: its rows along the teacher, P = ΘᵀW
(r × m), and the Gram matrix of the rest, C = W⊥ᵀW⊥ = FᵀF (m × m). The
stacked matrix W̃ = [P; F] of shape (r + m) × m follows the same flow with
Q̃ = diag(λ₁, …, λ_r, 0, …, 0), so the cost depends on r and m, never on d.

- **The d → ∞ limit.** P₀ has i.i.d. N(0, σ₀²/d) entries and C₀ is
  Wishart(d − r, σ₀²/d · I_m), whose factor F₀ the Bartlett decomposition
  draws in O(m²). The Riccati page shows d up to 10⁹ this way.
- **An exact step.** With kᵢ = expm1(2λᵢh)/λᵢ (2h where λᵢ = 0) and
  V = diag(√k) W̃, a thin QR of the stacked matrix [V; I_m] = [Q_top; Q_bot] R
  gives W̃(τ + h) = diag(e^(λᵢh)/√kᵢ) Q_top, because
  V(I + VᵀV)⁻¹Vᵀ = Q_top Q_topᵀ. The step has no discretisation error, so
  the output times can be any grid.
- **Online SGD.** The same split holds for a Gaussian batch: the part of the
  batch orthogonal to the teacher and to the span of W⊥ enters only through
  its Gram matrix, a Wishart draw. SGD in reduced coordinates therefore has
  exactly the law of d-dimensional SGD at a cost independent of d; the app
  uses it when d ≥ 8 (r + m).
"""
)

st.header("4. Escape times and the additive model")
st.markdown(
    "Keep only the diagonal overlaps zⱼ = (ΘᵀMΘ)ⱼⱼ and drop the interactions "
    "between directions: each follows a logistic equation,"
)
st.latex(
    r"\frac{dz_j}{dt} = 8\,z_j\,(\lambda_j - z_j),\qquad "
    r"t_j = \frac{\ln(\lambda_j / z_j(0) - 1)}{8\,\lambda_j}"
    r"\approx \frac{1}{8\lambda_j}\ln\frac{\lambda_j\, d}{\sigma_0^2\, m},"
)
st.markdown(
    """
where tⱼ is the time at which zⱼ reaches λⱼ/2 and zⱼ(0) ≈ σ₀² m / d. So tⱼ
grows like j^α ln d: a tenfold larger d delays every escape by
ln 10 / (8λⱼ). The additive model R(t) ≈ Σⱼ (λⱼ − zⱼ(t))², with
directions beyond the width left at zero, is the emergence picture of [2]
applied to this model. With a random start the directions compete for
neurons, so late directions escape somewhat later than tⱼ (the Signal
recovery page shows the ratio), and the additive model is too optimistic
late.

Away from the teacher, an eigenvalue μ of M obeys dμ/dt = −8μ², so
μ(t) = μ₀/(1 + 8μ₀t) → 1/(8t) whatever its start. The m − r neurons the
teacher does not need therefore leave a slow tail R ≈ (m − r)/(64t²); the
*large initialisation* scenario shows it.
"""
)

st.header("5. Scaling exponents and their status")
STATUS_ROWS = (
    ("Population risk", "R = ‖M − Q‖²_F", "exact (Gaussian identity)"),
    (
        "Population dynamics",
        "dM/dt = 4(QM + MQ − 2M²) and its closed form",
        "exact; in [1], [3], [4]",
    ),
    (
        "Risk against time, α > 1/2, m ≥ r",
        "R ~ (t / ln d)^(−(2α−1)/α) until the last direction is learned",
        "proven in [1]; the exponent is also stated in [4]",
    ),
    (
        "Width floor, m < r",
        "R∞ = sum of λⱼ² over j > m, ~ m^(1−2α)",
        (
            "exact limit of the flow from a generic start (best rank-m "
            "approximation of Q); width law in [1]"
        ),
    ),
    (
        "Escape times",
        "tⱼ ≈ ln(λⱼ d / (σ₀² m)) / (8λⱼ) ~ j^α ln d",
        "derived here from the decoupled logistic model",
    ),
    ("Additive model", "R ≈ Σⱼ (λⱼ − zⱼ(t))²", "heuristic guide, after [2]"),
    (
        "Flat or slowly decaying spectrum, α ≤ 1/2",
        (
            "no decaying power law with unit norm; the risk drops once the "
            "whole spectrum is learned"
        ),
        "derived from the formulas above",
    ),
    (
        "Orthogonal tail",
        "R ≈ (m − r)/(64t²) late, for m > r",
        "derived here; checked in the large-initialisation scenario",
    ),
    (
        "SGD stability",
        "lr < c B / d with c ≈ 0.15 for B ≤ d",
        "measured in this app (d = 256 and 1024, α = 1)",
    ),
    (
        "Samples",
        "n = B t / lr ~ d t when lr ~ B / d",
        "follows from the stability limit",
    ),
    (
        "Compute-optimal frontier, compute ∝ m t",
        "R*(C) ~ C^(−(2α−1)/(1+α))",
        "conjecture: an inference, not a sourced theorem",
    ),
)
table = ["| Statement | Formula | Status |", "|---|---|---|"]
table += [f"| {a} | {b} | {c} |" for a, b, c in STATUS_ROWS]
st.markdown("\n".join(table))
st.markdown(
    "At the sizes the app runs, fitted slopes are steeper than −(2α − 1)/α "
    "(about −1.1 to −1.5 at α = 1), so the figures draw the asymptotic "
    "exponent as a guide line and report the fitted slope beside it."
)

st.header("6. For the current settings")
lam = spectrum(config.teacher_rank, config.alpha, config.normalization)
r, m = lam.size, config.width
z0 = np.full(r, config.sigma0**2 * m / config.d)
escapes = theory.escape_times(lam, z0, m)
exponent = theory.asymptotic_exponent(config.alpha)
limit = theory.lr_stability_limit(config.d, config.batch, lam)
finite = escapes[np.isfinite(escapes)]
rows = {
    "d, r, m": f"{config.d}, {r}, {m}",
    "λ₁ and λ_r": f"{lam[0]:.3g} and {lam[-1]:.3g}",
    "expected initial overlap σ₀² m / d": f"{z0[0]:.3g}",
    "predicted t₁ and last escape": (
        f"{finite[0]:.3g} and {finite[-1]:.3g}" if finite.size else "none"
    ),
    "exponent −(2α−1)/α": (
        f"{exponent:.3g}" if math.isfinite(exponent) else "none (α ≤ 1/2)"
    ),
    "width floor (sum of λⱼ² over j > m)": f"{theory.width_floor(lam, m):.3g}",
    "estimated stability limit of lr": f"{limit:.3g} (lr = {config.lr:g} now)",
}
st.table({"quantity": list(rows), "value": list(rows.values())})

st.header("References")
st.markdown(
    """
1. G. Ben Arous, M. A. Erdogdu, N. M. Vural, D. Wu. *Learning quadratic
   neural networks in high dimensions: SGD dynamics and scaling laws.*
   arXiv 2508.03688, NeurIPS 2025. The model, the Riccati characterisation
   and the scaling laws.
2. Y. Ren, E. Nichani, D. Wu, J. D. Lee. *Emergence and scaling laws in SGD
   learning of shallow neural networks.* arXiv 2504.19983, NeurIPS 2025. The
   additive (emergence) picture, for activations of higher information
   exponent.
3. S. Martin, F. Bach, G. Biroli. *On the impact of overparameterization on
   the training of a shallow neural network in high dimensions.* AISTATS
   2024, arXiv 2311.03794. Population gradient flow of quadratic networks.
4. Ziyin, Xu, Poggio, Chuang. *Neural quadratic forms: a unified minimal
   model for sudden learning and scaling laws* (2026). The same closed form
   and the exponent of the risk in rescaled time.
5. S. Pesme, N. Flammarion. *Saddle-to-saddle dynamics in diagonal linear
   networks.* NeurIPS 2023. The per-coordinate jump-time figure that the
   Signal recovery page follows.
"""
)
