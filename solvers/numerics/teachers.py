"""The registry teachers g*(z) as numba loops over a block of samples.

``rows(z, lo, n, out)`` writes out[lo + i] = g*(z[:, lo + i]) for i < n, z of shape (K, m)
(samples last). The multi-pass solver calls them inside its draw kernel (z and labels in one
parallel pass); loops run over 1-D rows of z and use the vectorisable :func:`.vmath.tanh`, so
labels cost ~2 ns per sample on one core instead of ~4 ns in numpy (~10-20 ns with
``math.tanh``). He_k are the probabilists' Hermite polynomials (He_2 = x^2 - 1,
He_3 = x^3 - 3x, He_4 = x^4 - 6x^2 + 3), in Horner form. Codes and names: :mod:`.table`.
"""

from __future__ import annotations

import numba

from .vmath import tanh

__all__ = ["linear_rows", "tanh_rows", "he2_rows", "he3_rows", "he4_rows", "staircase_rows",
           "tanh_he1_he3_rows", "tanh_sum_rows", "z1z2z3_he3_rows", "staircase2_rows",
           "sign_rows", "sign_z1z2_rows", "sign_he1_he3_rows"]

# labels are computed without finite-math assumptions; "contract" lets LLVM fuse x * y + c.
# Inner loops index 1-D views of z's rows (z[q, lo + i] would defeat the vectoriser).
_FLAGS = dict(error_model="numpy", fastmath={"contract"})


@numba.njit(**_FLAGS)
def linear_rows(z, lo, n, out):
    """z1"""
    o, z0 = out[lo:lo + n], z[0, lo:lo + n]
    for i in range(n):
        o[i] = z0[i]


@numba.njit(**_FLAGS)
def tanh_rows(z, lo, n, out):
    """tanh(z1)"""
    o, z0 = out[lo:lo + n], z[0, lo:lo + n]
    for i in range(n):
        o[i] = tanh(z0[i])


@numba.njit(**_FLAGS)
def he2_rows(z, lo, n, out):
    """He2(z1)"""
    o, z0 = out[lo:lo + n], z[0, lo:lo + n]
    for i in range(n):
        o[i] = z0[i] * z0[i] - 1.0


@numba.njit(**_FLAGS)
def he3_rows(z, lo, n, out):
    """He3(z1)"""
    o, z0 = out[lo:lo + n], z[0, lo:lo + n]
    for i in range(n):
        x = z0[i]
        o[i] = x * (x * x - 3.0)


@numba.njit(**_FLAGS)
def he4_rows(z, lo, n, out):
    """He4(z1)"""
    o, z0 = out[lo:lo + n], z[0, lo:lo + n]
    for i in range(n):
        x2 = z0[i] * z0[i]
        o[i] = x2 * (x2 - 6.0) + 3.0


@numba.njit(**_FLAGS)
def staircase_rows(z, lo, n, out):
    """z1 + z1 z2"""
    o, z0, z1 = out[lo:lo + n], z[0, lo:lo + n], z[1, lo:lo + n]
    for i in range(n):
        o[i] = z0[i] + z0[i] * z1[i]


@numba.njit(**_FLAGS)
def staircase2_rows(z, lo, n, out):
    """z1 + 2 z1 z2"""
    o, z0, z1 = out[lo:lo + n], z[0, lo:lo + n], z[1, lo:lo + n]
    for i in range(n):
        o[i] = z0[i] + 2.0 * (z0[i] * z1[i])


@numba.njit(**_FLAGS)
def tanh_he1_he3_rows(z, lo, n, out):
    """tanh(z1 + He3(z2))"""
    o, z0, z1 = out[lo:lo + n], z[0, lo:lo + n], z[1, lo:lo + n]
    for i in range(n):
        x = z1[i]
        o[i] = tanh(z0[i] + x * (x * x - 3.0))


@numba.njit(**_FLAGS)
def tanh_sum_rows(z, lo, n, out):
    """tanh(z1) + tanh(z2)"""
    o, z0, z1 = out[lo:lo + n], z[0, lo:lo + n], z[1, lo:lo + n]
    for i in range(n):
        o[i] = tanh(z0[i]) + tanh(z1[i])


@numba.njit(**_FLAGS)
def z1z2z3_he3_rows(z, lo, n, out):
    """z1 z2 z3 + He3(z4)"""
    o = out[lo:lo + n]
    z0, z1, z2, z3 = z[0, lo:lo + n], z[1, lo:lo + n], z[2, lo:lo + n], z[3, lo:lo + n]
    for i in range(n):
        x = z3[i]
        o[i] = z0[i] * z1[i] * z2[i] + x * (x * x - 3.0)


# +-1 labels for classification (sign(0) = +1, so every label is +-1)
@numba.njit(**_FLAGS)
def sign_rows(z, lo, n, out):
    """sign(z1)"""
    o, z0 = out[lo:lo + n], z[0, lo:lo + n]
    for i in range(n):
        o[i] = 1.0 if z0[i] >= 0.0 else -1.0


@numba.njit(**_FLAGS)
def sign_z1z2_rows(z, lo, n, out):
    """sign(z1 z2)"""
    o, z0, z1 = out[lo:lo + n], z[0, lo:lo + n], z[1, lo:lo + n]
    for i in range(n):
        o[i] = 1.0 if z0[i] * z1[i] >= 0.0 else -1.0


@numba.njit(**_FLAGS)
def sign_he1_he3_rows(z, lo, n, out):
    """sign(z1 + He3(z2))"""
    o, z0, z1 = out[lo:lo + n], z[0, lo:lo + n], z[1, lo:lo + n]
    for i in range(n):
        x = z1[i]
        o[i] = 1.0 if z0[i] + x * (x * x - 3.0) >= 0.0 else -1.0
