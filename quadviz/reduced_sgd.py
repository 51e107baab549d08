"""Online SGD in reduced coordinates, equal in law to the d-dimensional run.

The state is P = Theta^T W (r x m) and a factor F (m x m) with
F^T F = W_perp^T W_perp. Writing W_perp = U F with U orthonormal, a Gaussian
batch splits into independent parts X_par (B x r), A = X_perp U (B x m) and a
part N orthogonal to the teacher and to span(U). One step:

    Z   = X_par P + A F
    res = rowsum(Z * Z) - ||P||^2 - ||F||^2 - y
    v   = (2/B) res Z
    P  <- P - lr (X_par^T v - 2 mean(res) P)
    F~  = F - lr (A^T v - 2 mean(res) F)
    F  <- R factor of [F~; lr Y],   Y^T Y = v^T S v,  S ~ Wishart_B(d - r - m, I_B)

The last line adds the Gram matrix of -lr N^T v; rotation invariance in the
orthogonal complement makes only that Gram matter. Y is drawn by the Bartlett
decomposition, so a step costs O(B (r + m) m + m^3) instead of O(B d m),
independent of d.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.special
import torch

from quadviz import reduced_kernel
from quadviz.config import Config
from quadviz.riccati import bartlett_state, reduce_state
from quadviz.sgd import (
    DRAW_ELEMENTS,
    OnlineSGD,
    SeedStreams,
    StepDraws,
    _draw_pool,
    compiled,
    ordered_sum,
    resolve_device,
    run_seeds,
)

log = logging.getLogger(__name__)


def standard_gamma(shape: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Gamma(shape, 1) draws with the given generator (Marsaglia and Tsang, 2000).

    Rejection sampling: for a >= 1, with b = a - 1/3, c = 1 / sqrt(9 b),
    x ~ N(0, 1), v = (1 + c x)^3 and u ~ U(0, 1), accept b v when
    log u < x^2 / 2 + b - b v + b log v. Shapes below 1 use
    Gamma(a) = Gamma(a + 1) U^(1/a). About 2 percent of draws are rejected
    and redrawn.
    """
    a = shape.to(torch.float64)
    boost = a < 1.0
    a_eff = torch.where(boost, a + 1.0, a)
    b = a_eff - 1.0 / 3.0
    c = 1.0 / torch.sqrt(9.0 * b)
    out = torch.empty_like(a_eff)
    todo = torch.arange(a.numel(), device=a.device)
    b_flat, c_flat = b.reshape(-1), c.reshape(-1)
    out_flat = out.reshape(-1)
    while todo.numel() > 0:
        x = torch.randn(todo.numel(), generator=gen, device=a.device, dtype=a.dtype)
        u = torch.rand(todo.numel(), generator=gen, device=a.device, dtype=a.dtype)
        bt, ct = b_flat[todo], c_flat[todo]
        v = (1.0 + ct * x) ** 3
        ok = v > 0
        logv = torch.log(torch.where(ok, v, torch.ones_like(v)))
        ok &= torch.log(u) < 0.5 * x * x + bt - bt * v + bt * logv
        out_flat[todo[ok]] = (bt * v)[ok]
        todo = todo[~ok]
    if bool(boost.any()):
        u = torch.rand(a.shape, generator=gen, device=a.device, dtype=a.dtype)
        out = torch.where(boost, out * u ** (1.0 / torch.clamp(a, min=1e-300)), out)
    return out


# Marsaglia-Tsang attempts drawn per chi-square variate from the counter
# streams. Each attempt is accepted with probability above 0.95 for every
# shape, so all GAMMA_ATTEMPTS fail with probability below 0.05^8 = 4e-11.
# Such a variate is redrawn with the seed's torch generator.
GAMMA_ATTEMPTS = 8


def chi_square_draws(streams: SeedStreams, q: int, k: int):
    """Draw the Gaussians that :func:`chi_square` turns into k q variates.

    Returns None without counter streams. This part calls no parallel torch
    operation, so it can run on the prefetch thread.
    """
    if streams.counters is None:
        return None
    x = streams.normal((k, q, GAMMA_ATTEMPTS), torch.float64, False, "gamma_normal")
    z = streams.normal((k, q, GAMMA_ATTEMPTS + 1), torch.float64, False, "gamma_uniform")
    return x, z


