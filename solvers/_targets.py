"""The registry teachers g*(z) as numba loops (the definitions behind ``dmft.targets``).

A registry target is named by a code; :func:`target_rows` evaluates it on a block of samples
inside other kernels (the multi-pass solver draws z and labels in one parallel pass), and
:func:`eval_target` on a whole (K, S) array for everything else. Loops run over 1-D rows of
z and use the vectorisable :func:`._vmath.tanh`, so labels cost ~2 ns per sample on one
core instead of ~4 ns in numpy (~10-20 ns with ``math.tanh``).
"""

from __future__ import annotations

import numba
import numpy as np

from ._vmath import tanh

__all__ = ["TARGET_CODES", "TARGET_DIMS", "target_rows", "eval_target"]

# code of each registry target (by name; ``dmft.targets`` builds its registry from these)
TARGET_CODES = {"linear": 0, "tanh": 1, "he2": 2, "he3": 3, "he4": 4, "staircase": 5,
                "tanh-he1-he3": 6, "tanh-sum": 7, "z1z2z3-he3": 8}
# rows of z that code c reads (its K; ``dmft.targets`` checks its registry against them)
TARGET_DIMS = (1, 1, 1, 1, 1, 2, 2, 2, 4)


@numba.njit(cache=True, error_model="numpy", fastmath={"contract"})
def target_rows(code, z, lo, n, out):
    """out[lo + i] = g*(z[:, lo + i]) for i < n, for the registry target ``code``.

    He_k are the probabilists' Hermite polynomials (He_2 = x^2 - 1, He_3 = x^3 - 3x,
    He_4 = x^4 - 6x^2 + 3), in Horner form.
    """
    o = out[lo:lo + n]
    z0 = z[0, lo:lo + n]
    if code == 0:
        for i in range(n):
            o[i] = z0[i]
    elif code == 1:
        for i in range(n):
            o[i] = tanh(z0[i])
    elif code == 2:
        for i in range(n):
            o[i] = z0[i] * z0[i] - 1.0
    elif code == 3:
        for i in range(n):
            x = z0[i]
            o[i] = x * (x * x - 3.0)
    elif code == 4:
        for i in range(n):
            x2 = z0[i] * z0[i]
            o[i] = x2 * (x2 - 6.0) + 3.0
    elif code == 5:
        z1 = z[1, lo:lo + n]
        for i in range(n):
            o[i] = z0[i] + z0[i] * z1[i]
    elif code == 6:
        z1 = z[1, lo:lo + n]
        for i in range(n):
            x = z1[i]
            o[i] = tanh(z0[i] + x * (x * x - 3.0))
    elif code == 7:
        z1 = z[1, lo:lo + n]
        for i in range(n):
            o[i] = tanh(z0[i]) + tanh(z1[i])
    elif code == 8:
        z1 = z[1, lo:lo + n]
        z2 = z[2, lo:lo + n]
        z3 = z[3, lo:lo + n]
        for i in range(n):
            x = z3[i]
            o[i] = z0[i] * z1[i] * z2[i] + x * (x * x - 3.0)
    else:
        raise ValueError("target_rows: unknown target code")


@numba.njit(cache=True)
def _eval_contiguous(code, z):
    y = np.empty(z.shape[1])
    target_rows(code, z, 0, z.shape[1], y)
    return y


def eval_target(code: int, z: np.ndarray) -> np.ndarray:
    """g*(z) (S,) for the registry target ``code`` on z of shape (K, S) (any layout)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    # the kernel indexes rows without bounds checks: a short z would read past its end
    if z.ndim != 2 or z.shape[0] != TARGET_DIMS[code]:
        raise ValueError(f"registry target code {code} expects z of shape "
                         f"(K={TARGET_DIMS[code]}, S), got {z.shape}")
    return _eval_contiguous(code, z)
