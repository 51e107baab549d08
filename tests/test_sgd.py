"""Online SGD: gradient against autograd, exact risk against Monte Carlo,
small-step SGD against the exact flow, reproducibility and divergence."""

import threading

import numpy as np
import pytest
import torch
from scipy.stats import ks_2samp

from quadviz import sgd_kernel
from quadviz.config import Config
from quadviz.experiment import simulate
from quadviz.reduced_sgd import ReducedSGD
from quadviz.sgd import (
    SPLIT_MIN_NUMBERS,
    OnlineSGD,
    SeedStreams,
    StepDraws,
    initial_weights,
    population_risk,
)
from quadviz.teacher import spectrum, teacher_labels

FLOW_GAP = 0.05  # SGD seed mean against the flow, relative, at lr * d / B = 0.005


@pytest.mark.parametrize("use_kernel", [True, False], ids=["numba", "torchscript"])
def test_sgd_step_matches_autograd(use_kernel):
    config = Config.create(
        d=20,
        r=3,
        width=4,
        batch=7,
        seeds=2,
        lr=0.01,
        dtype="float64",
        device="cpu",
        noise=0.3,
    )
    lam = spectrum(3, 1.0)
    W0 = np.random.default_rng(0).standard_normal((20, 4)) * 0.4
    runner = OnlineSGD(config, lam, W0)
    runner.use_kernel = use_kernel and runner.use_kernel
    runner.step(1)
    W_hand = runner.W.clone()

    # replay each seed's batch and noise from fresh streams of the same seed,
    # and differentiate the loss with autograd
    replay = SeedStreams(config.seed, config.seeds, torch.device("cpu"))
    X = replay.normal((1, 7, 20), torch.float64)[:, 0]
    noise = replay.normal((1, 7), torch.float64, stream="noise")[:, 0]
    lam_t = torch.as_tensor(lam)
    y = (X[:, :, :3] ** 2 - 1.0) @ lam_t + 0.3 * noise
    W = torch.as_tensor(W0).repeat(2, 1, 1).requires_grad_(True)
    f = ((X @ W) ** 2).sum(dim=2) - (W * W).sum(dim=(1, 2))[:, None]
    loss = (0.5 * (f - y) ** 2).mean(dim=1).sum()
    loss.backward()
    W_auto = W.detach() - 0.01 * W.grad
    torch.testing.assert_close(W_hand, W_auto, rtol=1e-12, atol=1e-12)


def test_seed_streams_split_draw():
    """A split draw does not depend on threads or on the other seeds, and
    consecutive draws continue one stream."""
    shape = (4, 128, 512)
    assert np.prod(shape) >= 2 * SPLIT_MIN_NUMBERS
    threads = torch.get_num_threads()
    draws = {}
    try:
        for n_threads in (1, 2):
            torch.set_num_threads(n_threads)
            draws[n_threads] = SeedStreams(5, 3, torch.device("cpu")).normal(shape, torch.float32)
    finally:
        torch.set_num_threads(threads)
    alone = SeedStreams(5, 1, torch.device("cpu")).normal(shape, torch.float32)
    assert torch.equal(draws[1], draws[2])
    assert torch.equal(draws[1][:1], alone)
    in_two = SeedStreams(5, 1, torch.device("cpu"))
    first = in_two.normal((1000,), torch.float32)
    second = in_two.normal((np.prod(shape) - 1000,), torch.float32)
    assert torch.equal(torch.cat([first, second], dim=1), alone.reshape(1, -1))
    flat = draws[1][0].reshape(-1)
    half = flat.numel() // 2
    assert not torch.equal(flat[:half], flat[half:])
    assert not torch.equal(draws[1][0], draws[1][1])
    assert abs(float(flat.mean())) < 0.02
    assert abs(float(flat.std()) - 1.0) < 0.02
    as64 = SeedStreams(5, 1, torch.device("cpu")).normal(shape, torch.float64)
    assert as64.dtype == torch.float64
    assert torch.equal(as64.float(), alone)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_seed_streams_reuse_only_free_buffers(dtype):
    """A draw the caller still holds, or a view of it, keeps its numbers
    while later draws reuse the arrays of released ones."""
    streams = SeedStreams(7, 2, torch.device("cpu"))
    reference = SeedStreams(7, 2, torch.device("cpu"))
    held_draw = streams.normal((60, 30), dtype)
    view = streams.normal((60, 30), dtype)[:, 10:]
    expected_held = reference.normal((60, 30), dtype)
    expected_view = reference.normal((60, 30), dtype)[:, 10:]
    pointers = set()
    for size in (50, 10, 50, 35, 50):
        draw = streams.normal((size, 30), dtype)
        assert torch.equal(draw, reference.normal((size, 30), dtype))
        pointers.add(draw.data_ptr())
        del draw
    assert torch.equal(held_draw, expected_held)
    assert torch.equal(view, expected_view)
    # released draws share one array instead of a fresh one per draw
    assert len(pointers) < 5
    assert held_draw.data_ptr() not in pointers


