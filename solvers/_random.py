"""Counter-seeded random numbers inside numba kernels: SplitMix64 streams, ziggurat normals.

Why not numpy's Generators: filling the DMFT's white noise with them cost as much as the
solve itself (~9 ns per normal, one thread per call), and they cannot be called per block
inside a ``prange`` loop. Here every (key, block, step, purpose) tuple seeds its own short
SplitMix64 sequence (Steele, Lea & Flood 2014; the generator of Java's SplittableRandom),
so any block can regenerate its numbers anywhere, in any order, on any thread: results do
not depend on the thread count, and a replayed chunk sees exactly the numbers it saw before.

Normals use the 256-layer ziggurat of Marsaglia & Tsang (2000) in the 52-bit form of numpy's
``random_standard_normal`` (one 64-bit draw per normal 99% of the time, exact tail by
Marsaglia's exponential method). Tables are built here from their defining recursion.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["stream", "next_u64", "next_uniform", "next_normal", "fill_normals"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S8, _S9, _S11 = np.uint64(8), np.uint64(9), np.uint64(11)
_ONE = np.uint64(1)
_LOW8 = np.uint64(0xFF)
_MANT52 = np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 2.0**-53

# ------------------------------------------------------------------------------ ziggurat tables
_ZIG_R = 3.6541528853610088  # start of the tail
# area of each layer (unnormalised density exp(-x^2/2)): the base layer's rectangle r f(r) plus
# the tail, from r itself rather than a 12-digit literal, so the tables close consistently
_ZIG_V = (_ZIG_R * math.exp(-0.5 * _ZIG_R**2)
          + math.sqrt(math.pi / 2) * math.erfc(_ZIG_R / math.sqrt(2)))


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ki (uint64), wi, fi for 256 layers and 52-bit mantissas (Marsaglia & Tsang's zigset)."""
    m1 = 2.0**52
    ki = np.zeros(256, dtype=np.uint64)
    wi = np.zeros(256)
    fi = np.zeros(256)
    dn = tn = _ZIG_R
    q = _ZIG_V / math.exp(-0.5 * dn * dn)
    ki[0] = np.uint64(int(dn / q * m1))
    ki[1] = np.uint64(0)
    wi[0] = q / m1
    wi[255] = dn / m1
    fi[0] = 1.0
    fi[255] = math.exp(-0.5 * dn * dn)
    for i in range(254, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIG_V / dn + math.exp(-0.5 * dn * dn)))
        ki[i + 1] = np.uint64(int(dn / tn * m1))
        tn = dn
        fi[i] = math.exp(-0.5 * dn * dn)
        wi[i] = dn / m1
    return ki, wi, fi


_KI, _WI, _FI = _ziggurat_tables()


# ------------------------------------------------------------------------------ generators
@numba.njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(cache=True)
def stream(key, a, b, c):
    """Initial state of the stream named by (key, a, b, c): key uint64, a, b, c integers >= 0."""
    h = _mix(np.uint64(key) ^ _GAMMA)
    h = _mix(h ^ (np.uint64(a) * _GAMMA + _MIX1))
    h = _mix(h ^ (np.uint64(b) * _GAMMA + _MIX2))
    return _mix(h ^ (np.uint64(c) * _GAMMA + _GAMMA))


@numba.njit(cache=True, inline="always")
def next_u64(state):
    """(64 random bits, new state): one SplitMix64 step."""
    state = state + _GAMMA
    return _mix(state), state


@numba.njit(cache=True, inline="always")
def next_uniform(state):
    """(uniform on [0, 1) with 53 random bits, new state)."""
    u, state = next_u64(state)
    return float(u >> _S11) * _TWO_M53, state


@numba.njit(cache=True, inline="always")
def next_normal(state):
    """(standard normal, new state) by the 256-layer ziggurat."""
    while True:
        r, state = next_u64(state)
        idx = r & _LOW8
        r = r >> _S8
        sign = r & _ONE
        rabs = (r >> _ONE) & _MANT52
        x = float(rabs) * _WI[idx]
        if sign == _ONE:
            x = -x
        if rabs < _KI[idx]:
            return x, state
        if idx == 0:
            # tail beyond r: Marsaglia's exponential rejection (1 - U avoids log(0))
            while True:
                u1, state = next_uniform(state)
                u2, state = next_uniform(state)
                xx = -math.log1p(-u1) / _ZIG_R
                yy = -math.log1p(-u2)
                if yy + yy > xx * xx:
                    return (-(_ZIG_R + xx) if ((rabs >> _S8) & _ONE) == _ONE
                            else _ZIG_R + xx), state
        else:
            u, state = next_uniform(state)
            if (_FI[idx - 1] - _FI[idx]) * u + _FI[idx] < math.exp(-0.5 * x * x):
                return x, state


@numba.njit(cache=True, parallel=True)
def fill_normals(key, a, n_streams, per_stream, out):
    """out[k * per_stream + i] = normal i of stream (key, a, k, 0), k < n_streams, in parallel.

    ``out`` is flat with n_streams * per_stream entries. For tests and bulk draws.
    """
    for k in numba.prange(n_streams):
        state = stream(key, a, k, 0)
        for i in range(per_stream):
            x, state = next_normal(state)
            out[k * per_stream + i] = x
