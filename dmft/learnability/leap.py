"""Leap exponent of a target (Abbe, Boix-Adsera, Misiakiewicz 2023) from its Hermite support."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from ..problem import Problem
from ..targets import Target
from ..validation import integer
from .hermite import HermiteExpansion, hermite_tensor_coefficients
from .quadrature import _target_of

__all__ = ["LeapResult", "leap_exponent", "leap_of_support"]


def leap_of_support(support: Iterable[Sequence[int]]
                    ) -> tuple[int | None, list[tuple[int, ...]]]:
    """Leap complexity of a set of multi-indices (Abbe, Boix-Adsera, Misiakiewicz 2023).

    Definition implemented: for the support S (multi-indices alpha != 0 with a non-zero Hermite
    coefficient), Leap(S) = min over orderings alpha^1, ..., alpha^m of S of
    max_i sum_{k not in supp(alpha^1) u ... u supp(alpha^{i-1})} alpha^i_k, i.e. the largest
    total degree an element puts on coordinates not yet reached. For a fixed L the reachable set
    only grows as elements are added, so the minimum is the smallest L for which the greedy
    closure (add any element whose new degree is <= L) exhausts S.

    Parameters
    ----------
    support : iterable of tuples of non-negative ints, all of the same length K

    Returns
    -------
    leap : int or None
        None for an empty support.
    ordering : list of tuples
        An optimal ordering (greedy, smallest new degree first).

    Examples
    --------
    >>> leap_of_support([(1, 0), (1, 1)])  # z1 + z1 z2: z2 is reached from z1 with degree 1
    (1, [(1, 0), (1, 1)])
    >>> leap_of_support([(1, 0, 0), (1, 1, 1)])[0]  # z1 + z1 z2 z3: z2 and z3 together
    2
    """
    S = sorted({tuple(int(a) for a in alpha) for alpha in support})
    S = [alpha for alpha in S if sum(alpha) > 0]
    if any(a < 0 for alpha in S for a in alpha) or len({len(a) for a in S}) > 1:
        raise ValueError("support must contain multi-indices of non-negative ints of one length")
    if not S:
        return None, []

    def new_degree(alpha, reached):
        return sum(a for k, a in enumerate(alpha) if a and k not in reached)

    for L in range(1, max(sum(a) for a in S) + 1):
        reached: set[int] = set()
        remaining = list(S)
        order = []
        while remaining:
            remaining.sort(key=lambda a: (new_degree(a, reached), sum(a), a))
            best = remaining[0]
            if new_degree(best, reached) > L:
                break
            order.append(best)
            remaining.pop(0)
            reached |= {k for k, a in enumerate(best) if a}
        if not remaining:
            return L, order
    raise AssertionError("unreachable: L = max degree always exhausts the support")


@dataclass(frozen=True)
class LeapResult:
    """Leap exponent of a target in a given basis, from its Hermite support up to a degree.

    Attributes
    ----------
    leap : int or None
        Leap of the detected support (None if no coefficient up to ``degree`` is non-zero).
    ordering : list of tuples
        An optimal ordering of the support.
    support : list of tuples
        Multi-indices with a non-zero coefficient, |alpha| <= degree.
    degree : int
        Truncation degree of the expansion.
    basis : ndarray, shape (K, K)
    undetected : tuple of int
        Basis coordinates g* depends on (checked on random points) that appear in no detected
        multi-index: the truncation hides them, so the true leap may be larger.
    """

    leap: int | None
    ordering: list
    support: list
    degree: int
    basis: np.ndarray
    undetected: tuple

    @property
    def complete(self) -> bool:
        """True when every coordinate g* depends on is reached within ``degree``."""
        return not self.undetected


def _depends_on(target: Target, direction: np.ndarray, seed: int = 0, points: int = 512) -> bool:
    """Does g* change when z moves along ``direction``? (random points, finite shift)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((target.K, points))
    y = target(z)
    shifted = target(z + 0.37 * direction[:, None])
    return bool(np.any(np.abs(shifted - y) > 1e-9 * (1.0 + np.abs(y))))


def leap_exponent(target: str | Target | Problem, degree: int = 4,
                  basis: ArrayLike | None = None, nodes: int | None = None) -> LeapResult:
    """Leap exponent of g* in an orthonormal basis, from its Hermite expansion up to ``degree``.

    The leap depends on the basis (Abbe et al.'s isoLeap minimises over rotations; that
    minimisation is not attempted here): pass ``basis`` to use another frame, e.g. the
    learning basis of :func:`analyze`.

    Parameters
    ----------
    target : str, Target or Problem
    degree : int
        Truncation degree of the expansion (1..8).
    basis : array of shape (K, K), optional
    nodes : int, optional

    Returns
    -------
    LeapResult

    Examples
    --------
    >>> result = leap_exponent("staircase", nodes=20)
    >>> result.leap, result.support, result.complete
    (1, [(1, 0), (1, 1)], True)
    """
    target = _target_of(target)
    degree = integer("degree", degree, 1, 8)
    return _leap_from(target, hermite_tensor_coefficients(target, degree, basis, nodes), degree)


def _leap_from(target: Target, expansion: HermiteExpansion, degree: int) -> LeapResult:
    expansion = expansion.truncated(degree)
    support = expansion.support()
    leap, order = leap_of_support(support)
    reached = {k for alpha in support for k, a in enumerate(alpha) if a}
    undetected = tuple(
        k for k in range(target.K)
        if k not in reached and _depends_on(target, expansion.basis[:, k])
    )
    return LeapResult(leap, order, support, degree, expansion.basis, undetected)
