"""Hermite coefficients of a target along a direction and in a multi-index basis, and the
information exponent along a direction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from solvers.numerics.gauss_hermite import gauss_hermite

from ..problem import Problem
from ..targets import Target
from ..validation import integer
from .quadrature import (
    _error,
    _expect_pair,
    _Grid,
    _grids,
    _multi_indices,
    _norm_He_all,
    _target_of,
    _tolerance,
    _unit,
)

__all__ = [
    "HermiteExpansion",
    "hermite_coefficients",
    "hermite_tensor_coefficients",
    "information_exponent",
]


def hermite_coefficients(target: str | Target | Problem, v: ArrayLike, degree: int = 6,
                         nodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hermite coefficients of g* along a direction.

    Parameters
    ----------
    target : str, Target or Problem
    v : array of shape (K,)
        Direction (normalised internally).
    degree : int
        Largest k, 0 <= degree <= 20.
    nodes : int, optional
        Nodes per axis of the fine rule (default :data:`DEFAULT_NODES`).

    Returns
    -------
    coef : ndarray, shape (degree + 1,)
        c_k = E[g*(z) He_k(<v,z>)] / sqrt(k!), k = 0..degree.
    error : ndarray, shape (degree + 1,)
        Quadrature error estimate: largest |c_k(n nodes) - c_k(m nodes)|, m ~ 3n/4, n/2.

    Examples
    --------
    >>> coef, err = hermite_coefficients("he3", [1.0], degree=4, nodes=20)
    >>> round(float(coef[3]), 6), bool(np.abs(coef[[0, 1, 2, 4]]).max() < 1e-12)  # sqrt(3!)
    (2.44949, True)
    """
    target = _target_of(target)
    degree = integer("degree", degree, 0, 20)
    u = _unit(v, target.K)

    def fn(z, y):
        s = u @ z
        return np.stack([y * h for h in _norm_He_all(degree, s)])

    return _expect_pair(target, nodes, fn)