def test_seed_streams_without_numba_use_torch(monkeypatch):
    from quadviz import gaussian

    monkeypatch.setattr(gaussian, "AVAILABLE", False)
    streams = SeedStreams(5, 2, torch.device("cpu"))
    assert streams.counters is None
    draw = streams.normal((200, 500), torch.float64)
    again = SeedStreams(5, 2, torch.device("cpu")).normal((200, 500), torch.float64)
    assert draw.dtype == torch.float64
    assert torch.equal(draw, again)
    assert not torch.equal(draw[0], draw[1])
    assert abs(float(draw.mean())) < 0.01
    assert abs(float(draw.std()) - 1.0) < 0.01


@pytest.mark.parametrize("dof", [1, 2, 3, 7, 4000])
def test_counter_chi_square_matches_scipy(dof):
    from scipy.stats import chi2, kstest

    from quadviz.reduced_sgd import chi_square

    streams = SeedStreams(2, 2, torch.device("cpu"))
    draws = chi_square(streams, torch.full((4,), float(dof), dtype=torch.float64), 5000)
    assert draws.shape == (2, 5000, 4)
    # The stream is fixed, so the check is deterministic: p > 1e-3 on 40000 draws.
    assert kstest(draws.reshape(-1).numpy(), chi2(dof).cdf).pvalue > 1e-3


def test_counter_chi_square_fallback_after_rejections(monkeypatch):
    """Variates whose counter attempts are all rejected come from torch."""
    from scipy.stats import chi2, kstest

    from quadviz import reduced_sgd

    calls = []
    gamma = reduced_sgd.standard_gamma

    def spy(shape, gen):
        calls.append(shape.numel())
        return gamma(shape, gen)

    monkeypatch.setattr(reduced_sgd, "GAMMA_ATTEMPTS", 1)
    monkeypatch.setattr(reduced_sgd, "standard_gamma", spy)
    streams = SeedStreams(3, 2, torch.device("cpu"))
    draws = reduced_sgd.chi_square(streams, torch.full((4,), 1.0, dtype=torch.float64), 3000)
    assert len(calls) > 10
    assert kstest(draws.reshape(-1).numpy(), chi2(1).cdf).pvalue > 1e-3


def test_compiled_chi_square_matches_torch(monkeypatch):
    """The compiled transform and the torch one accept the same attempts."""
    from quadviz import reduced_kernel
    from quadviz.reduced_sgd import chi_square

    if not reduced_kernel.ready():
        pytest.skip("the compiled transform is not loaded")
    dof = torch.tensor([1.0, 2.0, 3.0, 30.0, 4000.0], dtype=torch.float64)
    compiled = chi_square(SeedStreams(5, 2, torch.device("cpu")), dof, 3000)
    monkeypatch.setattr(reduced_kernel, "ready", lambda: False)
    plain = chi_square(SeedStreams(5, 2, torch.device("cpu")), dof, 3000)
    torch.testing.assert_close(compiled, plain, rtol=1e-11, atol=0.0)


def _counting_draw(sizes):
    """Return a draw of k steps whose batch numbers its steps from 0."""
    counter = [0]

    def draw(k, parallel):
        sizes.append(k)
        steps = torch.arange(counter[0], counter[0] + k, dtype=torch.float64)
        counter[0] += k
        return steps.reshape(1, k, 1), None

    return draw


