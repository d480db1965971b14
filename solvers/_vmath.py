"""Elementary functions that LLVM can vectorise inside numba loops.

numba compiles ``math.tanh`` to a call of the C library's scalar ``tanh`` (~20 ns per value
here: numba has no SIMD math library on this platform), which no loop around it can vectorise.
:func:`tanh` below is built from additions, multiplications, one division and an exponent
bit-cast only, so a loop over an array of it becomes SIMD code (~1 ns per value per core).
Accuracy: within 2 units in the last place of the correctly rounded value over the whole real
line (tests/test_vmath.py checks this against 80-bit ``tanhl``); ``tanh(+-inf) = +-1``,
``tanh(nan) = nan``, signed zeros kept.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numba
import numpy as np
from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic

__all__ = ["tanh"]


@intrinsic
def _bits_to_float(typingctx, bits):
    """The float64 whose IEEE-754 bit pattern is the int64 ``bits`` (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


def _tanh_taylor(n_terms: int) -> tuple:
    """Taylor coefficients of tanh x = sum_n c_n x^(2n+1), n < n_terms, from the Bernoulli
    numbers: c_n = 2^(2m) (2^(2m) - 1) B_(2m) / (2m)!, m = n + 1 (exact, then rounded)."""
    bern = [Fraction(1)]
    for m in range(1, 2 * n_terms + 1):
        bern.append(-sum(math.comb(m + 1, k) * bern[k] for k in range(m)) / (m + 1))
    return tuple(float(Fraction(4**m * (4**m - 1)) * bern[2 * m] / math.factorial(2 * m))
                 for m in range(1, n_terms + 1))


# |x| < _SMALL: the odd Taylor polynomial, whose first 17 terms are within 2^-56 (relative) of
# tanh at |x| = 0.5; above, 1 - 2 / (exp(2|x|) + 1), which cancels too much below ~0.5
_SMALL = 0.5
(_T0, _T1, _T2, _T3, _T4, _T5, _T6, _T7, _T8, _T9, _T10, _T11, _T12, _T13, _T14, _T15,
 _T16) = _tanh_taylor(17)
_BIG = 20.0  # tanh(20) = 1 - 8.5e-18 rounds to 1
_LOG2E = 1.4426950408889634
# ln 2 split as in fdlibm: _LN2_HI has 32 trailing zero bits, so k * _LN2_HI is exact
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# 1 / n! for exp(r) = sum_n r^n / n! on |r| <= ln(2) / 2 (truncation after r^13: 4e-18)
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13 = (
    1.0 / math.factorial(n) for n in range(2, 14))


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def _exp_moderate(y):
    """exp(y) for 0 <= y <= 2 * _BIG (no overflow, no subnormals): y = k ln 2 + r."""
    k = np.floor(y * _LOG2E + 0.5)  # a float: math.floor returns a Python int
    r = (y - k * _LN2_HI) - k * _LN2_LO
    p = _E12 + r * _E13
    p = _E11 + r * p
    p = _E10 + r * p
    p = _E9 + r * p
    p = _E8 + r * p
    p = _E7 + r * p
    p = _E6 + r * p
    p = _E5 + r * p
    p = _E4 + r * p
    p = _E3 + r * p
    p = _E2 + r * p
    p = 1.0 + r * (1.0 + r * p)
    return p * _bits_to_float((numba.int64(k) + numba.int64(1023)) << numba.int64(52))


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def tanh(x):
    """Hyperbolic tangent of a float64, vectorisable (module docstring)."""
    ax = abs(x)
    big = ax if ax < _BIG else _BIG  # also maps nan to _BIG; fixed at the end
    big = 1.0 - 2.0 / (_exp_moderate(2.0 * big) + 1.0)
    x2 = x * x
    p = _T15 + x2 * _T16
    p = _T14 + x2 * p
    p = _T13 + x2 * p
    p = _T12 + x2 * p
    p = _T11 + x2 * p
    p = _T10 + x2 * p
    p = _T9 + x2 * p
    p = _T8 + x2 * p
    p = _T7 + x2 * p
    p = _T6 + x2 * p
    p = _T5 + x2 * p
    p = _T4 + x2 * p
    p = _T3 + x2 * p
    p = _T2 + x2 * p
    p = _T1 + x2 * p
    small = ax + ax * (x2 * p)  # _T0 = 1: ax first keeps tiny x exact
    out = math.copysign(small if ax < _SMALL else big, x)  # sign last: tanh(-0.0) = -0.0
    return out if ax == ax else x
