"""Elementary functions that LLVM can vectorise inside numba loops.

numba compiles ``math.tanh`` to a call of the C library's scalar ``tanh`` (~10-20 ns per value
here: numba has no SIMD math library on this platform), which no loop around it can vectorise.
:func:`tanh` below is built from additions, multiplications, two divisions and an exponent
bit-cast only, so a loop over an array of it becomes SIMD code (~2 ns per value on one core).
Accuracy: within 2 units in the last place over the whole real line (tests/test_vmath.py
checks this against 80-bit ``tanhl``; measured at most 1.33); ``tanh(+-inf) = +-1``,
``tanh(nan) = nan``, signed zeros kept.
"""

from __future__ import annotations

import math

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


# |x| < _SMALL: x + x^3 P(x^2) / Q(x^2), the rational approximation of Cephes' tanh.c
# (S. L. Moshier; relative error 2.5e-16 on [-0.625, 0.625]); above,
# 1 - 2 / (exp(2|x|) + 1), which cancels too much for smaller |x|. Few instructions matter:
# the kernels reach tanh through the activation's function argument, which only LLVM's
# inliner (with its size threshold) can inline, and only an inlined call vectorises.
_SMALL = 0.625
_P0, _P1, _P2 = -9.64399179425052238628e-1, -9.92877231001918586564e1, -1.61468768441708447952e3
_Q0, _Q1, _Q2 = 1.12811678491632931402e2, 2.23548839060100448583e3, 4.84406305325125486048e3
_BIG = 20.0  # tanh(20) = 1 - 8.5e-18 rounds to 1
_LOG2E = 1.4426950408889634
# ln 2 split as in fdlibm: _LN2_HI has 32 trailing zero bits, so k * _LN2_HI is exact
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
# 1 / n! for exp(r) = sum_n r^n / n! on |r| <= ln(2) / 2 (truncation after r^13: 4e-18)
_E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11, _E12, _E13 = (
    1.0 / math.factorial(n) for n in range(2, 14))


@numba.njit(cache=True, inline="always")
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


# Compiled on its own (no numba-level inlining, which would apply the caller's fastmath flags:
# reassociation would undo the exact reduction by ln 2) with numpy's error model (no
# ZeroDivisionError branch); LLVM inlines it into loops, which then vectorise. The flags are
# explicit, "contract" (fused multiply-adds) as in the kernels that call it: otherwise a first
# compilation from inside a kernel inherits the kernel's flags and one on its own does not, and
# the bits would depend on which happened first in numba's cache.
@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def tanh(x):
    """Hyperbolic tangent of a float64, vectorisable (module docstring)."""
    ax = abs(x)
    big = ax if ax < _BIG else _BIG  # also maps nan to _BIG; fixed at the end
    big = 1.0 - 2.0 / (_exp_moderate(2.0 * big) + 1.0)
    x2 = x * x
    ratio = ((_P0 * x2 + _P1) * x2 + _P2) / (((x2 + _Q0) * x2 + _Q1) * x2 + _Q2)
    small = ax + ax * (x2 * ratio)  # ax first keeps tiny x exact
    out = math.copysign(small if ax < _SMALL else big, x)  # sign last: tanh(-0.0) = -0.0
    return out if ax == ax else x