@dataclass(frozen=True)
class HermiteExpansion:
    """Multi-index Hermite coefficients of g* in an orthonormal basis of R^K.

    Attributes
    ----------
    indices : ndarray of int, shape (m, K)
        Multi-indices alpha with |alpha| <= degree (graded order, alpha = 0 first).
    coef : ndarray, shape (m,)
        c_alpha = E[g*(z) prod_i He_{alpha_i}(<b_i, z>)] / sqrt(prod_i alpha_i!).
    error : ndarray, shape (m,)
        Quadrature error estimates (largest difference to the two coarser rules).
    basis : ndarray, shape (K, K)
        Orthonormal basis, columns b_i.
    norm : float
        sqrt(E[g*^2]) (by Parseval the coefficients' squares sum to at most its square).

    Examples
    --------
    >>> expansion = hermite_tensor_coefficients("staircase", degree=2, nodes=20)  # z1 + z1 z2
    >>> coef, err = expansion.along([1.0, 0.0])  # c_k along z1: only c_1 = 1
    >>> [round(float(c), 9) + 0.0 for c in coef]
    [0.0, 1.0, 0.0]
    """

    indices: np.ndarray
    coef: np.ndarray
    error: np.ndarray
    basis: np.ndarray
    norm: float

    @property
    def tolerance(self) -> np.ndarray:
        """Per-coefficient threshold for "non-zero", shape (m,)."""
        return _tolerance(self.error, self.norm)

    def support(self) -> list[tuple[int, ...]]:
        """Multi-indices alpha != 0 with |c_alpha| above the tolerance."""
        keep = (np.abs(self.coef) > self.tolerance) & (self.indices.sum(axis=1) > 0)
        return [tuple(int(a) for a in alpha) for alpha in self.indices[keep]]

    def truncated(self, degree: int) -> HermiteExpansion:
        """The coefficients with |alpha| <= degree."""
        keep = self.indices.sum(axis=1) <= degree
        return HermiteExpansion(self.indices[keep], self.coef[keep], self.error[keep],
                                self.basis, self.norm)

    def along(self, v: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients c_k(v), k = 0..degree, along a direction, from the multi-index ones.

        Uses He_k(<v,z>) = sum_{|alpha| = k} (k! / alpha!) u^alpha He_alpha(b^T z) for a unit v
        with coordinates u = B^T v (generating function exp(t s - t^2/2) factorises), so
        c_k(v) = sum_{|alpha| = k} sqrt(k! / alpha!) u^alpha c_alpha. The error is propagated
        by the triangle inequality.

        Returns
        -------
        coef, error : ndarray, shape (degree + 1,)
        """
        u = self.basis.T @ _unit(v, self.basis.shape[0])
        deg = self.indices.sum(axis=1)
        out, err = np.zeros(deg.max() + 1), np.zeros(deg.max() + 1)
        for alpha, c, e, k in zip(self.indices, self.coef, self.error, deg, strict=True):
            fact = math.factorial(int(k)) / math.prod(math.factorial(int(a)) for a in alpha)
            weight = math.sqrt(fact) * float(np.prod(u**alpha))
            out[k] += weight * c
            err[k] += abs(weight) * e
        return out, err


def _check_basis(basis, K: int) -> np.ndarray:
    if basis is None:
        return np.eye(K)
    B = np.asarray(basis, dtype=np.float64)
    if B.shape != (K, K) or not np.all(np.isfinite(B)):
        raise ValueError(f"basis must be a finite ({K}, {K}) array (columns = directions), got "
                         f"shape {B.shape}")
    if not np.allclose(B.T @ B, np.eye(K), atol=1e-8):
        raise ValueError("basis must be orthonormal (B^T B = I)")
    return B


def hermite_tensor_coefficients(target: str | Target | Problem, degree: int = 4,
                                basis: ArrayLike | None = None, nodes: int | None = None
                                ) -> HermiteExpansion:
    """Multi-index Hermite expansion of g* up to total degree ``degree``.

    Parameters
    ----------
    target : str, Target or Problem
    degree : int
        Largest total degree |alpha|, 0 <= degree <= 8.
    basis : array of shape (K, K), optional
        Orthonormal basis (columns); default the standard basis of the teacher's z.
    nodes : int, optional
        Nodes per axis of the fine rule.

    Returns
    -------
    HermiteExpansion

    Examples
    --------
    >>> expansion = hermite_tensor_coefficients("staircase", degree=2, nodes=20)  # z1 + z1 z2
    >>> expansion.support()  # the multi-indices of He_1(z1) and He_1(z1) He_1(z2)
    [(1, 0), (1, 1)]
    """
    target = _target_of(target)
    degree = integer("degree", degree, 0, 8)
    K = target.K
    B = _check_basis(basis, K)
    idx = _multi_indices(K, degree)

    def coefficients(grid: _Grid) -> np.ndarray:
        out = np.zeros(len(idx))
        for z, w, y in grid.chunks():
            s = B.T @ z
            he = [_norm_He_all(degree, s[i]) for i in range(K)]
            # graded order: alpha minus its last non-zero coordinate comes earlier, so each
            # product costs one multiplication
            prods: dict[tuple, np.ndarray] = {}
            for m, alpha in enumerate(idx):
                key = tuple(int(a) for a in alpha)
                nz = [i for i, a in enumerate(key) if a]
                if not nz:
                    prods[key] = y * w
                else:
                    i = nz[-1]
                    prev = key[:i] + (0,) + key[i + 1:]
                    prods[key] = prods[prev] * he[i][key[i]]
                out[m] += prods[key].sum()
        return out

    def separable(grid: _Grid) -> np.ndarray:
        # standard basis on a tensor grid: contract (y w) with He_k(x) / sqrt(k!) axis by axis
        x, _ = gauss_hermite(grid.n)
        H = np.stack(_norm_He_all(degree, x))  # (degree + 1, n)
        T = (grid.y * grid.w).reshape((grid.n,) * K)
        for _ in range(K):
            # contracting the leading axis appends its degree axis last: after K contractions
            # the axes are (alpha_1, ..., alpha_K) in order
            T = np.tensordot(T, H, axes=([0], [1]))
        return T[tuple(idx.T)]

    fine, *coarse = _grids(target, nodes)
    method = separable if basis is None else coefficients
    coef = method(fine)
    err = _error(coef, [method(g) for g in coarse])
    return HermiteExpansion(idx, coef, err, B, fine.norm)


def information_exponent(target: str | Target | Problem, v: ArrayLike, max_degree: int = 6,
                         nodes: int | None = None) -> int | None:
    """Information exponent of g* along v: min{k >= 1 : E[g* He_k(<v,z>)] != 0}.

    Parameters
    ----------
    target : str, Target or Problem
    v : array of shape (K,)
    max_degree : int
        Largest k examined (1..20).
    nodes : int, optional

    Returns
    -------
    int or None
        The exponent, or None when every coefficient up to ``max_degree`` is zero within the
        quadrature tolerance (the exponent is then > max_degree, or infinite).

    Examples
    --------
    >>> information_exponent("he3", [1.0], nodes=40)
    3
    >>> information_exponent("he4", [1.0], max_degree=3, nodes=40) is None
    True
    """
    target = _target_of(target)
    max_degree = integer("max_degree", max_degree, 1, 20)
    coef, err = hermite_coefficients(target, v, max_degree, nodes)
    nonzero = np.abs(coef) > _tolerance(err, _grids(target, nodes)[0].norm)
    for k in range(1, max_degree + 1):
        if nonzero[k]:
            return k
    return None
