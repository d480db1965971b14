"""Counter-seeded random numbers inside numba kernels: SplitMix64 streams, ziggurat normals.

Why not numpy's Generators: filling the DMFT's white noise with them cost as much as the
solve itself (~9 ns per normal, one thread per call), and they cannot be called per block
inside a ``prange`` loop. Here every (key, block, step, purpose) tuple seeds its own short
SplitMix64 sequence (Steele, Lea & Flood 2014; the generator of Java's SplittableRandom),
so any block can regenerate its numbers anywhere, in any order, on any thread: results do
not depend on the thread count, and a replayed chunk sees exactly the numbers it saw before.

Normals use the ziggurat of Marsaglia & Tsang (2000) in the 52-bit form of numpy's
``random_standard_normal`` (exact tail by Marsaglia's exponential method), with 1024 layers
instead of 256: tables are built here from their defining recursion, the tail start r by
bisection on the closure condition (it reproduces the published r for 128 and 256 layers).
Bulk draws (:func:`fill_block_normals`) read candidate i directly at counter i of a stream, so
the loop over i vectorises (gathers for the tables), and finish the ~0.43% of candidates
outside their layer's core one by one afterwards (1.49% with 256 layers, where finishing them
was 40% of the time): ~1.5 ns per normal on one core, against ~1.9 ns with 256 layers and
~3.3 ns for the serial :func:`next_normal`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["COUNTER_ROW", "stream", "next_u64", "next_uniform", "counter_uniform", "next_normal",
           "fill_block_normals"]

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)
_S8, _S11 = np.uint64(8), np.uint64(11)
_ONE = np.uint64(1)
_MANT52 = np.uint64(0x000FFFFFFFFFFFFF)
_TWO_M53 = 2.0**-53

# ------------------------------------------------------------------------------ ziggurat tables
_ZIG_LAYERS = 1024  # 4x Marsaglia & Tsang's 256: 3.5x fewer candidates miss the core
_ZIG_BITS = 10  # log2(_ZIG_LAYERS): the layer is the low bits of a 64-bit draw
_LAYER_MASK = np.uint64(_ZIG_LAYERS - 1)
_LAYER_SHIFT = np.uint64(_ZIG_BITS)
assert 1 << _ZIG_BITS == _ZIG_LAYERS


def _density(x: float) -> float:
    return math.exp(-0.5 * x * x)


def _layer_area(r: float) -> float:
    """Area of each layer when the base layer starts its tail at r (unnormalised density
    exp(-x^2/2)): the base layer's rectangle r f(r) plus the tail."""
    return r * _density(r) + math.sqrt(math.pi / 2) * math.erfc(r / math.sqrt(2))


def _layer_edges(r: float, layers: int) -> list[float]:
    """x_1 < ... < x_{layers-1} = r: layer i's right edge, each layer of area _layer_area(r)
    (x_i = f^-1(v / x_{i+1} + f(x_{i+1}))). Stops early (shorter list) when the stack of
    layers reaches the top before x_1, i.e. when r is too small."""
    v = _layer_area(r)
    edges = [r]
    for _ in range(layers - 2):
        arg = v / edges[-1] + _density(edges[-1])
        if arg >= 1.0:
            break
        edges.append(math.sqrt(-2.0 * math.log(arg)))
    return edges[::-1]


def _closure(r: float, layers: int) -> float:
    """Top layer's area minus v, in units of v: zero for the right tail start r. Positive when
    r is too small (also when the layers overshoot the top before the last one)."""
    edges = _layer_edges(r, layers)
    if len(edges) < layers - 1:
        return float(layers - len(edges))
    v = _layer_area(r)
    return (v - edges[0] * (1.0 - _density(edges[0]))) / v


def _tail_start(layers: int) -> float:
    """The r closing the ziggurat of ``layers`` layers, by bisection (for 128 and 256 layers
    this gives Marsaglia & Tsang's 3.442619855899 and 3.6541528853610088)."""
    lo, hi = 2.0, 6.0
    while True:
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            return mid
        if _closure(mid, layers) > 0:
            lo = mid
        else:
            hi = mid


# start of the tail: _tail_start(_ZIG_LAYERS), a literal to keep 20 ms of bisection out of
# the import (tests/test_random.py recomputes it)
_ZIG_R = 4.038849846109505
_ZIG_V = _layer_area(_ZIG_R)


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ki (uint64), wi, fi for _ZIG_LAYERS layers and 52-bit mantissas (Marsaglia & Tsang's
    zigset, generalised from 256 layers)."""
    m1 = 2.0**52
    n = _ZIG_LAYERS
    ki = np.zeros(n, dtype=np.uint64)
    wi = np.zeros(n)
    fi = np.zeros(n)
    dn = tn = _ZIG_R
    q = _ZIG_V / _density(dn)
    ki[0] = np.uint64(int(dn / q * m1))
    ki[1] = np.uint64(0)
    wi[0] = q / m1
    wi[n - 1] = dn / m1
    fi[0] = 1.0
    fi[n - 1] = _density(dn)
    for i in range(n - 2, 0, -1):
        dn = math.sqrt(-2.0 * math.log(_ZIG_V / dn + _density(dn)))
        ki[i + 1] = np.uint64(int(dn / tn * m1))
        tn = dn
        fi[i] = _density(dn)
        wi[i] = dn / m1
    return ki, wi, fi


_KI, _WI, _FI = _ziggurat_tables()


# ------------------------------------------------------------------------------ generators
@numba.njit(cache=True, inline="always")
def _mix(z):
    """SplitMix64's output function of a uint64 state."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(inline="always")  # a few integer operations; one compilation per call site
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