@pytest.mark.parametrize("prefetch", [True, False])
def test_step_draws_ramp_and_draw_ahead(prefetch):
    from quadviz.sgd import StepDraws

    sizes = []
    draws = StepDraws(_counting_draw(sizes))
    chunk_steps = [X.shape[1] for X, _ in draws.chunks(256, 256, prefetch=prefetch, ramp=True)]
    assert chunk_steps == [32, 64, 128, 32]
    if prefetch:
        # the first chunk of the next call is drawn ahead
        draws.ahead.result()
        assert sizes == [32, 64, 128, 32, 32]
    # a later call takes the steps drawn ahead first, split where it needs fewer
    steps = [X.reshape(-1).tolist() for X, _ in draws.chunks(10, 80, prefetch, ramp=True)]
    assert sum(steps, []) == list(range(256, 266))
    steps = [X.reshape(-1).tolist() for X, _ in draws.chunks(100, 80, prefetch, ramp=True)]
    assert sum(steps, []) == list(range(266, 366))
    assert max(len(chunk) for chunk in steps) <= 80


def test_step_draws_without_ramp_keep_chunks():
    """Streams whose numbers depend on the chunks get the same chunks with
    and without prefetch."""
    from quadviz.sgd import StepDraws

    for prefetch in (True, False):
        sizes = []
        draws = StepDraws(_counting_draw(sizes))
        chunk_steps = [X.shape[1] for X, _ in draws.chunks(200, 64, prefetch, ramp=False)]
        assert chunk_steps == [64, 64, 64, 8]
        assert sizes == [64, 64, 64, 8]


def test_counter_chi_square_independent_of_chunks():
    from quadviz.reduced_sgd import chi_square

    dof = torch.tensor([2.0, 30.0, 500.0], dtype=torch.float64)
    whole = chi_square(SeedStreams(4, 2, torch.device("cpu")), dof, 25)
    streams = SeedStreams(4, 2, torch.device("cpu"))
    parts = torch.cat([chi_square(streams, dof, 10), chi_square(streams, dof, 15)], dim=1)
    assert torch.equal(whole, parts)


