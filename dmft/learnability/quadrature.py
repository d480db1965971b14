"""Tensor Gauss-Hermite rules for z ~ N(0, I_K) with a quadrature-error estimate.

Every quantity of :mod:`dmft.learnability` is an expectation over z computed on three rules
(about n, 3n/4 and n/2 nodes per axis); the largest difference is the reported error and
"non-zero" means above ``SAFETY`` times that error plus a rounding floor (the user guide page
docs/guide/learnability.md explains the choice). Also the small helpers the other modules
share: argument checks, orthonormal Hermite polynomials, multi-indices.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from solvers.numerics.gauss_hermite import gauss_hermite

from ..problem import Problem
from ..targets import Target, get_target
from ..validation import integer

__all__ = ["DEFAULT_NODES", "MAX_K", "ROUNDING_FLOOR", "SAFETY", "gaussian_grid"]


# Nodes per axis of the tensor Gauss-Hermite rule, by K (at most ~10^6 points). For the paper's
# non-polynomial target tanh(z1 + He3(z2)) the error estimate at 800 nodes is < 2e-6 for the
# Hermite coefficients (actual error < 2e-9, measured against 1200 nodes).
DEFAULT_NODES = {1: 3000, 2: 800, 3: 100, 4: 32}
MAX_K = 4
# "non-zero" means > SAFETY x (quadrature error estimate) + floor
SAFETY = 10.0
# rounding floor for quantities of order 1 summed over ~10^6 weighted nodes
ROUNDING_FLOOR = 1e-9


def gaussian_grid(K: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Tensor Gauss-Hermite rule for z ~ N(0, I_K).

    Parameters
    ----------
    K : int
        Dimension, 1 <= K <= 4 (the rule has n^K points).
    n : int
        Nodes per axis, n >= 2.

    Returns
    -------
    nodes : ndarray, shape (K, n**K)
    weights : ndarray, shape (n**K,)
        Positive, summing to 1; sum(weights * f(nodes)) approximates E[f(z)], exactly for
        polynomials of degree <= 2n - 1 in each coordinate.

    Examples
    --------
    >>> z, w = gaussian_grid(2, 4)
    >>> z.shape, w.shape
    ((2, 16), (16,))
    >>> round(float(w @ (z[0] ** 2 * z[1] ** 2)), 12)  # E[z1^2 z2^2] = 1
    1.0
    """
    K = _check_K(K)
    x, w = gauss_hermite(integer("n", n, 2))
    nodes = np.stack(np.meshgrid(*([x] * K), indexing="ij")).reshape(K, -1)
    weights = w
    for _ in range(K - 1):
        weights = np.multiply.outer(weights, w).ravel()
    return nodes, np.array(weights)


def _check_K(K) -> int:
    K = integer("K", K, 1)
    if K > MAX_K:
        raise ValueError(
            f"K must be an integer in [1, {MAX_K}] for tensor Gauss-Hermite quadrature, got {K!r}"
        )
    return K