COUNTER_ROW = 2**32  # counters j * 2**32 + i: row j, entry i < 2**32 of a block's stream


@numba.njit(cache=True, inline="always")
def counter_uniform(base, c):
    """Uniform on [0, 1) (53 bits) at counter c of the stream with state ``base``: output c of
    its SplitMix64 sequence, computed directly (a loop over c vectorises)."""
    return float(_mix(base + np.uint64(c + 1) * _GAMMA) >> _S11) * _TWO_M53


@numba.njit(cache=True, inline="always")
def _candidate(r):
    """One 64-bit draw as a ziggurat candidate: (signed x, layer, magnitude bits, in core).

    Branch-free (the sign is a select), so a loop over candidates vectorises."""
    idx = r & _LAYER_MASK
    r = r >> _LAYER_SHIFT
    rabs = (r >> _ONE) & _MANT52
    x = float(rabs) * _WI[idx]
    x = -x if (r & _ONE) == _ONE else x
    return x, idx, rabs, rabs < _KI[idx]


@numba.njit(cache=True, inline="always")
def _tail(rabs, state):
    """(normal beyond r with the candidate's sign, new state): Marsaglia's exponential
    rejection (1 - U avoids log(0))."""
    while True:
        u1, state = next_uniform(state)
        u2, state = next_uniform(state)
        xx = -math.log1p(-u1) / _ZIG_R
        yy = -math.log1p(-u2)
        if yy + yy > xx * xx:
            return (-(_ZIG_R + xx) if ((rabs >> _S8) & _ONE) == _ONE else _ZIG_R + xx), state


@numba.njit(cache=True, inline="always")
def _wedge_accepts(x, idx, u):
    """Whether candidate x of layer idx >= 1, outside the core, lies under the density."""
    return (_FI[idx - 1] - _FI[idx]) * u + _FI[idx] < math.exp(-0.5 * x * x)


@numba.njit(cache=True, inline="always")
def next_normal(state):
    """(standard normal, new state) by the ziggurat (one candidate per 64-bit draw)."""
    while True:
        r, state = next_u64(state)
        x, idx, rabs, core = _candidate(r)
        if core:
            return x, state
        if idx == 0:
            return _tail(rabs, state)
        u, state = next_uniform(state)
        if _wedge_accepts(x, idx, u):
            return x, state


_WEDGE_ROW0 = 2**30  # counter rows from here hold the wedge tests' uniforms


@numba.njit(cache=True)
def fill_block_normals(base, out, lo, n, bad):
    """out[j, lo + i] = normal number (j, i) of the stream with state ``base``, i < n.

    Counter-based, so the loop over i vectorises: candidate (j, i) is the SplitMix64 output
    at counter ``j * 2**32 + i`` of ``base`` (row j's numbers do not depend on n or on the
    other rows). The ~0.43% of candidates outside their layer's core are finished afterwards,
    one by one: the wedge test with the uniform at counter ``(2**30 + j) * 2**32 + i``; a
    tail candidate, or one the wedge test rejects, continues from its own stream
    ``stream(base, j * 2**32 + i, 0, 0)`` (tail algorithm, or fresh ziggurat draws). Each
    value is an exact ziggurat draw, independent of all others. ``bad`` is uint8 scratch of
    length >= n rounded up to a multiple of 8.
    """
    rows = out.shape[0]
    n_words = (n + 7) // 8
    words = bad[:8 * n_words].view(np.uint64)
    for j in range(rows):
        o = out[j, lo:lo + n]
        row0 = base + np.uint64(j * COUNTER_ROW) * _GAMMA
        for i in range(n):
            x, idx, rabs, core = _candidate(_mix(row0 + np.uint64(i + 1) * _GAMMA))
            o[i] = x
            bad[i] = 0 if core else 1
        bad[n:8 * n_words] = 0
        # Visit the flagged entries only. A plain `for i: if bad[i]:` loop gets if-converted
        # and vectorised by LLVM, evaluating the expensive branch (exp, hashing) for every
        # entry (measured 2.6x slower); a search loop with an early exit is not vectorised.
        w = 0
        while True:
            while w < n_words and words[w] == 0:
                w += 1
            if w == n_words:
                break
            for i in range(8 * w, min(8 * w + 8, n)):
                if bad[i] != 0:
                    o[i] = _finish_candidate(base, row0, j, i)
            w += 1


@numba.njit(cache=True)
def _finish_candidate(base, row0, j, i):
    """Value of candidate (j, i) of fill_block_normals, which fell outside its layer's core."""
    x, idx, rabs, core = _candidate(_mix(row0 + np.uint64(i + 1) * _GAMMA))
    if idx != 0 and _wedge_accepts(
            x, idx, counter_uniform(base, (_WEDGE_ROW0 + j) * COUNTER_ROW + i)):
        return x
    state = stream(base, j * COUNTER_ROW + i, 0, 0)
    if idx == 0:
        x, state = _tail(rabs, state)
    else:
        x, state = next_normal(state)
    return x
