"""Online SGD of the quadratic network in torch, several seeds at once.

Student f_W(x) = x^T W W^T x - ||W||_F^2, teacher f*(x) = x^T Q x - tr Q with
Q = diag(lambda_1..lambda_r, 0..0), per-sample loss 1/2 (f_W(x) - y)^2. One
step with a fresh batch X of shape (B, d):

    Z    = X W                                       (B, m)
    res  = rowsum(Z * Z) - ||W||_F^2 - y             (B,)
    grad = (2/B) X^T (res Z) - 2 mean(res) W         (d, m)
    W   <- W - lr grad

All seeds share W_0 and differ in their batches, so the spread across seeds
is the SGD noise alone. Each seed draws from its own generator, so seed i's
run is the same whether 1 or 8 seeds run together. t = lr * step is the time of the population flow.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from quadviz import gaussian, reduced_kernel, sgd_kernel
from quadviz.config import Config
from quadviz.result import OVERLAP_DIRECTIONS, Trajectory
from quadviz.theory import lr_stability_limit

log = logging.getLogger(__name__)

# A run is called diverged once its risk exceeds this multiple of the initial
# risk (plus one), or once any weight is not finite.
DIVERGENCE_FACTOR = 1e4
# Steps between two divergence checks when output times are far apart,
# unless fewer steps draw 4 DRAW_ELEMENTS numbers per seed. Each check is a
# step() call with about 0.1 ms of fixed cost: at B = 1, d = 8, m = 1 a run of
# 2 * 10^6 steps took 1.82 s with checks every 256 steps, 0.59 s every 4096.
CHECK_INTERVAL = 4096
# Gaussian numbers drawn per seed and call (4 MB in float32): large enough
# to hide the per-call cost at B = 1. Chunk sizes depend on one seed's
# numbers per step only, so seed i draws the same numbers in the same calls
# whether 1 or 8 seeds run together.
DRAW_ELEMENTS = 1 << 20


def resolve_device(name: str) -> torch.device:
    """torch device for "auto", "cpu" or "cuda"; "auto" takes CUDA if present."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("invalid device='cuda': no CUDA device is available here")
    return torch.device(name)


def initial_weights(config: Config) -> np.ndarray:
    """W_0 of shape (d, m) with i.i.d. N(0, sigma0^2 / d) entries, float64.

    Drawn on the CPU from ``config.seed`` alone, so SGD on any device and the
    population flow start from the same matrix.
    """
    gen = torch.Generator().manual_seed(config.seed)
    W0 = torch.randn(config.d, config.width, generator=gen, dtype=torch.float64)
    return (W0 * (config.sigma0 / math.sqrt(config.d))).numpy()


def log_steps(num_steps: int, points: int) -> np.ndarray:
    """Output steps: 0 and about ``points`` log-spaced steps up to num_steps."""
    grid = np.unique(np.round(np.geomspace(1, num_steps, points)).astype(np.int64))
    return np.concatenate([[0], grid])