@pytest.mark.parametrize("method", ["full", "reduced"])
def test_sgd_run_independent_of_chunks(method):
    """Step n uses the same numbers however the steps form chunks, label
    noise included, so a seed's run does not depend on the output grid."""
    config = Config.create(d=3000, r=3, width=4, batch=16, steps=100, seeds=2, noise=0.3,
                           lr=2e-4, dtype="float64", device="cpu", method=method)
    lam = spectrum(3, 1.0)
    runners = []
    for splits in ([100], [37, 63], [1, 50, 49]):
        runner = ReducedSGD(config, lam) if method == "reduced" else OnlineSGD(
            config, lam, initial_weights(config))
        for n in splits:
            runner.step(n)
        runners.append(runner.W)
    torch.testing.assert_close(runners[1], runners[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(runners[2], runners[0], rtol=1e-12, atol=1e-14)


def test_population_risk_matches_monte_carlo():
    rng = np.random.default_rng(1)
    d, r, m, n = 12, 3, 5, 400_000
    lam = spectrum(r, 0.8)
    W = rng.standard_normal((d, m)) * 0.3
    risk, _, _ = population_risk(torch.as_tensor(W)[None], torch.as_tensor(lam))
    X = rng.standard_normal((n, d))
    f_student = np.sum((X @ W) ** 2, axis=1) - np.sum(W * W)
    loss = 0.5 * (f_student - teacher_labels(X, lam)) ** 2
    stderr = loss.std() / np.sqrt(n)
    assert abs(float(risk[0]) - loss.mean()) < 5 * stderr


def test_population_risk_recovery_and_spectrum():
    rng = np.random.default_rng(2)
    d, r, m = 10, 4, 3
    lam = spectrum(r, 1.0)
    W = rng.standard_normal((d, m))
    risk, rec, spec = population_risk(torch.as_tensor(W)[None], torch.as_tensor(lam))
    Q = np.zeros((d, d))
    Q[np.arange(r), np.arange(r)] = lam
    assert float(risk[0]) == pytest.approx(np.sum((W @ W.T - Q) ** 2), rel=1e-12)
    np.testing.assert_allclose(rec[0].numpy(), np.sum(W[:r] ** 2, axis=1) / lam)
    np.testing.assert_allclose(spec[0].numpy(), np.linalg.eigvalsh(W.T @ W)[::-1])


@pytest.mark.slow
def test_small_step_sgd_tracks_flow():
    config = Config.create(
        d=128,
        r=4,
        width=4,
        batch=128,
        lr=0.005,
        t_max=6.0,
        seeds=8,
        points=20,
        sigma0=0.3,
        device="cpu",
        method="full",
    )
    exp = simulate(config)
    assert exp.sgd.status == "ok"
    # compare before the final exponential collapse, where relative gaps of
    # tiny risks measure the float32 rounding rather than the dynamics
    before_collapse = exp.flow.risk[0] > 0.1
    assert before_collapse.sum() > 12
    gap = exp.sgd.risk.mean(axis=0) / exp.flow.risk[0] - 1.0
    assert np.max(np.abs(gap[before_collapse])) < FLOW_GAP


def test_sgd_and_flow_share_initial_risk():
    exp = simulate(Config.create(d=64, r=4, width=4, steps=50, seeds=2, points=5))
    np.testing.assert_allclose(exp.sgd.risk[:, 0], exp.flow.risk[0, 0], rtol=1e-5)
    np.testing.assert_array_equal(exp.sgd.time, exp.flow.time)


def test_sgd_reproducible_for_seed():
    config = Config.create(d=64, r=4, width=4, steps=100, seeds=2, points=5, seed=9)
    a = simulate(config).sgd.risk
    b = simulate(config).sgd.risk
    np.testing.assert_array_equal(a, b)
    c = simulate(config.replace(seed=10)).sgd.risk
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "d, batch, steps, method",
    [(64, 32, 100, "full"), (1024, 64, 100, "full"), (10**5, 64, 700, "reduced")],
    ids=["full", "full-split-draws", "reduced"],
)
def test_seed_run_independent_of_seed_count(d, batch, steps, method):
    """Seed 0 follows the same path with 1 or 3 seeds, label noise included.

    At d = 1024, B = 64 each step's batch is drawn in two parts, and the
    chunks span several output times, so the chunking is exercised too.
    """
    config = Config.create(d=d, r=4, width=4, batch=batch, steps=steps, seeds=1,
                           points=8, seed=3, noise=0.3, method=method)
    single = simulate(config).sgd
    together = simulate(config.replace(seeds=3)).sgd
    assert single.info["method"] == method
    np.testing.assert_allclose(together.risk[0], single.risk[0], rtol=1e-6)
    assert not np.allclose(together.risk[1], single.risk[0])


def test_one_seed_sums_thread_independent():
    """With d m above torch's 32768-number grain, one seed's sums must not
    be split over threads differently from three seeds' sums."""
    config = Config.create(d=2048, r=4, width=64, batch=8, steps=60, seeds=1, points=4,
                           lr=1e-4, device="cpu", method="full")
    lam = spectrum(4, 1.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        single = OnlineSGD(config, lam, initial_weights(config))
        single.step(60)
        together = OnlineSGD(config.replace(seeds=3), lam, initial_weights(config))
        together.step(60)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(together.W[0], single.W[0])


def test_ordered_sum_matches_plain_sum():
    from quadviz.sgd import ordered_sum

    x = torch.randn(3, 9 * 4096 + 17, dtype=torch.float64)
    torch.testing.assert_close(ordered_sum(x), x.sum(dim=1), rtol=1e-12, atol=1e-9)
    small = torch.randn(2, 100, dtype=torch.float64)
    assert torch.equal(ordered_sum(small), small.sum(dim=1))


@pytest.mark.parametrize("use_kernel", [True, False])
def test_pipelined_steps_match_sequential(monkeypatch, use_kernel):
    """Drawing the next chunk on another thread changes no number, in the
    compiled loop and in TorchScript."""
    config = Config.create(d=512, r=4, width=8, batch=32, steps=200, seeds=2,
                           noise=0.3, dtype="float64", device="cpu", method="full")
    lam = spectrum(4, 1.0)
    W0 = initial_weights(config)
    calls = []
    pipelined = OnlineSGD._step_pipelined

    def spy(self, n, chunk, kernel):
        calls.append((n, chunk, kernel))
        pipelined(self, n, chunk, kernel)

    monkeypatch.setattr(OnlineSGD, "_step_pipelined", spy)
    threads = torch.get_num_threads()
    results = {}
    try:
        for n_threads in (2, 1):
            torch.set_num_threads(n_threads)
            runner = OnlineSGD(config, lam, W0)
            runner.use_kernel = use_kernel and runner.use_kernel
            runner.step(200)
            results[n_threads] = runner.W
    finally:
        torch.set_num_threads(threads)
    expected_kernel = use_kernel and sgd_kernel.AVAILABLE
    assert calls == [(200, 64, expected_kernel)]
    torch.testing.assert_close(results[2], results[1], rtol=1e-12, atol=1e-14)


def test_full_sgd_same_before_compile(monkeypatch):
    """Draws from the generator's numpy twin, used while numba compiles,
    give the same SGD run bit for bit."""
    from quadviz import reduced_kernel

    config = Config.create(d=300, r=4, width=6, batch=40, steps=60, seeds=2,
                           noise=0.2, device="cpu", method="full")
    lam = spectrum(4, 1.0)
    W0 = initial_weights(config)
    compiled_run = OnlineSGD(config, lam, W0)
    compiled_run.step(60)
    monkeypatch.setattr(reduced_kernel, "generator_ready", lambda: False)
    twin_run = OnlineSGD(config, lam, W0)
    twin_run.step(60)
    assert torch.equal(compiled_run.W, twin_run.W)


def test_float64_overflow_ends_as_diverged():
    """W finite but W^T W beyond float64 ends the run as diverged."""
    config = Config.create(d=7, r=2, width=3, batch=2, lr=0.5 / 7, steps=400, seeds=64,
                           points=4, dtype="float64", device="cpu", seed=505,
                           sigma0=1.0, method="full")
    run = OnlineSGD(config, spectrum(2, 1.0), initial_weights(config)).run()
    assert run.status == "diverged"
    assert "stability limit" in run.message


def test_initial_weights_scale():
    W0 = initial_weights(Config.create(d=400, width=50, sigma0=2.0))
    assert W0.shape == (400, 50)
    assert W0.var() == pytest.approx(4.0 / 400, rel=0.05)


def test_large_step_diverges_with_message():
    config = Config.create(
        d=128, r=4, width=4, batch=8, lr=0.5, steps=2000, seeds=2, points=20
    )
    exp = simulate(config)
    assert exp.sgd.status == "diverged"
    assert "diverged by step" in exp.sgd.message
    assert "lr = 0.5" in exp.sgd.message
    assert np.all(np.isfinite(exp.sgd.risk))
    assert len(exp.sgd.time) < len(exp.flow.time)


@pytest.mark.gpu
def test_cuda_matches_cpu_statistics():
    config = Config.create(
        d=128,
        r=4,
        width=4,
        batch=64,
        lr=0.005,
        steps=400,
        seeds=8,
        points=5,
        dtype="float64",
    )
    cpu = simulate(config.replace(device="cpu"))
    gpu = simulate(config.replace(device="cuda"))
    assert gpu.device.startswith("cuda")
    np.testing.assert_allclose(gpu.sgd.risk.mean(0), cpu.sgd.risk.mean(0), rtol=0.1)


@pytest.mark.slow
@pytest.mark.parametrize("use_kernel", [True, False], ids=["numba", "torch"])
def test_reduced_sgd_equals_full_in_law(use_kernel):
    """Risk of reduced and full SGD from one W_0 has the same distribution.

    256 runs each at 4 times. Means of log risk are compared by a two-sample
    z statistic (|z| < 4, false-alarm rate 6e-5 per time) and whole
    distributions, spread included, by a two-sample Kolmogorov-Smirnov test
    (p > 1e-3 per time). Together the false-alarm rate is below 5e-3. A
    ratio of standard deviations is not used: the risk after a step is a
    high-degree polynomial of Gaussians, and its sample spread is too
    heavy-tailed for a tight bound.
    """
    lam = spectrum(4, 1.0)
    W0 = initial_weights(Config.create(d=128, width=4, seed=0))
    risks = {"full": [], "reduced": []}
    for seed in range(4):
        config = Config.create(d=128, r=4, width=4, batch=16, lr=0.0125, steps=300,
                               seeds=64, points=4, dtype="float64", device="cpu",
                               seed=100 + seed)
        risks["full"].append(OnlineSGD(config, lam, W0).run().risk)
        reduced = ReducedSGD(config, lam, W0)
        reduced.use_kernel = use_kernel
        risks["reduced"].append(reduced.run().risk)
    full = np.log(np.concatenate(risks["full"])[:, 1:])
    reduced = np.log(np.concatenate(risks["reduced"])[:, 1:])
    n = len(full)
    z = (full.mean(0) - reduced.mean(0)) / np.sqrt(full.var(0) / n + reduced.var(0) / n)
    assert np.all(np.abs(z) < 4.0), z
    for i in range(full.shape[1]):
        assert ks_2samp(full[:, i], reduced[:, i]).pvalue > 1e-3


@pytest.mark.parametrize(
    "batch, width, noise",
    [(4, 4, 0.0), (16, 4, 0.0), (2, 6, 0.0), (8, 8, 0.3)],
    ids=["B=m", "B>m", "B<m", "noise"],
)
def test_reduced_kernel_matches_torch_loop(batch, width, noise):
    """The numba loop and the torch loop take the same steps on the same draws.

    Both keep F upper triangular with a non-negative diagonal (the Cholesky
    factor of its Gram), so the whole state [P; F] is compared.
    """
    from quadviz import reduced_kernel

    assert reduced_kernel.AVAILABLE, "numba is in requirements.txt but missing"
    lam = spectrum(3, 1.0)
    config = Config.create(d=200, r=3, width=width, batch=batch, lr=0.2 * batch / 200,
                           steps=40, seeds=2, noise=noise, dtype="float64",
                           device="cpu")
    runs = {}
    for use_kernel in (True, False):
        runner = ReducedSGD(config, lam)
        runner.use_kernel = use_kernel
        runner.step(40)
        runs[use_kernel] = runner.W
    torch.testing.assert_close(runs[True], runs[False], rtol=1e-9, atol=1e-12)
    start = ReducedSGD(config, lam).W
    assert (runs[True] - start).abs().max() > 1e-3


def test_reduced_pipelined_matches_sequential(monkeypatch):
    """Seeds on several threads and the next chunk drawn meanwhile change
    no number of the compiled loop's run."""
    from quadviz import reduced_sgd

    monkeypatch.setattr(reduced_sgd, "DRAW_ELEMENTS", 3000)
    prefetches = []
    chunks = StepDraws.chunks

    def spy(self, n, chunk, prefetch, ramp):
        prefetches.append(prefetch)
        return chunks(self, n, chunk, prefetch, ramp)

    monkeypatch.setattr(StepDraws, "chunks", spy)
    config = Config.create(d=5000, r=3, width=5, batch=8, steps=400, seeds=3,
                           noise=0.2, lr=2e-4, device="cpu", method="reduced")
    lam = spectrum(3, 1.0)
    threads = torch.get_num_threads()
    results = {}
    try:
        for n_threads in (2, 1):
            torch.set_num_threads(n_threads)
            runner = ReducedSGD(config, lam)
            assert runner.use_kernel
            runner.step(400)
            results[n_threads] = runner.W
    finally:
        torch.set_num_threads(threads)
    assert prefetches == [True, False]
    assert torch.equal(results[2], results[1])
    assert bool(torch.isfinite(results[1]).all())


def test_reduced_run_draws_on_prefetch_thread():
    """run() steps at most 256 steps a call, one default chunk, and still
    the prefetch thread makes nearly all draws, ahead of the calls."""
    from quadviz import reduced_kernel

    config = Config.create(d=10**5, r=8, width=8, batch=16, steps=1000, points=5,
                           lr=1e-5, device="cpu", method="reduced")
    threads = torch.get_num_threads()
    draws = []
    try:
        torch.set_num_threads(2)
        runner = ReducedSGD(config, spectrum(8, 1.0))
        if not reduced_kernel.ready():
            pytest.skip("the compiled loop is not loaded")
        draw = runner.draws.draw

        def spy(k, parallel):
            draws.append((k, threading.current_thread().name))
            return draw(k, parallel)

        runner.draws.draw = spy
        assert runner.run().status == "ok"
    finally:
        torch.set_num_threads(threads)
    on_main = [k for k, name in draws if not name.startswith("draw")]
    assert sum(k for k, _ in draws) >= 1000
    # the log grid's first two calls (1 and 5 steps) draw their first step
    # on the caller's thread, because nothing was drawn ahead of them
    assert on_main == [1, 1]


def test_reduced_kernel_factor_fallbacks():
    """Singular Grams fall back to QR of the stacked matrix or to eigh."""
    from quadviz.reduced_kernel import _upper_factor

    rng = np.random.default_rng(1)
    stacked = rng.standard_normal((5, 4))
    stacked[:, 3] = stacked[:, 0]  # rank 3: Cholesky fails
    gram = stacked.T @ stacked
    for source in (stacked, None):
        factor = _upper_factor(gram, source)
        np.testing.assert_allclose(np.tril(factor, -1), 0.0, atol=1e-12)
        np.testing.assert_allclose(factor.T @ factor, gram, atol=1e-9)


def test_reduced_sgd_uses_torch_loop_until_ready(monkeypatch):
    """While the numba loop is not ready, steps run in the torch loop."""
    from quadviz import reduced_kernel

    def fail(*args):
        raise AssertionError("numba loop called before it was ready")

    monkeypatch.setattr(reduced_kernel, "ready", lambda: False)
    monkeypatch.setattr(reduced_kernel, "reduced_steps", fail)
    config = Config.create(d=10**4, r=4, width=4, batch=4, steps=30, points=4, lr=5e-5)
    runner = ReducedSGD(config, spectrum(4, 1.0))
    assert runner.use_kernel
    assert runner.run().status == "ok"


def test_reduced_kernel_warm_up_thread():
    from quadviz import reduced_kernel

    reduced_kernel.start_warm_up()
    reduced_kernel.start_warm_up()
    assert len(reduced_kernel._WARM_UP) == 1
    reduced_kernel._WARM_UP[0].join(timeout=300)
    assert reduced_kernel.generator_ready()
    assert reduced_kernel.ready()
    assert reduced_kernel.part_ready("sgd_kernel")


def test_reduced_kernel_divergence_reported():
    """A step size far above the stability limit ends the run as diverged."""
    config = Config.create(d=10**5, r=4, width=4, batch=4, lr=0.5, steps=200,
                           points=10, device="cpu")
    assert config.sgd_method == "reduced"
    exp = simulate(config)
    assert exp.sgd.status == "diverged"
    assert "stability limit" in exp.sgd.message


def test_reduced_sgd_speed_does_not_depend_on_d():
    """A reduced run at d = 10^9 needs no d-sized array and still learns."""
    config = Config.create(d=10**9, r=4, width=4, batch=16, lr=1e-9, steps=50,
                           seeds=2, points=4)
    assert config.sgd_method == "reduced"
    exp = simulate(config)
    assert exp.sgd.status == "ok"
    assert exp.sgd.info["method"] == "reduced"
    np.testing.assert_allclose(exp.sgd.risk[:, 0], exp.flow.risk[0, 0], rtol=1e-5)


@pytest.mark.parametrize("fn_name", ["sgd_chunk", "reduced_chunk"])
def test_scripted_chunk_equals_python(fn_name):
    from quadviz import reduced_sgd, sgd

    fn = getattr(sgd, fn_name, None) or getattr(reduced_sgd, fn_name)
    gen = torch.Generator().manual_seed(0)
    k, S, B, r, m = 5, 2, 3, 2, 4
    n = r + m if fn_name == "reduced_chunk" else 20
    X = torch.randn(k, S, B, n, generator=gen, dtype=torch.float64)
    Y = torch.randn(k, S, B, generator=gen, dtype=torch.float64)
    W = torch.randn(S, n, m, generator=gen, dtype=torch.float64) * 0.3
    if fn_name == "reduced_chunk":
        T = torch.randn(k, S, B, B, generator=gen, dtype=torch.float64).triu()
        args = (X, Y, T, W, 0.01, r)
    else:
        args = (X, Y, W, 0.01)
    scripted = sgd.compiled(fn)
    assert scripted is not fn
    torch.testing.assert_close(scripted(*args), fn(*args), rtol=1e-12, atol=1e-12)
