"""Compiled full-SGD loop: against autograd and the TorchScript chunk, its
use by default for small steps, divergence and seed-count independence."""

import numpy as np
import pytest
import torch

from quadviz import reduced_kernel, sgd_kernel
from quadviz.config import Config
from quadviz.experiment import simulate
from quadviz.sgd import OnlineSGD, initial_weights, sgd_chunk
from quadviz.sgd_kernel import KERNEL_STEP_WORK
from quadviz.teacher import spectrum

pytestmark = pytest.mark.skipif(not sgd_kernel.AVAILABLE, reason="numba is not installed")


def _autograd_steps(X, Y, W0, lr):
    """Take the steps one by one with autograd through the batch loss."""
    W = torch.as_tensor(W0).clone()
    for x, y in zip(torch.as_tensor(X), torch.as_tensor(Y)):
        W.requires_grad_(True)
        f = ((x @ W) ** 2).sum(dim=1) - (W * W).sum()
        loss = (0.5 * (f - y) ** 2).mean()
        (grad,) = torch.autograd.grad(loss, W)
        W = (W - lr * grad).detach()
    return W.numpy()


@pytest.mark.parametrize("k, B, d, m", [(7, 5, 12, 3), (40, 1, 30, 4), (3, 64, 16, 8)])
def test_full_steps_match_autograd(k, B, d, m):
    rng = np.random.default_rng(k + B)
    X = rng.standard_normal((k, B, d))
    Y = rng.standard_normal((k, B))
    W0 = rng.standard_normal((d, m)) * 0.3
    W = W0.copy()
    sgd_kernel.full_steps(X, Y, W, 0.01, np.nan)
    np.testing.assert_allclose(W, _autograd_steps(X, Y, W0, 0.01), rtol=1e-11, atol=1e-13)


def test_full_steps_float32_match_torchscript_chunk():
    """In float32 the loop and the TorchScript chunk agree to rounding."""
    gen = torch.Generator().manual_seed(1)
    k, B, d, m = 50, 32, 256, 16
    X = torch.randn(k, 1, B, d, generator=gen)
    Y = torch.randn(k, 1, B, generator=gen)
    W0 = torch.randn(1, d, m, generator=gen) * 0.5 / d**0.5
    expected = sgd_chunk(X, Y, W0, 0.002)[0].numpy()
    W = W0[0].numpy().copy()
    sgd_kernel.full_steps(X[:, 0].numpy().copy(), Y[:, 0].numpy().copy(), W, 0.002, np.nan)
    assert W.dtype == np.float32
    np.testing.assert_allclose(W, expected, rtol=1e-4, atol=1e-6)


def test_full_steps_keep_non_finite_weights():
    """A NaN weight spreads instead of vanishing, so the divergence check finds it."""
    X = np.ones((3, 2, 4))
    W = np.full((4, 2), 0.1)
    W[0, 0] = np.nan
    sgd_kernel.full_steps(X, np.zeros((3, 2)), W, 0.01, np.nan)
    assert np.isnan(W).all()


def test_online_sgd_uses_loop_for_small_steps(monkeypatch):
    """Small steps on the CPU run in the compiled loop once it is ready."""
    calls = []
    loop = sgd_kernel.full_steps

    def spy(*args):
        calls.append(args[0].shape)
        loop(*args)

    monkeypatch.setattr(sgd_kernel, "full_steps", spy)
    monkeypatch.setattr(reduced_kernel, "part_ready", lambda part: True)
    config = Config.create(d=256, r=4, width=8, batch=4, steps=50, seeds=2, points=5,
                           device="cpu", method="full")
    runner = OnlineSGD(config, spectrum(4, 1.0), initial_weights(config))
    assert runner.use_kernel
    trajectory = runner.run()
    assert trajectory.status == "ok"
    assert sum(shape[0] for shape in calls) == 2 * 50


def test_online_sgd_uses_torchscript_until_ready(monkeypatch):
    def fail(*args):
        raise AssertionError("compiled loop called before it was ready")

    monkeypatch.setattr(sgd_kernel, "full_steps", fail)
    monkeypatch.setattr(reduced_kernel, "part_ready", lambda part: part != "sgd_kernel")
    config = Config.create(d=256, r=4, width=8, batch=4, steps=50, points=5,
                           device="cpu", method="full")
    runner = OnlineSGD(config, spectrum(4, 1.0), initial_weights(config))
    assert runner.run().status == "ok"


def test_large_steps_keep_torchscript():
    config = Config.create(d=1024, r=4, width=64, batch=32, device="cpu", method="full")
    assert config.batch * config.d * config.width >= KERNEL_STEP_WORK
    runner = OnlineSGD(config, spectrum(4, 1.0), initial_weights(config))
    assert not runner.use_kernel


def test_loop_run_matches_torchscript_run():
    """The same draws give the same float64 trajectory on both paths."""
    config = Config.create(d=200, r=4, width=6, batch=16, steps=400, seeds=3, points=12,
                           noise=0.2, dtype="float64", device="cpu", method="full")
    lam = spectrum(4, 1.0)
    runs = []
    for use_kernel in (True, False):
        runner = OnlineSGD(config, lam, initial_weights(config))
        runner.use_kernel = use_kernel
        runs.append(runner.run())
    assert runs[0].status == runs[1].status == "ok"
    np.testing.assert_allclose(runs[0].risk, runs[1].risk, rtol=1e-9)
    np.testing.assert_allclose(runs[0].recovery, runs[1].recovery, rtol=1e-9, atol=1e-12)


def test_loop_divergence_reported():
    config = Config.create(d=128, r=4, width=4, batch=8, lr=0.5, steps=2000, seeds=2,
                           points=20, device="cpu", method="full")
    exp = simulate(config)
    assert exp.sgd.status == "diverged"
    assert "stability limit" in exp.sgd.message
    assert np.all(np.isfinite(exp.sgd.risk))


def test_loop_seed_independent_of_seed_count():
    """Seed 0 takes bitwise the same steps beside two other seeds, which
    run on the draw pool's threads."""
    config = Config.create(d=512, r=4, width=16, batch=32, steps=300, seeds=1,
                           noise=0.3, device="cpu", method="full")
    lam = spectrum(4, 1.0)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        single = OnlineSGD(config, lam, initial_weights(config))
        together = OnlineSGD(config.replace(seeds=3), lam, initial_weights(config))
        assert single.use_kernel and together.use_kernel
        single.step(300)
        together.step(300)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(together.W[0], single.W[0])
    assert not torch.equal(together.W[1], single.W[0])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch, width", [(1, 16), (4, 8)])
def test_loop_run_independent_of_calls(dtype, batch, width):
    """A run split into odd step() calls, on 1 or 2 threads, takes bitwise
    the same steps as one call."""
    config = Config.create(d=256, r=4, width=width, batch=batch, steps=700, seeds=2,
                           noise=0.2, lr=1e-4, dtype=dtype, device="cpu", method="full")
    lam = spectrum(4, 1.0)
    threads = torch.get_num_threads()
    results = []
    try:
        for n_threads, splits in [(2, [700]), (2, [1, 50, 3, 300, 346]), (1, [700]),
                                  (1, [333, 367])]:
            torch.set_num_threads(n_threads)
            runner = OnlineSGD(config, lam, initial_weights(config))
            assert runner.use_kernel
            for n in splits:
                runner.step(n)
            results.append(runner.W.clone())
    finally:
        torch.set_num_threads(threads)
    for W in results[1:]:
        assert torch.equal(W, results[0])