def population_risk(
    W: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Exact risk, recovery and W^T W spectrum for W of shape (S, d, m).

    Risk ||M - Q||_F^2 = ||P P^T - Lambda||^2 + 2 tr(P G P^T) + ||G||^2 with
    P = W[:r] and G = W_perp^T W_perp. Every term is a sum of squares or of
    a positive quadratic form, so small risks keep full relative precision,
    unlike ||W^T W||^2 - 2 sum lambda_j ||W_j||^2 + ||lambda||^2. Computed in
    float64.
    """
    W = W.double()
    r = lam.shape[0]
    P, Wp = W[:, :r], W[:, r:]
    G = Wp.transpose(1, 2) @ Wp
    top = P @ P.transpose(1, 2) - torch.diag(lam)
    cross = ((P @ G) * P).sum(dim=(1, 2))
    risk = (top * top).sum(dim=(1, 2)) + 2.0 * cross + (G * G).sum(dim=(1, 2))
    recovery = (P * P).sum(dim=2) / lam
    gram = P.transpose(1, 2) @ P + G
    spectrum = torch.linalg.eigvalsh(gram).flip(-1)
    return risk, recovery, spectrum


def ordered_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum x (S, n) over its last dimension in an order fixed by n alone.

    torch splits one reduction of more than 32768 numbers (its grain size)
    over its threads, so the rounding of a long sum would depend on the
    thread count, and a seed's run on how many seeds run beside it. Sums of
    4096-number blocks stay on one thread each.
    """
    n = x.shape[1]
    if n <= 32768:
        # at most one grain per row: torch sums each row on one thread
        return x.sum(dim=1)
    full = n - n % 4096
    total = x[:, full:].sum(dim=1)
    if full > 0:
        blocks = x[:, :full].reshape(x.shape[0], full // 4096, 4096)
        total = total + blocks.sum(dim=2).sum(dim=1)
    return total


def sgd_chunk(X: torch.Tensor, Y: torch.Tensor, W: torch.Tensor, lr: float) -> torch.Tensor:
    """Apply len(X) SGD steps to W (S, d, m) and return the new W.

    X (k, S, B, d) contains the batches and Y (k, S, B) their labels.
    """
    B = X.shape[2]
    # the steps update one copy of W in place, so no step allocates a new W
    W = W.clone()
    for i in range(X.shape[0]):
        x = X[i]
        # forward: residual of the centred quadratic student, Z is (S, B, m)
        Z = torch.bmm(x, W)
        norm2 = ordered_sum((W * W).flatten(1))
        res = (Z * Z).sum(dim=2) - norm2[:, None] - Y[i]
        # update: W <- (1 + 2 lr mean(res)) W - (2 lr / B) X^T (res Z)
        shrink = 1.0 + ordered_sum(res) * (2.0 * lr / B)
        Z.mul_(res[:, :, None])
        W.mul_(shrink[:, None, None])
        W.baddbmm_(x.transpose(1, 2), Z, alpha=-2.0 * lr / B)
    return W


_COMPILED: dict = {}


def compiled(fn):
    """TorchScript version of ``fn``, or ``fn`` itself where scripting fails.

    Scripting removes the Python interpreter from the per-step loop: at
    B = 1, d = 256, m = 16 a step took 46 us instead of 68 us (2 busy
    cores, torch 2.13 CPU).
    """
    if fn not in _COMPILED:
        try:
            # torch.jit.script warns that it is deprecated as of torch 2.10
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                _COMPILED[fn] = torch.jit.script(fn)
        except Exception as err:  # TorchScript is optional; fall back to Python
            log.info("TorchScript unavailable for %s: %s", fn.__name__, err)
            _COMPILED[fn] = fn
    return _COMPILED[fn]


def _run_chunk():
    return compiled(sgd_chunk)


_POOL: list[ThreadPoolExecutor] = []
_PREFETCH: list[ThreadPoolExecutor] = []

# Multiply-adds per step (seeds * B * d * m) below which full SGD on a CPU
# with two or more threads computes TorchScript chunks on one thread and
# draws the next chunk on another. With the counter-based generator a draw
# is cheap, so this pays only for small steps. At B = 8, d = 512, m = 64 a
# step took 39 us with the overlap and 44 us without, at B = 32 (2^20
# multiply-adds) 83 us with it and 67 us without. The compiled loop always
# overlaps, because it computes on one thread per seed anyway.
PIPELINE_STEP_WORK = 1 << 19



# NOTE: work sent to the prefetch thread and the draw pool must not call torch
# operations that can run in parallel (element-wise kernels, products,
# conversions of large tensors). Once a second long-lived thread has entered
# an OpenMP region, every small product of the main thread became about five
# times slower for the rest of the process: the bmm pair of a step at B = 32,
# d = 512, m = 64 went from 45 us to 225 us. OMP_WAIT_POLICY=passive gives the
# same slow products, so libgomp's workers have probably stopped spinning.


def _prefetch_pool() -> ThreadPoolExecutor:
    """Return the one-thread pool that draws the next chunk of batches."""
    if not _PREFETCH:
        _PREFETCH.append(ThreadPoolExecutor(max_workers=1, thread_name_prefix="draw"))
    return _PREFETCH[0]


def _split_steps(draws, k: int):
    """Split a draw into its first k steps and the rest, along dimension 1
    of every tensor in it."""

    def part(item, steps: slice):
        if isinstance(item, torch.Tensor):
            return item[:, steps]
        if isinstance(item, tuple):
            return tuple(part(x, steps) for x in item)
        return item

    return part(draws, slice(None, k)), part(draws, slice(k, None))


class StepDraws:
    """Hand out the random draws of consecutive steps in chunks.

    ``draw(k, parallel)`` returns the draws of the next k steps: a tuple of
    tensors, tuples of tensors and None, each tensor with the step axis at
    dimension 1, and the batch X of shape (S, k, ...) first. With
    ``prefetch``, the prefetch thread draws the next chunk while the caller
    works on the current one. Only the caller and the prefetch thread draw,
    and never at the same time, because a draw is awaited before the next
    one is submitted.

    With ``ramp`` the chunks start at chunk // 8 steps and double, so the
    caller waits only for a small first draw, and after a call's last
    chunk the prefetch thread draws the first chunk of the next call. A
    later call takes those steps first, split if it needs fewer. Only
    counter-based streams may ramp, because their numbers do not depend on
    the chunks. Without it, a call's chunks are ``chunk`` steps long, as
    without prefetch.
    """

    def __init__(self, draw):
        self.draw = draw
        # a Future or the draws of the steps that come next, or None
        self.ahead = None

    def chunks(self, n: int, chunk: int, prefetch: bool, ramp: bool):
        """Yield the draws of n steps in chunks of at most ``chunk`` steps."""
        first = max(1, chunk // 8) if ramp else chunk
        size = first
        while n > 0:
            draws = self._next(min(size, n))
            k = draws[0].shape[1]
            if k > n:
                draws, self.ahead = _split_steps(draws, n)
                k = n
            n -= k
            size = min(2 * k, chunk) if ramp else chunk
            if prefetch and self.ahead is None and (n > 0 or ramp):
                self.ahead = _prefetch_pool().submit(self.draw, min(size, n) if n else first,
                                                     False)
            yield draws

    def _next(self, size: int):
        ahead, self.ahead = self.ahead, None
        if ahead is None:
            return self.draw(size, True)
        if isinstance(ahead, Future):
            return ahead.result()
        return ahead


# The thread count from before torch_threads_for limited torch, per thread.
_THREADS = threading.local()


def allowed_threads() -> int:
    """Return the threads this computation may use.

    That is torch's thread count, or inside :func:`torch_threads_for` the
    count before it limited torch to one thread for small steps. The draw
    pool and the prefetch thread may use the difference.
    """
    return getattr(_THREADS, "allowed", None) or torch.get_num_threads()


def run_seeds(run, seeds: int, pool: ThreadPoolExecutor | None) -> None:
    """Call run(s) for every seed s, on the pool's threads where there is one.

    The compiled loops release the GIL, so seeds on different threads run
    at once.
    """
    if pool is None or seeds == 1:
        for s in range(seeds):
            run(s)
    else:
        list(pool.map(run, range(seeds)))


def _draw_pool() -> ThreadPoolExecutor | None:
    """Threads for drawing several seeds' numbers at once, or None.

    Filling different seeds, or parts of one draw, from different threads
    uses the other cores, because the generator releases the GIL. None when
    the computation may use one thread only, as in the hosted app.
    """
    threads = allowed_threads()
    if threads <= 1:
        return None
    if not _POOL or _POOL[0]._max_workers != threads:
        _POOL[:] = [ThreadPoolExecutor(max_workers=threads)]
    return _POOL[0]


# Below this many multiply-adds per step, SGD runs torch on one thread: the
# kernels are then too small to split, and on a busy 2-core machine idle
# OpenMP workers made each small kernel up to 100 times slower.
SMALL_STEP_WORK = 1 << 18


@contextmanager
def torch_threads_for(work_per_step: int):
    """Limit torch to one thread while the per-step work is small.

    :func:`allowed_threads` still returns the count from before the limit.
    """
    # NOTE: torch.set_num_threads also sets the count of every thread that
    # first uses torch afterwards. In an app with QUADVIZ_TORCH_THREADS of 2
    # or more, a session starting while another is inside this limit runs on
    # one thread. The default of 1 is not affected.
    before = torch.get_num_threads()
    if work_per_step >= SMALL_STEP_WORK or before == 1:
        yield
        return
    torch.set_num_threads(1)
    _THREADS.allowed = before
    try:
        yield
    finally:
        _THREADS.allowed = None
        torch.set_num_threads(before)


# A CPU draw of at least this many numbers per part is split over the draw
# pool's threads: about 60 us of work per part, against an estimated 20 us
# to hand a part to a thread. The numbers do not depend on the split.
SPLIT_MIN_NUMBERS = 1 << 17


# Draw arrays kept per stream and dtype for reuse: one for the chunk being
# computed, one for the chunk being drawn, one spare.
BUFFERS_PER_STREAM = 3

# Names of the counter-based streams each seed has on the CPU. Each kind of
# draw has its own stream, so number n of a kind belongs to the same step
# however the steps are grouped into chunks.
STREAMS = ("batch", "noise", "wishart", "gamma_normal", "gamma_uniform")


class SeedStreams:
    """Random streams per seed, so seed i's run does not depend on how many
    seeds run beside it, and draws can run on several threads.

    On the CPU each seed's Gaussians come from the counter-based generator
    of :mod:`quadviz.gaussian`, with float32 numbers upcast for float64
    runs. It draws about six times faster than torch's CPU generator, a
    draw's parts can go to different threads without changing the numbers,
    and each name in :data:`STREAMS` is a separate stream. On CUDA, and on a
    CPU without numba, all draws of a seed come from one torch generator, so
    those runs differ from runs with numba and depend on the chunk sizes.
    ``gens`` contains a torch generator per seed on either device.
    """

    def __init__(self, seed: int, seeds: int, device: torch.device):
        self.device = device
        states = np.random.SeedSequence(seed).spawn(seeds)
        self.gens = [self._generator(st) for st in states]
        self.counters = None
        if device.type == "cpu" and gaussian.AVAILABLE:
            self.counters = [
                dict(zip(STREAMS, map(gaussian.stream_constants, st.spawn(len(STREAMS)))))
                for st in states
            ]
            self.offsets = {name: 0 for name in STREAMS}
            self._buffers: dict[tuple[str, str], list[np.ndarray]] = {}

    def _generator(self, state: np.random.SeedSequence) -> torch.Generator:
        seed = int(state.generate_state(1)[0])
        return torch.Generator(device=self.device).manual_seed(seed)

    def normal(
        self, shape: tuple[int, ...], dtype: torch.dtype, parallel: bool = True,
        stream: str = "batch",
    ) -> torch.Tensor:
        """Return standard Gaussians of shape (seeds, *shape) from ``stream``.

        With ``parallel`` a CPU draw is split over the draw pool where one
        exists. The numbers are the same either way.
        """
        seeds = len(self.gens)
        if self.counters is None:
            out = torch.empty((seeds, *shape), device=self.device, dtype=dtype)
            for i, gen in enumerate(self.gens):
                torch.randn(shape, generator=gen, out=out[i])
            return out
        numbers = math.prod(shape)
        flat = self._buffer(stream, seeds * numbers, np.float32).reshape(seeds, numbers)
        out = torch.from_numpy(flat).view(seeds, *shape)
        pool = _draw_pool() if parallel else None
        parts = 1
        if pool is not None:
            parts = max(1, min(pool._max_workers, numbers // SPLIT_MIN_NUMBERS))
        bounds = [numbers * j // parts for j in range(parts + 1)]
        tasks = [(i, j) for i in range(seeds) for j in range(parts)]
        offset = self.offsets[stream]

        def fill(task: tuple[int, int]) -> None:
            i, j = task
            key, gamma = self.counters[i][stream]
            lo, hi = bounds[j], bounds[j + 1]
            gaussian.fill(flat[i, lo:hi], key, gamma, offset + lo)

        if pool is None or len(tasks) == 1:
            for task in tasks:
                fill(task)
        else:
            list(pool.map(fill, tasks))
        self.offsets[stream] = offset + numbers
        if dtype == torch.float32:
            return out
        if dtype == torch.float64:
            # numpy converts on this thread, where torch's copy could start OpenMP
            wide = self._buffer(stream, seeds * numbers, np.float64)
            np.copyto(wide, flat.reshape(-1))
            return torch.from_numpy(wide).view(seeds, *shape)
        return out.to(dtype)

    def _buffer(self, stream: str, size: int, dtype) -> np.ndarray:
        """Return a 1-D array of ``size`` numbers that no earlier draw still uses.

        Draws reuse up to BUFFERS_PER_STREAM arrays per stream and dtype.
        A fresh array of a few MB comes from mmap, and writing it faults in
        every page again: with fresh arrays a reduced step at B = r = m = 32
        took 19 to 20 us with 3 page faults, with reused ones 14 to 15 us
        and none (repeated step(600) calls on the 2-core VM). An array is
        free again when only this cache refers to it, which CPython's
        reference count shows. A caller that still refers to an earlier
        draw, or to a view of it, keeps its array busy.
        """
        cache = self._buffers.setdefault((stream, np.dtype(dtype).str), [])
        # references to a free array: the list and getrefcount's argument
        free = [i for i in range(len(cache)) if sys.getrefcount(cache[i]) == 2]
        if not free:
            if len(cache) == BUFFERS_PER_STREAM:
                return np.empty(size, dtype)
            cache.append(np.empty(size, dtype))
            free = [len(cache) - 1]
        best = max(free, key=lambda i: cache[i].shape[0])
        if cache[best].shape[0] < size:
            cache[best] = np.empty(size, dtype)
        return cache[best][:size]


class OnlineSGD:
    """Full d-dimensional online SGD for ``config.seeds`` seeds together."""

    def __init__(self, config: Config, lam: np.ndarray, W0: np.ndarray):
        config.check_sgd_memory()
        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = getattr(torch, config.dtype)
        self.r = lam.shape[0]
        self.lam = torch.as_tensor(lam, device=self.device, dtype=self.dtype)
        self.lam64 = torch.as_tensor(lam, device=self.device, dtype=torch.float64)
        self.lam_sum = float(lam.sum())
        W = torch.as_tensor(W0, dtype=self.dtype).to(self.device)
        self.W = W.unsqueeze(0).repeat(config.seeds, 1, 1).contiguous()
        self.streams = SeedStreams(config.seed, config.seeds, self.device)
        self.draws = StepDraws(self._draw)
        # ||W||^2 per seed as the compiled loop left it, NaN where unknown
        self._norms = np.full(config.seeds, np.nan)
        # tests switch the compiled loop off to compare it with TorchScript
        self.use_kernel = (self.device.type == "cpu"
                           and sgd_kernel.uses_loop(config.batch, config.d, config.width))

    def step(self, n: int) -> None:
        """Take n SGD steps in place.

        Batches for up to DRAW_ELEMENTS numbers per seed are drawn in one
        call, with the labels for all of them in one matrix product. The
        steps of a chunk then run inside one call: the compiled loop of
        :mod:`quadviz.sgd_kernel` for small steps on a CPU once it is
        compiled, else the TorchScript chunk. Where the run may use two or
        more threads (:func:`allowed_threads`), the compiled loop (one thread
        per seed) and the TorchScript chunk at small steps (one torch thread)
        compute while another thread draws the next chunk. All orders consume
        the same numbers.
        """
        c = self.config
        B, d = c.batch, c.d
        chunk = max(1, min(n, DRAW_ELEMENTS // (B * d)))
        work = c.seeds * B * d * c.width
        kernel = self.use_kernel and reduced_kernel.part_ready("sgd_kernel")
        pipelined = (self.device.type == "cpu" and n > 1 and allowed_threads() > 1
                     and (kernel or work < PIPELINE_STEP_WORK))
        with reduced_kernel.one_blas_thread():
            if pipelined:
                self._step_pipelined(n, chunk, kernel)
                return
            for draws in self.draws.chunks(n, chunk, prefetch=False, ramp=False):
                self._apply(*draws, kernel=kernel)

    def _draw(self, k: int, parallel: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Draw k fresh Gaussian batches per seed, (S, k, B, d), and their
        label noise (S, k, B), or None without noise.

        This runs on the prefetch thread too, so it must not call a torch
        operation that can start OpenMP threads (see the NOTE above
        :func:`_prefetch_pool`).
        """
        c = self.config
        X = self.streams.normal((k, c.batch, c.d), self.dtype, parallel)
        noise = None
        if c.noise > 0:
            noise = self.streams.normal((k, c.batch), self.dtype, parallel, "noise")
        return X, noise

    def _apply(self, X: torch.Tensor, noise: torch.Tensor | None, kernel: bool = False) -> None:
        """Label the batches and run their steps as one chunk, in the
        compiled loop if ``kernel`` is True."""
        Xr = X[..., : self.r]
        Y = (Xr * Xr) @ self.lam - self.lam_sum
        if noise is not None:
            Y += self.config.noise * noise
        if kernel:
            self._kernel_chunk(X, Y)
            return
        # the chunk runs over steps: (S, k, ...) viewed as (k, S, ...)
        self.W = _run_chunk()(X.transpose(0, 1), Y.transpose(0, 1), self.W,
                              self.config.lr)
        self._norms[:] = np.nan

    def _kernel_chunk(self, X: torch.Tensor, Y: torch.Tensor) -> None:
        """Run one chunk per seed in the compiled loop, seeds on the draw
        pool's threads where there is one."""
        W = self.W.numpy()
        lr = float(self.config.lr)

        def run(s: int) -> None:
            norm2 = self._norms[s]
            self._norms[s] = sgd_kernel.full_steps(X[s].numpy(), Y[s].numpy(), W[s], lr, norm2)

        run_seeds(run, self.config.seeds, _draw_pool())

    def _step_pipelined(self, n: int, chunk: int, kernel: bool) -> None:
        """Run the chunks on one torch thread while the next one is drawn."""
        ramp = self.streams.counters is not None
        # no work per step limits torch to one thread, and allowed_threads()
        # keeps the count from before, for the compiled loop's seeds
        with torch_threads_for(0):
            for draws in self.draws.chunks(n, chunk, prefetch=True, ramp=ramp):
                self._apply(*draws, kernel=kernel)

    def measure(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Risk (S,), recovery (S, r), spectrum (S, m), overlap (k, k) of seed 0."""
        risk, recovery, spectrum = population_risk(self.W, self.lam64)
        k = min(self.r, OVERLAP_DIRECTIONS)
        P0 = self.W[0, :k].double()
        overlap = P0 @ P0.T
        return tuple(x.cpu().numpy() for x in (risk, recovery, spectrum, overlap))

    def run(self, progress=None) -> Trajectory:
        """Run to ``config.num_steps``, measuring on a log-spaced step grid.

        A non-finite weight or a risk above DIVERGENCE_FACTOR times its start
        ends the run with status "diverged"; the arrays then stop at the last
        finite measurement.
        """
        c = self.config
        steps = log_steps(c.num_steps, c.points)
        rows: list[tuple] = []
        done = 0
        status, message = "ok", ""
        work = c.seeds * c.batch * self.W.shape[1] * c.width
        # Call progress at least every 4 DRAW_ELEMENTS drawn numbers per seed,
        # so a caller that stops in the callback is not held off for seconds
        # by CHECK_INTERVAL steps of a large batch. Four chunks per call leave room for
        # drawing the next chunk while one runs.
        per_step = c.batch * self.W.shape[1]
        interval = max(1, min(CHECK_INTERVAL, 4 * DRAW_ELEMENTS // per_step))
        with torch.no_grad(), torch_threads_for(work):
            for target in steps:
                while done < target:
                    n = min(target - done, interval)
                    self.step(n)
                    done += n
                    if not bool(torch.isfinite(self.W).all()):
                        status = "diverged"
                        break
                    if progress is not None:
                        progress(done / c.num_steps, f"SGD step {done}")
                if status == "ok":
                    try:
                        rows.append(self.measure())
                    except torch.linalg.LinAlgError as err:
                        # W is finite but W^T W overflowed, so eigvalsh failed
                        log.info("risk measurement failed at step %d: %s", done, err)
                        status = "diverged"
                if status == "ok":
                    limit = DIVERGENCE_FACTOR * (1.0 + float(rows[0][0].max()))
                    if not np.all(np.isfinite(rows[-1][0])) or rows[-1][0].max() > limit:
                        status = "diverged"
                        rows.pop()
                if status == "diverged":
                    limit = lr_stability_limit(c.d, c.batch, self.lam64.cpu().numpy())
                    message = (
                        f"SGD diverged by step {done} (t = {done * c.lr:.3g}) "
                        f"with lr = {c.lr:.3g}; the estimated stability limit "
                        f"is lr < {limit:.3g}"
                    )
                    log.warning(message)
                    break
        return self._trajectory(steps[: len(rows)], rows, status, message)

    def _trajectory(self, steps, rows, status, message) -> Trajectory:
        c = self.config
        risk, recovery, spectrum, overlap = (np.stack(x) for x in zip(*rows))
        return Trajectory(
            method="sgd",
            time=steps * c.lr,
            risk=risk.T,
            recovery=recovery.transpose(1, 0, 2),
            spectrum=spectrum.transpose(1, 0, 2),
            overlap=overlap,
            step=steps,
            samples=steps * c.batch,
            status=status,
            message=message,
            info={"device": str(self.device)},
        )
