"""Counter-based standard Gaussians for the CPU (numba, with a numpy twin).

torch draws CPU Gaussians at about 2.6 to 3.4 ns per number on one thread,
which is most of a full SGD step at B = d = 256 and a third of it at
B = d = 1024. This generator draws them at about 0.4 ns per number.

Number k of a stream (key, gamma) is a pure function of k:

- pair p = (k // (2 BLOCK)) BLOCK + k % BLOCK takes the 64-bit output
  z = mix(key + (p + 1) gamma) of SplitMix64's finaliser on a counter;
- its upper 31 bits, forced odd, give u in (0, 1), its lower 32 bits an
  angle phi uniform on [-pi/4, 7pi/4) (two quadrant bits and 30 bits within
  the quadrant);
- the Box-Muller transform sqrt(-2 ln u) (cos phi, sin phi) gives two
  independent N(0, 1) numbers, stored BLOCK apart.

ln, cos and sin are float32 polynomials (the atanh series for ln on
[sqrt(1/2), sqrt(2)], Taylor series for cos and sin on [-pi/4, pi/4]) that
the compiler turns into AVX2 code. Against float64 Box-Muller on the same
bits, a number differs by at most about 2e-6 (tested). The exception is u
within about 2^-23 of 1, where float32 rounds u: those numbers are below
about 5e-4 in size and can move by up to about 2.4e-4. The largest |x| a
stream can give is about 6.6. Because number k depends only on k, a draw
can be split over threads at any boundary and gives the same numbers.

The numpy twin :func:`normals_numpy` repeats the same float32 operations in
the same order, so it gives bit-identical numbers. It runs while numba
compiles (see :func:`quadviz.reduced_kernel.generator_ready`). Without
numba, :class:`quadviz.sgd.SeedStreams` draws with torch instead, because
the twin is about 40 times slower than the compiled loop.
"""

from __future__ import annotations

import math

import numpy as np

from quadviz import reduced_kernel

# Pairs per block. A block holds 2 * BLOCK numbers: the first BLOCK are the
# cosine halves of the pairs, the next BLOCK the sine halves.
BLOCK = 512
BLOCK_NUMBERS = 2 * BLOCK
# Numbers per call of the numpy twin inside :func:`fill`.
TWIN_PIECE = 1 << 14

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)

_F = np.float32
_ONE = _F(1.0)
_HALF = _F(0.5)
_SQRT2 = _F(math.sqrt(2.0))
_LN2 = _F(math.log(2.0))
_QUARTER_TURN = _F(math.pi / 2)
_ANGLE_UNIT = _F(2.0 ** -30)
# ln(m) = 2 s (1 + s^2/3 + s^4/5 + ...), s = (m - 1) / (m + 1), |s| <= 0.172
_L3, _L5, _L7, _L9 = _F(1 / 3), _F(1 / 5), _F(1 / 7), _F(1 / 9)
# Taylor coefficients of sin and cos, used for |phi| <= pi/4
_S3, _S5, _S7, _S9 = _F(1 / 6), _F(1 / 120), _F(1 / 5040), _F(1 / 362880)
_C2, _C4, _C6, _C8, _C10 = (_F(1 / 2), _F(1 / 24), _F(1 / 720), _F(1 / 40320),
                            _F(1 / 3628800))


def stream_constants(state: np.random.SeedSequence) -> tuple[np.uint64, np.uint64]:
    """Return the key and the odd increment of a stream from a seed sequence.

    The increment is odd, so key + p gamma visits every 64-bit value, and
    has at least 24 bit changes between neighbouring bits, so that
    consecutive counters differ in many bits before mixing.
    """
    key, gamma = (int(w) for w in state.generate_state(2, np.uint64))
    gamma |= 1
    if bin(gamma ^ (gamma >> 1)).count("1") < 24:
        gamma ^= 0xAAAAAAAAAAAAAAAA
    return np.uint64(key), np.uint64(gamma)


def _block(key, gamma, g, uniform, angle, quadrant, exponent, out):
    """Fill out[:BLOCK_NUMBERS] with block g of the stream (key, gamma).

    uniform, angle (float32), quadrant and exponent (int32) are scratch
    arrays of length BLOCK. The work is split into three loops so that each
    one vectorises, because the float32 bits of u are read through an int32
    view between them.
    """
    base = np.uint64(g) * np.uint64(BLOCK)
    for i in range(BLOCK):
        z = key + (base + np.uint64(i + 1)) * gamma
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
        z = z ^ (z >> np.uint64(31))
        uniform[i] = np.float32(np.int32((z >> np.uint64(33)) | np.uint64(1)))
        low = np.int64(z & np.uint64(0xFFFFFFFF))
        quadrant[i] = np.int32(low >> 30)
        angle[i] = (np.float32(low & 0x3FFFFFFF) * _ANGLE_UNIT - _HALF) * _QUARTER_TURN
    bits = uniform.view(np.int32)
    for i in range(BLOCK):
        b = bits[i]
        exponent[i] = (b >> 23) - 127
        bits[i] = (b & 0x007FFFFF) | 0x3F800000
    for i in range(BLOCK):
        # u = a 2^-31 with a = mant 2^e, mant in [1, 2)
        mant = uniform[i]
        e = np.float32(exponent[i])
        big = mant > _SQRT2
        mant = _HALF * mant if big else mant
        e = e + _ONE if big else e
        s = (mant - _ONE) / (mant + _ONE)
        s2 = s * s
        ln_mant = _F(2.0) * s * (_ONE + s2 * (_L3 + s2 * (_L5 + s2 * (_L7 + s2 * _L9))))
        ln_u = (e - _F(31.0)) * _LN2 + ln_mant
        radius = np.sqrt(_F(-2.0) * ln_u)
        p = angle[i]
        p2 = p * p
        sin = p * (_ONE - p2 * (_S3 - p2 * (_S5 - p2 * (_S7 - p2 * _S9))))
        cos = _ONE - p2 * (_C2 - p2 * (_C4 - p2 * (_C6 - p2 * (_C8 - p2 * _C10))))
        q = quadrant[i]
        odd = (q & 1) == 1
        x = sin if odd else cos
        y = cos if odd else sin
        x = -x if (q == 1 or q == 2) else x
        y = -y if q >= 2 else y
        out[i] = radius * x
        out[BLOCK + i] = radius * y