def chi_square(streams: SeedStreams, dof: torch.Tensor, k: int, draws=None) -> torch.Tensor:
    """Return chi-square draws with ``dof`` degrees of freedom, shape (S, k, q).

    This is :func:`standard_gamma` with counter streams: attempt j of
    variate n (step n // q) uses number n GAMMA_ATTEMPTS + j of the streams
    "gamma_normal" and "gamma_uniform", so the draws do not depend on how
    steps form chunks. The uniforms are Phi(z) of standard Gaussians z.
    ``draws`` are those Gaussians from :func:`chi_square_draws`, drawn here
    when None. The attempts run in the compiled transform of
    :mod:`quadviz.reduced_kernel` once it is ready, else in torch; the two
    agree to rounding. Without counter streams it runs
    :func:`standard_gamma` on each seed's torch generator.
    """
    q = dof.numel()
    if streams.counters is None:
        a = dof.to(torch.float64) / 2.0
        return torch.stack([2.0 * standard_gamma(a.expand(k, q), gen) for gen in streams.gens])
    x, z = draws if draws is not None else chi_square_draws(streams, q, k)
    if reduced_kernel.ready():
        return _compiled_chi_square(streams, dof.numpy() / 2.0, k, x, z)
    return _torch_chi_square(streams, dof, k, x, z)


