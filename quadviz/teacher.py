"""Teacher f*(x) = sum_j lambda_j He2(<theta_j, x>) with theta_j = e_j."""

from __future__ import annotations

import numpy as np


def spectrum(r: int, alpha: float, normalization: str = "unit-norm") -> np.ndarray:
    """Teacher strengths lambda_j proportional to j^-alpha, j = 1..r.

    "unit-norm" scales to sum_j lambda_j^2 = 1, so the initial risk is about
    one; "leading-one" sets lambda_1 = 1.
    """
    lam = np.arange(1, r + 1, dtype=np.float64) ** (-float(alpha))
    if normalization == "unit-norm":
        return lam / np.linalg.norm(lam)
    if normalization == "leading-one":
        return lam
    raise ValueError(
        f"invalid normalization={normalization!r}: allowed unit-norm, leading-one"
    )


def teacher_labels(x: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """f*(x) for rows x of shape (n, d), using theta_j = e_j."""
    r = lam.shape[0]
    return (x[:, :r] ** 2 - 1.0) @ lam
