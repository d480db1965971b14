"""One-dimensional quadrature rules (numpy): trapezoid for N(0, 1) and Gauss-Legendre.

The Gauss-Hermite rule is :func:`solvers.numerics.gauss_hermite.gauss_hermite`. Why these rules
and how accurate they are: ``docs/quadrature.md``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.polynomial.legendre import leggauss

__all__ = ["trapezoid_normal", "gauss_legendre", "composite_gauss_legendre", "read_only"]


def read_only(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    """Read-only views of the arrays.

    numba compiles a kernel once per argument type, and a read-only array is another type than
    a writable one: handing kernels read-only arrays everywhere avoids a second compilation.

    Examples
    --------
    >>> (x,) = read_only(np.zeros(3))
    >>> x.flags.writeable
    False
    """
    out = []
    for a in arrays:
        v = a.view()
        v.setflags(write=False)
        out.append(v)
    return tuple(out)


@lru_cache(maxsize=16)
def trapezoid_normal(h: float, R: float) -> tuple[np.ndarray, np.ndarray]:
    """Trapezoid rule for N(0, 1) on a symmetric grid of step h covering [-R, R].

    Parameters
    ----------
    h : float
        Step.
    R : float
        Half-width covered (the grid has 2 ceil(R / h) + 1 nodes).

    Returns
    -------
    nodes, weights : ndarray, shape (n,)
        Weights proportional to exp(-x^2 / 2), normalised to sum to 1; read-only (cached).
        Converges exponentially for integrands analytic in a strip.

    Examples
    --------
    >>> x, w = trapezoid_normal(0.5, 8.0)
    >>> round(float(w @ x**2), 12)
    1.0
    """
    n = 2 * int(math.ceil(R / h)) + 1
    x = (np.arange(n) - 0.5 * (n - 1)) * h
    w = np.exp(-0.5 * x * x)
    w /= w.sum()
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


@lru_cache(maxsize=64)
def gauss_legendre(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] (no weight function), read-only.

    Examples
    --------
    >>> x, w = gauss_legendre(3)
    >>> round(float(w @ x**4), 12)  # int_-1^1 x^4 dx = 2/5, exact up to degree 5
    0.4
    """
    x, w = leggauss(n)
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def composite_gauss_legendre(edges: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre rule (no weight function) on consecutive panels.

    Parameters
    ----------
    edges : ndarray, shape (m + 1,)
        Increasing panel edges.
    n : int
        Nodes per panel.

    Returns
    -------
    nodes, weights : ndarray, shape (m n,)

    Examples
    --------
    >>> x, w = composite_gauss_legendre(np.array([0.0, 1.0, 3.0]), 2)
    >>> round(float(w @ x**2), 12)  # int_0^3 x^2 dx
    9.0
    """
    gx, gw = gauss_legendre(n)
    half = 0.5 * np.diff(edges)
    x = ((edges[:-1] + half)[:, None] + half[:, None] * gx[None, :]).reshape(-1)
    w = (half[:, None] * gw[None, :]).reshape(-1)
    return x, w
