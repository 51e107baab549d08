"""Counter-based Gaussian generator: compiled loop against its numpy twin,
against float64 Box-Muller from the same bits, and its distribution."""

import math

import numpy as np
import pytest
from scipy import stats

from quadviz import gaussian, reduced_kernel

KEY, GAMMA = gaussian.stream_constants(np.random.SeedSequence(11))
MASK = (1 << 64) - 1


def compiled(first: int, n: int) -> np.ndarray:
    assert reduced_kernel.AVAILABLE, "numba is in requirements.txt but missing"
    out = np.empty(n, np.float32)
    gaussian._compiled_fill(out, KEY, GAMMA, first)
    return out


def splitmix_pairs(key: int, gamma: int, pairs: range) -> list[int]:
    """SplitMix64 outputs written with Python integers."""
    outputs = []
    for p in pairs:
        z = (key + (p + 1) * gamma) & MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        outputs.append(z ^ (z >> 31))
    return outputs


@pytest.mark.parametrize("first, n", [(0, 5000), (3, 2), (1023, 2), (1024, 1024), (777, 4099)])
def test_compiled_matches_numpy_twin(first, n):
    got = compiled(first, n)
    twin = gaussian.normals_numpy(KEY, GAMMA, first, n)
    assert got.dtype == twin.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.int32), twin.view(np.int32))
    # number k is a function of k alone
    whole = compiled(0, first + n)
    np.testing.assert_array_equal(got, whole[first:])


def test_fill_uses_numpy_twin_until_ready(monkeypatch):
    n = 2 * gaussian.TWIN_PIECE + 3000
    expected = compiled(100, n)
    monkeypatch.setattr(reduced_kernel, "generator_ready", lambda: False)
    monkeypatch.setattr(gaussian, "_compiled_fill", None)
    out = np.empty(n, np.float32)
    gaussian.fill(out, KEY, GAMMA, 100)
    np.testing.assert_array_equal(out, expected)


def test_matches_float64_box_muller():
    pairs = range(3 * gaussian.BLOCK)
    outputs = splitmix_pairs(int(KEY), int(GAMMA), pairs)
    u = np.array([((z >> 33) | 1) / 2.0**31 for z in outputs])
    low = np.array([z & 0xFFFFFFFF for z in outputs])
    phi = (low >> 30) * (math.pi / 2) + ((low & 0x3FFFFFFF) / 2.0**30 - 0.5) * (math.pi / 2)
    assert u.max() < 1 - 2.0**-23
    radius = np.sqrt(-2.0 * np.log(u))
    x, y = radius * np.cos(phi), radius * np.sin(phi)
    blocks = compiled(0, len(pairs) * 2).reshape(-1, 2, gaussian.BLOCK)
    got_x = blocks[:, 0].reshape(-1)
    got_y = blocks[:, 1].reshape(-1)
    # Away from u = 1, float32 rounding of u and phi moves a number by up to
    # about 2e-6. These 1536 pairs have no u within 2^-23 of 1.
    np.testing.assert_allclose(got_x, x, rtol=0, atol=3e-6)
    np.testing.assert_allclose(got_y, y, rtol=0, atol=3e-6)


def test_distribution_is_standard_normal():
    n = 1 << 22
    z = compiled(0, n).astype(np.float64)
    # The streams are fixed, so these checks are deterministic. Each bound is
    # 5 standard errors, or a p-value of 1e-3 for the KS test.
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1.0) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z**4) - 3.0) < 5 * math.sqrt(96 / n)
    assert stats.kstest(z[: 1 << 20], "norm").pvalue > 1e-3
    assert np.abs(z).max() < 6.7
    # the two halves of each Box-Muller pair, and neighbouring numbers
    pairs = z.reshape(-1, 2, gaussian.BLOCK)
    x, y = pairs[:, 0].reshape(-1), pairs[:, 1].reshape(-1)
    for a, b in ((x, y), (x**2, y**2), (z[:-1], z[1:])):
        assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(a.size)
    # two seeds' streams
    other = gaussian.stream_constants(np.random.SeedSequence(12))
    w = np.empty(n, np.float32)
    gaussian._compiled_fill(w, other[0], other[1], 0)
    assert abs(np.corrcoef(z, w)[0, 1]) < 5 / math.sqrt(n)


def test_stream_increment_is_odd_and_mixed():
    for seed in range(200):
        _, gamma = gaussian.stream_constants(np.random.SeedSequence(seed))
        g = int(gamma)
        assert g % 2 == 1
        assert bin(g ^ (g >> 1)).count("1") >= 24