def _fill(out, key, gamma, first):
    """Write numbers first .. first + len(out) - 1 of the stream into out."""
    n = out.shape[0]
    uniform = np.empty(BLOCK, np.float32)
    angle = np.empty(BLOCK, np.float32)
    quadrant = np.empty(BLOCK, np.int32)
    exponent = np.empty(BLOCK, np.int32)
    scratch = np.empty(BLOCK_NUMBERS, np.float32)
    k = first
    end = first + n
    while k < end:
        g = k // BLOCK_NUMBERS
        offset = k - g * BLOCK_NUMBERS
        take = min(BLOCK_NUMBERS - offset, end - k)
        if offset == 0 and take == BLOCK_NUMBERS:
            _block(key, gamma, g, uniform, angle, quadrant, exponent,
                   out[k - first: k - first + BLOCK_NUMBERS])
        else:
            _block(key, gamma, g, uniform, angle, quadrant, exponent, scratch)
            out[k - first: k - first + take] = scratch[offset: offset + take]
        k += take


def normals_numpy(key: np.uint64, gamma: np.uint64, first: int, n: int) -> np.ndarray:
    """Return numbers first .. first + n - 1 of the stream, computed by numpy.

    The function runs the compiled loop's float32 operations on whole blocks.
    """
    g0 = first // BLOCK_NUMBERS
    g1 = -(-(first + n) // BLOCK_NUMBERS)
    pairs = np.arange(g0 * BLOCK, g1 * BLOCK, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = key + (pairs + np.uint64(1)) * gamma
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    z = z ^ (z >> np.uint64(31))
    uniform = ((z >> np.uint64(33)) | np.uint64(1)).astype(np.int32).astype(np.float32)
    low = (z & np.uint64(0xFFFFFFFF)).astype(np.int64)
    quadrant = (low >> 30).astype(np.int32)
    angle = ((low & 0x3FFFFFFF).astype(np.float32) * _ANGLE_UNIT - _HALF) * _QUARTER_TURN
    bits = uniform.view(np.int32)
    e = ((bits >> 23) - 127).astype(np.float32)
    mant = ((bits & 0x007FFFFF) | 0x3F800000).view(np.float32)
    big = mant > _SQRT2
    mant = np.where(big, _HALF * mant, mant)
    e = np.where(big, e + _ONE, e)
    s = (mant - _ONE) / (mant + _ONE)
    s2 = s * s
    ln_mant = _F(2.0) * s * (_ONE + s2 * (_L3 + s2 * (_L5 + s2 * (_L7 + s2 * _L9))))
    ln_u = (e - _F(31.0)) * _LN2 + ln_mant
    radius = np.sqrt(_F(-2.0) * ln_u)
    p2 = angle * angle
    sin = angle * (_ONE - p2 * (_S3 - p2 * (_S5 - p2 * (_S7 - p2 * _S9))))
    cos = _ONE - p2 * (_C2 - p2 * (_C4 - p2 * (_C6 - p2 * (_C8 - p2 * _C10))))
    odd = (quadrant & 1) == 1
    x = np.where(odd, sin, cos)
    y = np.where(odd, cos, sin)
    x = np.where((quadrant == 1) | (quadrant == 2), -x, x)
    y = np.where(quadrant >= 2, -y, y)
    blocks = np.stack([(radius * x).reshape(-1, BLOCK), (radius * y).reshape(-1, BLOCK)], axis=1)
    start = first - g0 * BLOCK_NUMBERS
    return blocks.reshape(-1)[start: start + n]


AVAILABLE = reduced_kernel.AVAILABLE

if AVAILABLE:
    import numba

    _block = numba.njit(cache=True, nogil=True, error_model="numpy")(_block)
    _compiled_fill = numba.njit(cache=True, nogil=True, error_model="numpy")(_fill)
else:
    _compiled_fill = None


def fill(out: np.ndarray, key: np.uint64, gamma: np.uint64, first: int) -> None:
    """Write numbers first .. first + len(out) - 1 of a stream into out.

    out is a contiguous 1-D float32 array. The compiled loop runs when
    :func:`quadviz.reduced_kernel.generator_ready` returns True, else the
    numpy twin runs. Both give the same numbers.
    """
    if _compiled_fill is not None and reduced_kernel.generator_ready():
        _compiled_fill(out, key, gamma, first)
        return
    # pieces that keep numpy's temporaries in cache: 17 ns per number
    # against 86 ns for a whole draw of 2^20 numbers
    for start in range(0, out.shape[0], TWIN_PIECE):
        piece = out[start: start + TWIN_PIECE]
        piece[:] = normals_numpy(key, gamma, first + start, piece.shape[0])


def warm_up() -> None:
    """Compile the loop, or load it from numba's disk cache."""
    if _compiled_fill is not None:
        _compiled_fill(np.empty(3, np.float32), np.uint64(1), np.uint64(3), 1021)