def _node_counts(K: int, nodes) -> tuple[int, int, int]:
    """(fine, coarse, coarser) nodes per axis: about n, 3n/4 and n/2, all of n's parity."""
    if nodes is None:
        n = DEFAULT_NODES[K]
    else:
        n = integer("nodes", nodes, 8)
    # keep the parity: an odd rule has a node at 0, where kinks of g* sit in many targets
    coarse = n - 2 * ((n // 4 + 1) // 2)
    coarser = n - 2 * ((n // 2 + 1) // 2)
    return n, coarse, coarser


@dataclass(frozen=True, eq=False)
class _Grid:
    """Nodes, weights and target values of one tensor rule."""

    z: np.ndarray  # (K, N), tensor grid in "ij" order
    w: np.ndarray  # (N,)
    y: np.ndarray  # (N,)
    n: int  # nodes per axis
    cache: dict = field(default_factory=dict, repr=False)

    def expect(self, values: np.ndarray) -> np.ndarray:
        """E over z of ``values`` (..., N) -> (...)."""
        return values @ self.w

    def chunks(self, size: int = 1 << 16):
        """Yield (z (K, m), w (m,), y (m,)) slices, to bound the memory of feature arrays."""
        for start in range(0, self.w.size, size):
            sl = slice(start, start + size)
            yield self.z[:, sl], self.w[sl], self.y[sl]

    @property
    def norm(self) -> float:
        """sqrt(E[g*^2])."""
        return float(np.sqrt(self.expect(self.y**2)))


@functools.lru_cache(maxsize=4)
def _target_grid(target: Target, n: int) -> _Grid:
    z, w = gaussian_grid(target.K, n)
    y = target(z)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"target {target.name!r} returned non-finite values on quadrature nodes")
    for arr in (z, w, y):
        arr.setflags(write=False)
    return _Grid(z, w, y, n)


def _grids(target: Target, nodes) -> tuple[_Grid, ...]:
    """The fine rule first, then the two coarser ones used for the error estimate."""
    return tuple(_target_grid(target, n) for n in _node_counts(target.K, nodes))


def _error(fine_value, coarse_values) -> np.ndarray:
    """Quadrature error estimate of the fine value: the largest difference to the coarser
    rules. Two of them, because a single difference can vanish by accident in the
    pre-asymptotic regime (measured: up to 12x too small for tanh(z1 + He3(z2)) at 160 nodes);
    it overestimates the fine rule's error once the rules converge."""
    return np.max([np.abs(fine_value - c) for c in coarse_values], axis=0)


def _expect_pair(target: Target, nodes, fn) -> tuple[np.ndarray, np.ndarray]:
    """E[fn(z, y)] on the fine rule and its quadrature error estimate (:func:`_error`)."""
    fine, *coarse = _grids(target, nodes)
    val = fine.expect(fn(fine.z, fine.y))
    return val, _error(val, [g.expect(fn(g.z, g.y)) for g in coarse])


def _unit(v, K: int, name: str = "v") -> np.ndarray:
    u = np.asarray(v, dtype=np.float64).reshape(-1)
    if u.shape != (K,):
        raise ValueError(f"{name} must have shape ({K},), got {np.shape(v)}")
    norm = float(np.linalg.norm(u))
    if not (np.isfinite(norm) and norm > 0):
        raise ValueError(f"{name} must be a finite non-zero vector, got {v!r}")
    return u / norm


def _target_of(spec) -> Target:
    if isinstance(spec, Problem):
        return spec.target
    return get_target(spec)


def _norm_He_all(degree: int, x: np.ndarray) -> list[np.ndarray]:
    """[He_k(x) / sqrt(k!) for k = 0..degree] by the three-term recurrence of the orthonormal
    polynomials: h_{k+1} = (x h_k - sqrt(k) h_{k-1}) / sqrt(k + 1)."""
    x = np.asarray(x, dtype=np.float64)
    out = [np.ones_like(x)]
    if degree >= 1:
        out.append(x.copy())
    for k in range(1, degree):
        out.append((x * out[k] - math.sqrt(k) * out[k - 1]) / math.sqrt(k + 1))
    return out


def _tolerance(err, scale=1.0):
    """Threshold above which a quadrature value counts as non-zero: SAFETY x error +
    ROUNDING_FLOOR x scale."""
    return SAFETY * np.asarray(err) + ROUNDING_FLOOR * np.asarray(scale)


def _multi_indices(K: int, degree: int) -> np.ndarray:
    out = [a for a in itertools.product(range(degree + 1), repeat=K) if sum(a) <= degree]
    out.sort(key=lambda a: (sum(a), tuple(-x for x in a)))
    return np.array(out, dtype=np.int64).reshape(len(out), K)


def _fix_signs(basis: np.ndarray) -> np.ndarray:
    """Deterministic signs: the first largest-magnitude entry of each column is positive
    (entries within 1e-9 of the largest count as tied, so that e.g. (1, -1) / sqrt(2) does not
    flip with the last bits of a quadrature rule)."""
    basis = basis.copy()
    for j in range(basis.shape[1]):
        size = np.abs(basis[:, j])
        i = int(np.flatnonzero(size >= (1.0 - 1e-9) * size.max())[0])
        if basis[i, j] < 0:
            basis[:, j] *= -1
    return basis
