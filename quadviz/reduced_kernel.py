"""Compiled CPU loop for reduced-coordinate SGD (numba).

A reduced step at r = m = 32, B = 32 does about 0.3 MFLOP, so as a sequence
of torch calls its time is mostly per-call dispatch. This module runs a whole
chunk of steps for one seed in one numba call: the two small matrix products
go to BLAS and everything else is plain loops.

The factor update uses the Gram form of the same step as the torch loop,

    F'^T F' = F~^T F~ + lr^2 E^T E,   E = T v (or T R_v when B > m),

and takes F' as the transposed Cholesky factor, in float64. Any F' with the
right Gram gives the same law, because only W_perp^T W_perp enters the
dynamics. If the Cholesky factorisation fails (a Gram that is singular to
working precision), the step falls back to the R factor of the stacked
matrix [F~; lr E], as the torch loop does.

Without numba, :data:`AVAILABLE` is False and callers use the torch loop.
The first call after an install compiles for about 10 s on 2 cores. Later
processes load the machine code from numba's disk cache in about 0.4 s.
:func:`start_warm_up` does that work off the request path, for this loop,
the Gaussian generator of :mod:`quadviz.gaussian` and the full-SGD loop of
:mod:`quadviz.sgd_kernel`. Meanwhile :func:`part_ready` returns False for
the parts not yet loaded, so callers use the torch loops and the
generator's numpy twin.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import scipy.linalg  # noqa: F401  loads the BLAS that numba's np.dot and np.linalg call
from threadpoolctl import ThreadpoolController

log = logging.getLogger(__name__)

try:
    import numba
except ImportError:  # numba is optional; the torch loop covers its absence
    numba = None

AVAILABLE = numba is not None

_SQRT_HALF = math.sqrt(0.5)


def _upper_factor(gram, stacked_or_none):
    """Upper-triangular U with U^T U = gram (float64).

    Cholesky first. On failure, the R factor of ``stacked_or_none`` when it
    is given (a matrix whose Gram is ``gram``), else of the symmetric square
    root of ``gram`` with negative eigenvalues clipped to zero.
    """
    try:
        return np.ascontiguousarray(np.linalg.cholesky(gram).T)
    except Exception:  # nopython mode can catch only Exception, not LinAlgError
        pass
    if stacked_or_none is not None:
        return np.ascontiguousarray(np.linalg.qr(stacked_or_none)[1])
    vals, vecs = np.linalg.eigh(gram)
    root = vecs * np.sqrt(np.maximum(vals, 0.0))
    return np.ascontiguousarray(np.linalg.qr(root.T.copy())[1])


def _reduced_steps(X, noise_draws, upper, chi, W, lam, lr, noise):
    """Apply X.shape[0] reduced steps to one seed's state W = [P; F] in place.

    X (k, B, r + m) contains [X_par, A], noise_draws (k, B) the label noise
    draws (ignored when noise is 0), upper (k, q (q - 1) / 2) the strict
    upper triangle and chi (k, q) the diagonal of the transposed Bartlett
    factor T, q = min(B, m). Returns False if the state became non-finite;
    W is then all NaN.
    """
    k, B, n = X.shape
    m = W.shape[1]
    r = lam.shape[0]
    q = chi.shape[1]
    lam_sum = lam.sum()
    res = np.empty(B)
    T = np.zeros((q, q))
    for i in range(k):
        x = X[i]
        # forward: Z = X_par P + A F, residual of the centred student
        Z = x @ W
        norm2 = 0.0
        for a in range(n):
            for b in range(m):
                norm2 += W[a, b] * W[a, b]
        total = 0.0
        for b in range(B):
            label = -lam_sum
            for j in range(r):
                label += lam[j] * x[b, j] * x[b, j]
            if noise > 0.0:
                label += noise * noise_draws[i, b]
            output_sq = 0.0
            for j in range(m):
                output_sq += Z[b, j] * Z[b, j]
            res[b] = output_sq - norm2 - label
            total += res[b]
        # v = (2/B) res Z, stored in Z
        for b in range(B):
            scale = res[b] * (2.0 / B)
            for j in range(m):
                Z[b, j] *= scale
        # update of [P; F~], the same linear step as the full path
        shrink = 1.0 + 2.0 * lr * total / B
        grad = x.T @ Z
        for a in range(n):
            for b in range(m):
                W[a, b] = W[a, b] * shrink - lr * grad[a, b]
        # Gram of the part that leaves span(U): E^T E = v^T S v with
        # S = T^T T Wishart. For B > m only the Gram of v matters, so v is
        # replaced by its m x m factor R_v.
        # T is stored times lr, so T v below is lr E
        pos = 0
        for a in range(q):
            T[a, a] = lr * chi[i, a]
            for b in range(a + 1, q):
                T[a, b] = lr * upper[i, pos]
                pos += 1
        v = Z.astype(np.float64)
        if q < B:
            v = _upper_factor(v.T @ v, v)
        # stacked = [F~; lr E], whose Gram is the new F^T F, in one product
        stacked = np.empty((m + q, m))
        for a in range(m):
            for b in range(m):
                stacked[a, b] = W[r + a, b]
        stacked[m:] = T @ v
        gram = stacked.T @ stacked
        if not np.all(np.isfinite(gram)):
            W[:] = np.nan
            return False
        try:
            lower = np.linalg.cholesky(gram)
            for a in range(m):
                for b in range(a, m):
                    W[r + a, b] = lower[b, a]
                for b in range(a):
                    W[r + a, b] = 0.0
        except Exception:  # nopython mode can catch only Exception
            new_factor = _upper_factor(gram, stacked)
            for a in range(m):
                for b in range(m):
                    W[r + a, b] = new_factor[a, b]
    return True


def _chi_square_attempts(x, z, half_dof, out):
    """Write chi-square variates with 2 half_dof[n % q] degrees of freedom
    into out (N,) by Marsaglia-Tsang, NaN where every attempt is rejected.

    Variate n makes attempt j from x[n, j] ~ N(0, 1) and the uniform
    Phi(z[n, j]), and for half_dof below 1 boosts Gamma(a + 1) to Gamma(a)
    with Phi(z[n, A]) ** (1 / a), A = x.shape[1]. These are the operations of
    :func:`quadviz.reduced_sgd.chi_square` in the same order.
    """
    n_total, attempts = x.shape
    q = half_dof.shape[0]
    for n in range(n_total):
        a = half_dof[n % q]
        boost = a < 1.0
        a_eff = a + 1.0 if boost else a
        b = a_eff - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * b)
        value = np.nan
        for j in range(attempts):
            xt = x[n, j]
            v = (1.0 + c * xt) ** 3
            if v > 0.0:
                log_u = np.log(0.5 * math.erfc(-z[n, j] * _SQRT_HALF))
                if log_u < 0.5 * xt * xt + b - b * v + b * np.log(v):
                    value = b * v
                    break
        if boost:
            value *= (0.5 * math.erfc(-z[n, attempts] * _SQRT_HALF)) ** (1.0 / a)
        out[n] = 2.0 * value


if AVAILABLE:
    # cache=True keeps the machine code on disk next to this file (or in
    # NUMBA_CACHE_DIR), so only the first run after an install compiles.
    _upper_factor = numba.njit(cache=True, nogil=True)(_upper_factor)
    # "reassoc" lets LLVM vectorise the loop's sums (about 1.5 us of a 15 us
    # step at B = r = m = 32). The flags exclude "nnan" and "ninf", so the
    # isfinite checks keep their meaning.
    reduced_steps = numba.njit(
        cache=True, nogil=True, fastmath={"reassoc", "contract"}
    )(_reduced_steps)
    chi_square_attempts = numba.njit(cache=True, nogil=True)(_chi_square_attempts)
else:
    reduced_steps = None
    chi_square_attempts = None


_BLAS: list[ThreadpoolController] = []


def one_blas_thread():
    """Context manager that limits BLAS to one thread.

    The loop's products are at most (r + m) x B x m, and on a busy 2-core
    machine two OpenBLAS threads made a step at r = m = B = 32 six times
    slower (about 180 us against 30 us). A kept ThreadpoolController
    makes entering the limit cost about 20 us instead of about 1 ms.
    """
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


_WARM_UP: list[threading.Thread] = []
_WARM_UP_LOCK = threading.Lock()
# The compiled parts in warm-up order, each with a (done, failed) pair of
# events: the Gaussian generator of quadviz.gaussian (about 3 s to compile),
# this module's reduced-SGD loop (about 11 s), which runs the app's default
# scenario, and the full-SGD loop of quadviz.sgd_kernel (about 2 s).
PARTS = ("gaussian", "reduced_kernel", "sgd_kernel")
_EVENTS = {part: (threading.Event(), threading.Event()) for part in PARTS}


def warm_up() -> None:
    """Compile, or load from the disk cache, the float32 and float64 loops
    and the chi-square transform."""
    if not AVAILABLE:
        return
    start = time.perf_counter()
    for dtype in (np.float32, np.float64):
        B, r, m = 2, 1, 2
        W = np.full((r + m, m), 0.1, dtype=dtype)
        np.fill_diagonal(W[r:], 0.2)
        reduced_steps(
            np.ones((1, B, r + m), dtype=dtype), np.zeros((1, B), dtype=dtype),
            np.zeros((1, 1), dtype=dtype), np.ones((1, m), dtype=dtype),
            W, np.ones(r), 0.01, 0.0,
        )
    chi_square_attempts(np.zeros((2, 2)), np.zeros((2, 3)), np.array([0.5, 3.0]), np.empty(2))
    log.info("reduced-SGD loop ready after %.1f s", time.perf_counter() - start)


# Seconds a compiling child process may take before the warm-up gives up on it.
CHILD_COMPILE_TIMEOUT = 600


def _compile_in_child(module: str) -> bool:
    """Fill numba's disk cache from a child process at low CPU priority.

    The child runs ``quadviz.<module>.warm_up()``. numba's compiler is Python
    code that holds the GIL, so compiling on a thread of the app server slows
    every session's computation for about 10 s. A niced child leaves the
    server the cores and the GIL. Returns whether the child succeeded.
    """
    code = f"import os; os.nice(10); from quadviz.{module} import warm_up; warm_up()"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
            capture_output=True, text=True, timeout=CHILD_COMPILE_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("compiling quadviz.%s in a child process failed: %s", module, err)
        return False
    if done.returncode != 0:
        log.warning("compiling quadviz.%s in a child process failed (exit code %d): %s",
                    module, done.returncode, done.stderr[-2000:])
    return done.returncode == 0


def _warm_up_part(module: str, load, done: threading.Event, failed: threading.Event) -> None:
    """Compile one part in a child process, then load it here."""
    try:
        _compile_in_child(module)
        load()
    except Exception:  # a failed compile must not end the server
        log.exception("compiling quadviz.%s failed; its slower fallback stays in use", module)
        failed.set()
    finally:
        done.set()


def start_warm_up() -> None:
    """Compile the Gaussian generator and the SGD loops once per process,
    off the caller's thread.

    A daemon thread lets a child process compile each part of :data:`PARTS`
    into numba's disk cache, then loads it from there (about 0.4 s), in the
    order of :data:`PARTS`: the generator first because every run draws
    with it and it compiles in about 3 s. Where the cache cannot be written,
    the load compiles in this process.
    """
    with _WARM_UP_LOCK:
        if _WARM_UP or not AVAILABLE:
            return
        import importlib

        def run() -> None:
            for part in PARTS:
                module = importlib.import_module(f"quadviz.{part}")
                _warm_up_part(part, module.warm_up, *_EVENTS[part])

        thread = threading.Thread(target=run, name="numba-warm-up", daemon=True)
        _WARM_UP.append(thread)
        thread.start()


def part_ready(part: str) -> bool:
    """Return whether the compiled ``part`` of :data:`PARTS` can run now
    without a compile.

    False without numba, while a background warm-up has not reached the
    end of that part, and after its compile failed.
    """
    done, failed = _EVENTS[part]
    if not AVAILABLE or failed.is_set():
        return False
    return not _WARM_UP or done.is_set()


def ready() -> bool:
    """Return whether :data:`reduced_steps` can run now without a compile."""
    return part_ready("reduced_kernel")


def generator_ready() -> bool:
    """Return whether the compiled Gaussian generator can run without a compile."""
    return part_ready("gaussian")