def _compiled_chi_square(streams, half_dof: np.ndarray, k: int, x, z) -> torch.Tensor:
    """Run the attempts in the compiled transform.

    Apart from a variate whose attempts all fail (probability below 4e-11),
    this calls no torch operation, so it can run on the prefetch thread.
    """
    attempts = GAMMA_ATTEMPTS
    q = half_dof.shape[0]
    z_rows = z.numpy().reshape(-1, attempts + 1)
    out = np.empty(z_rows.shape[0])
    reduced_kernel.chi_square_attempts(x.numpy().reshape(-1, attempts), z_rows, half_dof, out)
    for n in np.flatnonzero(np.isnan(out)).tolist():
        a = float(half_dof[n % q])
        a_eff = torch.tensor([a + 1.0 if a < 1.0 else a], dtype=torch.float64)
        value = float(standard_gamma(a_eff, streams.gens[n // (k * q)])[0])
        if a < 1.0:
            value *= float(scipy.special.ndtr(z_rows[n, attempts])) ** (1.0 / a)
        out[n] = 2.0 * value
    return torch.from_numpy(out).view(len(streams.gens), k, q)


def _torch_chi_square(streams, dof: torch.Tensor, k: int, x, z) -> torch.Tensor:
    """Run the attempts in torch, used while the compiled transform is not ready."""
    q = dof.numel()
    a = dof.to(torch.float64) / 2.0
    attempts = GAMMA_ATTEMPTS
    S = len(streams.gens)
    x = x.reshape(-1, attempts)
    z = z.reshape(-1, attempts + 1)
    boost = a < 1.0
    a_eff = torch.where(boost, a + 1.0, a)
    b = (a_eff - 1.0 / 3.0).repeat(S * k)
    c = 1.0 / torch.sqrt(9.0 * b)
    value = torch.empty(S * k * q, dtype=torch.float64)
    todo = torch.arange(S * k * q)
    for j in range(attempts):
        bt, ct, xt = b[todo], c[todo], x[todo, j]
        v = (1.0 + ct * xt) ** 3
        ok = v > 0
        log_v = torch.log(torch.where(ok, v, torch.ones_like(v)))
        log_u = torch.log(torch.special.ndtr(z[todo, j]))
        ok &= log_u < 0.5 * xt * xt + bt - bt * v + bt * log_v
        value[todo[ok]] = (bt * v)[ok]
        todo = todo[~ok]
        if todo.numel() == 0:
            break
    for n in todo.tolist():
        value[n] = standard_gamma(a_eff[n % q].reshape(1), streams.gens[n // (k * q)])[0]
    value = value.reshape(S, k, q)
    if bool(boost.any()):
        u = torch.special.ndtr(z[:, attempts]).reshape(S, k, q)
        value = torch.where(boost, value * u ** (1.0 / a), value)
    return 2.0 * value


def _positive_diagonal(R: torch.Tensor) -> torch.Tensor:
    """R (S, m, m) with rows flipped to a non-negative diagonal.

    This is the Cholesky factor of R^T R, the factor the numba loop takes,
    so both loops follow the same path on the same draws.
    """
    diag = torch.diagonal(R, dim1=1, dim2=2)
    return R * torch.where(diag < 0, -1.0, 1.0)[:, :, None]


def reduced_chunk(
    X: torch.Tensor, Y: torch.Tensor, T: torch.Tensor, W: torch.Tensor, lr: float,
    r: int,
) -> torch.Tensor:
    """Apply len(X) reduced steps to W = [P; F] (S, r + m, m).

    X (k, S, B, r + m) contains [X_par, A], Y (k, S, B) the labels and
    T (k, S, q, q) the transposed Bartlett factors, q = min(B, m).
    """
    B = X.shape[2]
    q = T.shape[2]
    for i in range(X.shape[0]):
        x = X[i]
        # forward: Z = X_par P + A F
        Z = torch.bmm(x, W)
        norm2 = ordered_sum((W * W).flatten(1))
        res = (Z * Z).sum(dim=2) - norm2[:, None] - Y[i]
        v = Z * (res[:, :, None] * (2.0 / B))
        # update of [P; F~]: the same linear step as the full path
        shrink = 1.0 + ordered_sum(res) * (2.0 * lr / B)
        W = torch.baddbmm(W * shrink[:, None, None], x.transpose(1, 2), v, alpha=-lr)
        # Gram of the part that leaves span(U): Y^T Y = v^T S v. For B <= m,
        # S = T^T T with T the transposed Bartlett factor, so Y = T v. For
        # B > m, v = Q_v R_v and Q_v^T S Q_v ~ Wishart_m, so Y = T R_v.
        if q < B:
            Rv = _positive_diagonal(torch.linalg.qr(v, mode="r")[1])
            extra = torch.bmm(T[i], Rv)
        else:
            extra = torch.bmm(T[i], v)
        stacked = torch.cat([W[:, r:], lr * extra], dim=1)
        F = _positive_diagonal(torch.linalg.qr(stacked, mode="r")[1])
        W = torch.cat([W[:, :r], F], dim=1)
    return W


class ReducedSGD(OnlineSGD):
    """Online SGD on the reduced state [P; F], for d much larger than r + m.

    Requires d - r - m >= 1. The recorded risk, recovery and spectrum have
    the same law as those of :class:`quadviz.sgd.OnlineSGD` started from a
    W_0 with the same reduced state.

    NOTE: from a W_0 with two equal columns, full SGD keeps them equal (a
    saddle, risk stays high), while rounding in the factor update breaks
    the tie here and the reduced run escapes. Random W_0 are not affected.
    """

    def __init__(self, config: Config, lam: np.ndarray, W0: np.ndarray | None = None):
        r, m = len(lam), config.width
        self.n_perp = config.d - r - m
        if self.n_perp < 1:
            raise ValueError(
                f"invalid d={config.d} for reduced SGD: need d > r + width = {r + m}"
            )
        if W0 is None:
            state = bartlett_state(config.d, r, m, config.sigma0,
                                   np.random.default_rng(config.seed))
        else:
            state = reduce_state(W0, r)
        self.state0 = state
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = getattr(torch, config.dtype)
        self.r = r
        self.lam = torch.as_tensor(lam, device=self.device, dtype=self.dtype)
        self.lam64 = torch.as_tensor(lam, device=self.device, dtype=torch.float64)
        self.lam_numpy = np.asarray(lam, dtype=np.float64)  # for the numba loop
        self.lam_sum = float(lam.sum())
        W = torch.as_tensor(state, dtype=self.dtype).to(self.device)
        # W is the stacked state [P; F] of shape (S, r + m, m), so the
        # measurement code of the full path applies unchanged.
        self.W = W.unsqueeze(0).repeat(config.seeds, 1, 1).contiguous()
        self.streams = SeedStreams(config.seed, config.seeds, self.device)
        self.draws = StepDraws(self._draw)
        q = min(config.batch, m)
        if self.n_perp < q:
            raise ValueError(
                f"invalid d={config.d} for reduced SGD: need d >= r + width + "
                f"min(batch, width) = {r + m + q}"
            )
        self.q = q
        # The compiled loop needs numba and CPU tensors; tests switch it off
        # to compare it with the torch loop on the same draws.
        self.use_kernel = reduced_kernel.AVAILABLE and self.device.type == "cpu"
        self.dof = torch.tensor(
            [self.n_perp - i for i in range(q)], device=self.device, dtype=torch.float64
        )

    def step(self, n: int) -> None:
        """Take n reduced SGD steps in place, drawing in chunks of steps.

        On the CPU with numba installed, each seed's chunk runs in the
        compiled loop of :mod:`quadviz.reduced_kernel`. On CUDA or without
        numba it runs in the TorchScript loop :func:`reduced_chunk`. Both
        consume the same random numbers in the same order. Where the run may
        use two or more threads (:func:`quadviz.sgd.allowed_threads`), the
        compiled loop runs the seeds on the draw pool's threads while another
        thread draws the next chunk.
        """
        c = self.config
        B, r, m, q = c.batch, self.r, c.width, self.q
        chunk = max(1, min(n, DRAW_ELEMENTS // (B * (r + m) + q * q)))
        pool = _draw_pool() if self.use_kernel else None
        with reduced_kernel.one_blas_thread():
            if pool is not None and n > 1 and reduced_kernel.ready():
                for draws in self.draws.chunks(n, chunk, prefetch=True, ramp=True):
                    self._kernel_chunk(*self._finish_draw(*draws), pool=pool)
                return
            for draws in self.draws.chunks(n, chunk, prefetch=False, ramp=False):
                draws = self._finish_draw(*draws)
                # while the app compiles the numba loop in the background, the
                # torch loop takes the same steps instead of waiting for it
                if self.use_kernel and reduced_kernel.ready():
                    self._kernel_chunk(*draws, pool=pool)
                else:
                    self._torch_chunk(*draws)

    def _draw(self, k: int, parallel: bool = True):
        """Draw the Gaussians of k steps per seed.

        These are the batch's parts along the teacher and along span(U), the
        label noise (None without noise), the Gaussians strictly above the
        diagonal of the Bartlett factor of the Wishart part outside both,
        those behind its chi-square diagonal, and that diagonal's square
        root once the compiled transform is ready (else None). This runs on
        the prefetch thread too, so it calls no parallel torch operation
        (see the NOTE above :func:`quadviz.sgd._prefetch_pool`).
        """
        c = self.config
        B, r, m, q = c.batch, self.r, c.width, self.q
        X = self.streams.normal((k, B, r + m), self.dtype, parallel)
        noise = None
        if c.noise > 0:
            noise = self.streams.normal((k, B), self.dtype, parallel, "noise")
        upper = self.streams.normal((k, q * (q - 1) // 2), self.dtype, parallel, "wishart")
        gamma_draws = chi_square_draws(self.streams, q, k)
        chi = None
        if gamma_draws is not None and reduced_kernel.ready():
            # the compiled transform and numpy call no torch operation
            chi2 = chi_square(self.streams, self.dof, k, gamma_draws).numpy()
            chi = torch.from_numpy(np.sqrt(chi2).astype(c.dtype))
        return X, noise, upper, gamma_draws, chi

    def _finish_draw(self, X, noise, upper, gamma_draws, chi):
        """Return (X, noise, upper, chi) with the square root of the
        chi-square diagonal, unless :meth:`_draw` made it, and zero noise
        where the run has none.

        On the CPU this uses numpy: at B = r = m = 32, torch.zeros,
        torch.sqrt and a dtype conversion took 20 to 35 us each per chunk
        between the compiled loop's calls (cProfile).
        """
        c = self.config
        k = X.shape[1]
        if noise is None:
            if self.device.type == "cpu":
                noise = torch.from_numpy(np.zeros((c.seeds, k, c.batch), dtype=c.dtype))
            else:
                noise = torch.zeros((c.seeds, k, c.batch), device=self.device, dtype=self.dtype)
        if chi is None:
            chi = torch.sqrt(chi_square(self.streams, self.dof, k, gamma_draws)).to(self.dtype)
        return X, noise, upper, chi

    def _kernel_chunk(self, X, noise, upper, chi, pool=None) -> None:
        W = self.W.numpy()
        lr = float(self.config.lr)
        if not reduced_kernel.reduced_steps.signatures:
            log.info("compiling the reduced-SGD loop, or loading it from numba's "
                     "cache (about 10 s on the first run after an install)")

        def run(s: int) -> None:
            reduced_kernel.reduced_steps(
                X[s].numpy(), noise[s].numpy(), upper[s].numpy(), chi[s].numpy(),
                W[s], self.lam_numpy, lr, float(self.config.noise),
            )

        run_seeds(run, self.config.seeds, pool)

    def _torch_chunk(self, X, noise, upper, chi) -> None:
        c = self.config
        S, k, q = X.shape[0], X.shape[1], self.q
        Xr = X[..., : self.r]
        Y = (Xr * Xr) @ self.lam - self.lam_sum + c.noise * noise
        T = torch.diag_embed(chi)
        rows, cols = torch.triu_indices(q, q, offset=1, device=self.device)
        T[..., rows, cols] = upper
        # the chunk runs over steps: (S, k, ...) viewed as (k, S, ...)
        self.W = compiled(reduced_chunk)(
            X.transpose(0, 1), Y.transpose(0, 1), T.transpose(0, 1), self.W,
            c.lr, self.r,
        )
