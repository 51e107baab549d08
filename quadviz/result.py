"""One trajectory type shared by online SGD, the population flow and theory."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Trajectory:
    """Risk, recovery and spectrum of one method on a grid of times.

    Attributes
    ----------
    method : "sgd", "flow" or "additive".
    time : (T,) flow time t = lr * step.
    risk : (S, T) population risk ||M - Q||_F^2 for each of S seeds
        (S = 1 for the flow and theory).
    recovery : (S, T, r) rho_j = (Theta^T M Theta)_jj / lambda_j.
    spectrum : (S, T, m) eigenvalues of W^T W, descending, or None.
    overlap : (T, k, k) Theta^T M Theta of the first seed restricted to the
        first k = min(r, OVERLAP_DIRECTIONS) directions, or None.
    step, samples : (T,) SGD step and samples seen, or None for the flow.
    status : "ok" or "diverged".
    message : why the run stopped early, or "".
    """

    method: str
    time: np.ndarray
    risk: np.ndarray
    recovery: np.ndarray | None = None
    spectrum: np.ndarray | None = None
    overlap: np.ndarray | None = None
    step: np.ndarray | None = None
    samples: np.ndarray | None = None
    status: str = "ok"
    message: str = ""
    info: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def risk_mean(self) -> np.ndarray:
        """(T,) mean risk over seeds."""
        return self.risk.mean(axis=0)


# Directions kept in the overlap matrix Theta^T M Theta. A larger r would make
# the per-time matrices too big to cache and to draw as a heatmap.
OVERLAP_DIRECTIONS = 48
