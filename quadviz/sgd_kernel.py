"""Compiled CPU loop for full online SGD at small steps (numba).

At B = 32, d = 512, m = 64 a step's two matrix products take 40 to 60 us,
and the TorchScript chunk of :func:`quadviz.sgd.sgd_chunk` spends a further
10 to 50 us on nine element-wise calls, most of it per-call dispatch. At
B = 1 nearly all of its 23 us a step is dispatch. This loop runs a chunk of
steps for one seed in one call: the two products go to BLAS through
``np.dot``, and the residuals, the update of W and ||W||^2 are plain loops.
The update of W and the sum for the next step's ||W||^2 share one pass over
W.

It takes the same steps as :func:`quadviz.sgd.sgd_chunk` up to rounding:
the residuals and ||W||^2 add up in float64 here (||W||^2 from row sums
in W's dtype) and in the working precision there, and the BLAS differs
(scipy's here, torch's there).

Without numba, :data:`AVAILABLE` is False and callers use the TorchScript
chunk. The app compiles this loop in the background with the others (see
:func:`quadviz.reduced_kernel.start_warm_up`) and uses the TorchScript chunk
until :func:`quadviz.reduced_kernel.part_ready` returns True for it.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from quadviz import reduced_kernel

log = logging.getLogger(__name__)

AVAILABLE = reduced_kernel.AVAILABLE

# Multiply-adds per seed and step (B * d * m) below which full SGD on a CPU
# runs in the compiled loop of this module when numba is installed,
# each seed on one thread with one BLAS thread. The rule ignores the seed
# count, so seed i takes the same path, and the same rounding, beside any
# number of seeds. At B = 32, d = 512, m = 64 a step took 72 us in the loop
# against 96 to 114 us in TorchScript, with 8 seeds 550 us against 630 us
# (pipelined, 2-core VM). At B = 256, d = 256 the two were equal.
KERNEL_STEP_WORK = 1 << 21


def uses_loop(batch: int, d: int, width: int) -> bool:
    """Return whether a CPU step of this size runs in the compiled loop."""
    return AVAILABLE and batch * d * width < KERNEL_STEP_WORK


def _full_steps(X, Y, W, lr, norm2):
    """Apply X.shape[0] SGD steps to one seed's W (d, m) in place.

    X (k, B, d) contains the batches and Y (k, B) their labels. ``norm2``
    is ||W||^2 as the previous call returned it, or NaN to compute it from
    W. Returns ||W||^2 of the new W. Passing it on makes a run independent
    of how its steps are split into calls, because the loop's own sum
    rounds differently from a fresh sum over W.
    """
    k, B, d = X.shape
    m = W.shape[1]
    Z = np.empty((B, m), dtype=W.dtype)
    grad = np.empty((d, m), dtype=W.dtype)
    res = np.empty(B, dtype=W.dtype)
    # shrink, scale and zero in W's dtype
    coef = np.zeros(3, dtype=W.dtype)
    if np.isnan(norm2):
        norm2 = 0.0
        for a in range(d):
            for b in range(m):
                norm2 += W[a, b] * W[a, b]
    for i in range(k):
        x = X[i]
        # forward: residual of the centred quadratic student
        np.dot(x, W, Z)
        total = 0.0
        for b in range(B):
            output_sq = 0.0
            for j in range(m):
                output_sq += Z[b, j] * Z[b, j]
            res[b] = output_sq - norm2 - Y[i, b]
            total += res[b]
        for b in range(B):
            for j in range(m):
                Z[b, j] *= res[b]
        # update W <- (1 + 2 lr mean(res)) W - (2 lr / B) X^T (res Z), and
        # ||W||^2 of the new W for the next step in the same pass. The pass
        # computes in W's dtype, with row sums added in float64: in float32
        # it took 2.8 us a step at d = 512, m = 64 against 7.2 us in float64.
        np.dot(x.T, Z, grad)
        coef[0] = 1.0 + total * (2.0 * lr / B)
        coef[1] = 2.0 * lr / B
        shrink, scale = coef[0], coef[1]
        norm2 = 0.0
        for a in range(d):
            row = coef[2]
            for b in range(m):
                w = W[a, b] * shrink - scale * grad[a, b]
                W[a, b] = w
                row += w * w
            norm2 += row
    return norm2


if AVAILABLE:
    import numba

    # The flags exclude "nnan" and "ninf", so non-finite weights stay
    # non-finite and the caller's divergence check finds them.
    full_steps = numba.njit(
        cache=True, nogil=True, fastmath={"reassoc", "contract"}
    )(_full_steps)
else:
    full_steps = None


def warm_up() -> None:
    """Compile, or load from the disk cache, the float32 and float64 loops."""
    if full_steps is None:
        return
    start = time.perf_counter()
    for dtype in (np.float32, np.float64):
        k, B, d, m = 2, 3, 4, 2
        full_steps(np.ones((k, B, d), dtype=dtype), np.zeros((k, B), dtype=dtype),
                   np.full((d, m), 0.1, dtype=dtype), 0.01, np.nan)
    log.info("full-SGD loop ready after %.1f s", time.perf_counter() - start)
